//! Support for sluice's end-to-end tests: start the agent from a YAML config,
//! drive it with real OpenTelemetry SDK clients (tests/peers), receive its
//! output with the reference OTLP receiver, read its `/metrics`.
//!
//! Peers (the Python venv at `.venv-peers`, `tests/peers/node/node_modules`,
//! `promtool`, `prometheus`) are installed by `.ci/run`. A test that needs
//! one is marked `#[ignore = "needs peers (…): bash .ci/run"]`, so a plain
//! `cargo test` reports it as ignored, never as passed; `.ci/run` runs those
//! tests too (`--include-ignored`). A test run while its peer is missing
//! fails with what to install.
//!
//! Every process a test starts and does not wait for is held in a
//! [`PeerChild`], which kills it (and its process group) when dropped, so
//! nothing outlives the test, a panicking one included.

#![allow(dead_code)] // each tests/*.rs uses a different part of this module

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ops::{Deref, DerefMut};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

pub use tempfile::TempDir;

mod prometheus_server;
#[allow(unused_imports)] // each tests/*.rs uses a different part of this module
pub use prometheus_server::{urlencode, PrometheusServer};

// ---------------------------------------------------------------------------
// Locations and peers

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn peers_dir() -> PathBuf {
    repo_root().join("tests/peers")
}

pub fn sluice_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sluice"))
}

pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// A peer is missing: the test cannot run, so it fails with what to install.
/// (Tests that need peers are `#[ignore]`d; this is reached when they are run
/// anyway, by `.ci/run` or `cargo test -- --include-ignored`.)
pub fn peer_missing(what: &str, install: &str) -> ! {
    let msg = format!("{what} is not installed; install it with: {install}   (or run .ci/run)");
    if in_ci() {
        panic!("CI=true and a test peer is missing: {msg}");
    }
    panic!("a test peer is missing: {msg}\n(a plain `cargo test` skips the tests that need peers)");
}

/// The Python interpreter of `.venv-peers`, with the OpenTelemetry SDK in it.
pub fn python() -> PathBuf {
    let py = repo_root().join(".venv-peers/bin/python");
    let ok = py.exists()
        && Command::new(&py)
            .args(["-c", "import opentelemetry.sdk, opentelemetry.proto, grpc"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    if !ok {
        peer_missing(
            "the Python OpenTelemetry SDK venv (.venv-peers)",
            "python3 -m venv .venv-peers && .venv-peers/bin/pip install -r tests/peers/requirements.txt",
        );
    }
    py
}

/// `node`, when `tests/peers/node/node_modules` holds the Node SDK.
pub fn node() -> PathBuf {
    let modules = peers_dir().join("node/node_modules/@opentelemetry/exporter-trace-otlp-http");
    let node_ok = Command::new("node").arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    if !(node_ok && modules.exists()) {
        peer_missing(
            "the OpenTelemetry Node SDK (node + tests/peers/node/node_modules)",
            "cd tests/peers/node && npm ci",
        );
    }
    PathBuf::from("node")
}

/// `promtool` (Debian package `prometheus`).
pub fn promtool() -> PathBuf {
    let ok = Command::new("promtool").arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        peer_missing("promtool", "apt-get install -y prometheus");
    }
    PathBuf::from("promtool")
}

/// `tmux` (Debian package `tmux`): a terminal to drive `sluice top` in.
pub fn tmux() -> PathBuf {
    let ok = Command::new("tmux").arg("-V").output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        peer_missing("tmux", "apt-get install -y tmux");
    }
    PathBuf::from("tmux")
}

/// The Prometheus server binary (2.42 from Debian's `prometheus` package),
/// a real remote-write receiver and scraper for the exporter tests.
pub fn prometheus() -> PathBuf {
    let ok = Command::new("prometheus").arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        peer_missing("prometheus", "apt-get install -y prometheus");
    }
    PathBuf::from("prometheus")
}

// ---------------------------------------------------------------------------
// Processes a test starts

/// A process a test started and does not wait for (a peer, a Prometheus
/// server, the agent): on drop it and its whole process group get SIGKILL
/// and it is reaped, so nothing outlives the test, a panicking one included.
///
/// [`PeerChild::spawn`] starts it as the leader of a process group of its own,
/// so what it starts in turn is killed with it. Being in its own group, a
/// Ctrl-C at the terminal no longer reaches it; instead it is asked (Linux
/// `PR_SET_PDEATHSIG`) to get SIGKILL when the thread that started it ends,
/// which covers the test binary being killed before any drop runs (for the
/// process itself: what it started is then left; no peer starts anything
/// today). So start it on the test's own thread (or one that lives as long
/// as it is used).
pub struct PeerChild {
    child: Child,
}

impl PeerChild {
    /// Spawns `cmd` as described above.
    pub fn spawn(cmd: &mut Command) -> std::io::Result<PeerChild> {
        cmd.process_group(0);
        #[cfg(target_os = "linux")]
        {
            let parent = std::process::id() as libc::pid_t;
            // SAFETY: between fork and exec this calls only prctl(2) and
            // getppid(2), which are async-signal-safe, and allocates nothing.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // The test process died before prctl took effect.
                    if libc::getppid() != parent {
                        return Err(std::io::Error::other("the test process is gone"));
                    }
                    Ok(())
                });
            }
        }
        Ok(PeerChild { child: cmd.spawn()? })
    }

    /// Sends `signal` to the process alone (not its group), unless it exited.
    pub fn signal(&mut self, signal: libc::c_int) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) on the pid of a child we own and have not
            // reaped, so the pid is still its own.
            unsafe {
                libc::kill(self.child.id() as libc::pid_t, signal);
            }
        }
    }

    /// Waits for the process to exit; panics if it takes longer than `timeout`
    /// (it is then killed on drop).
    pub fn wait_timeout(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "process {} did not exit within {timeout:?}", self.child.id());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then wait up to `timeout`; None when it did not exit in time
    /// (it is then killed, group and all).
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if Instant::now() > deadline {
                self.kill_group();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL to the process group, then reap the leader.
    pub fn kill_group(&mut self) {
        // SAFETY: kill(2) on the process group this child leads. If the
        // leader was reaped already, the group id stays reserved while any
        // member lives, and kill finds no group (ESRCH) once none does.
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

impl Deref for PeerChild {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.child
    }
}

impl DerefMut for PeerChild {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for PeerChild {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// A port nobody listens on right now and that this test process has not
/// handed out before, drawn below the kernel's ephemeral range (32768–60999
/// by default). Asking the OS for `:0` and closing the listener made two
/// calls in a row return the same port now and then (an agent's gRPC and
/// HTTP endpoints collided in CI), and such a port can also be taken as the
/// local port of a client connection before the agent binds it.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port: u16 = rand::random_range(10_000..32_000);
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if !handed_out.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.push(port);
            return port;
        }
    }
}

pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("timed out after {timeout:?} waiting for {what}");
    false
}

// ---------------------------------------------------------------------------
// A tiny HTTP/1.1 client (std only): health checks, /metrics, /stats.

/// GET http://addr/path; (status, body). Err on connection problems.
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_string() };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.split(';').next().unwrap_or("0").trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

// ---------------------------------------------------------------------------
// Prometheus text

/// Sum of the samples of `name` whose labels include every pair in `labels`
/// (so `&[]` sums over all series). None if no series matched.
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut total = None;
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = match line.rsplit_once(' ') {
            Some(x) => x,
            None => continue,
        };
        let (n, lbls) = match series.split_once('{') {
            Some((n, rest)) => (n, parse_labels(rest.trim_end_matches('}'))),
            None => (series, vec![]),
        };
        if n != name {
            continue;
        }
        if labels.iter().all(|(k, v)| lbls.iter().any(|(lk, lv)| lk == k && lv == v)) {
            if let Ok(v) = value.parse::<f64>() {
                *total.get_or_insert(0.0) += v;
            }
        }
    }
    total
}

fn parse_labels(s: &str) -> Vec<(String, String)> {
    let mut out = vec![];
    let mut chars = s.chars().peekable();
    loop {
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_string();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('"') {
            break;
        }
        let mut val = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => val.push('\n'),
                    Some(o) => val.push(o),
                    None => break,
                },
                '"' => break,
                o => val.push(o),
            }
        }
        out.push((key, val));
    }
    out
}

// ---------------------------------------------------------------------------
// The agent

/// Ports one agent listens on.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub grpc: u16,
    pub http: u16,
    pub health: u16,
    pub metrics: u16,
}

impl Ports {
    pub fn pick() -> Ports {
        Ports { grpc: free_port(), http: free_port(), health: free_port(), metrics: free_port() }
    }
}

/// The parts of an agent config that differ between tests; [`config_with`]
/// writes them into the one frame every test shares (the otlp receiver on
/// both protocols, health_check, the agent's /metrics and debug logs).
///
/// Each section body is YAML indented by two spaces already, as it would
/// stand under its key; an empty one leaves the section out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sections<'a> {
    pub processors: &'a str,
    pub exporters: &'a str,
    pub connectors: &'a str,
    /// Extensions beside health_check (e.g. a `file_storage`).
    pub extensions: &'a str,
    /// Their IDs, listed after health_check in `service.extensions`.
    pub extension_ids: &'a [&'a str],
    /// The body of `service.pipelines`: see [`pipeline`].
    pub pipelines: &'a str,
}

/// One entry of `service.pipelines` (indented for [`Sections::pipelines`]);
/// `extra` lines are added to it (e.g. `channel_capacity: 1`).
pub fn pipeline(name: &str, receivers: &[&str], processors: &[&str], exporters: &[&str], extra: &[&str]) -> String {
    let mut p = format!("    {name}:\n      receivers: [{}]\n", receivers.join(", "));
    if !processors.is_empty() {
        p.push_str(&format!("      processors: [{}]\n", processors.join(", ")));
    }
    p.push_str(&format!("      exporters: [{}]\n", exporters.join(", ")));
    for e in extra {
        p.push_str(&format!("      {e}\n"));
    }
    p
}

/// The agent config of [`Sections`] on `ports`.
pub fn config_with(ports: Ports, s: Sections) -> String {
    // An empty section would be YAML null; leave it out instead.
    let section = |key: &str, body: &str| {
        if body.trim().is_empty() {
            String::new()
        } else {
            format!("{key}:\n{}\n", body.trim_end_matches('\n'))
        }
    };
    let extension_ids: Vec<&str> = std::iter::once("health_check").chain(s.extension_ids.iter().copied()).collect();
    format!(
        "receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
      http:
        endpoint: 127.0.0.1:{http}
{processors}{exporters}{connectors}extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
{extensions}service:
  extensions: [{extension_ids}]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
    logs:
      level: debug
  pipelines:
{pipes}",
        processors = section("processors", s.processors),
        exporters = section("exporters", s.exporters),
        connectors = section("connectors", s.connectors),
        extensions = if s.extensions.trim().is_empty() {
            String::new()
        } else {
            format!("{}\n", s.extensions.trim_end_matches('\n'))
        },
        extension_ids = extension_ids.join(", "),
        pipes = s.pipelines,
        grpc = ports.grpc,
        http = ports.http,
        health = ports.health,
        metrics = ports.metrics,
    )
}

/// A config with one pipeline per signal in `signals`, each
/// `otlp → processors → exporters`, in the frame of [`config_with`]; the
/// given processors/exporters sections are YAML indented by two spaces.
///
/// `pipeline_extra` is appended to every pipeline (e.g. `channel_capacity: 1`).
pub fn agent_config(
    ports: Ports,
    processors_yaml: &str,
    exporters_yaml: &str,
    signals: &[&str],
    processors: &[&str],
    exporters: &[&str],
    pipeline_extra: &[&str],
) -> String {
    let pipes: String = signals.iter().map(|s| pipeline(s, &["otlp"], processors, exporters, pipeline_extra)).collect();
    config_with(
        ports,
        Sections { processors: processors_yaml, exporters: exporters_yaml, pipelines: &pipes, ..Sections::default() },
    )
}

/// A running sluice; killed on drop if the test did not stop it.
pub struct Agent {
    child: Option<PeerChild>,
    pub ports: Ports,
    pub log_path: PathBuf,
    pub config_path: PathBuf,
}

impl Agent {
    /// Writes `config` to `dir`, starts `sluice --config FILE` with its output
    /// in `dir/sluice.log`, and waits until /health/ready answers 200.
    pub fn start(dir: &Path, config: &str, ports: Ports) -> Agent {
        Agent::start_with_args(dir, config, ports, &[])
    }

    /// [`Agent::start`] with more command-line arguments after `--config FILE`
    /// (e.g. `--watch-config`).
    pub fn start_with_args(dir: &Path, config: &str, ports: Ports, extra_args: &[&str]) -> Agent {
        Agent::start_program(dir, config, ports, extra_args, &sluice_bin())
    }

    /// [`Agent::start`] through `program` (a wrapper that execs sluice).
    #[allow(dead_code)]
    pub fn start_with_bin(dir: &Path, config: &str, ports: Ports, program: &Path) -> Agent {
        Agent::start_program(dir, config, ports, &[], program)
    }

    fn start_program(dir: &Path, config: &str, ports: Ports, extra_args: &[&str], program: &Path) -> Agent {
        let config_path = dir.join("sluice.yaml");
        fs::write(&config_path, config).unwrap();
        let log_path = dir.join("sluice.log");
        let log = File::create(&log_path).unwrap();
        let child = PeerChild::spawn(
            Command::new(program)
                .arg("--config")
                .arg(&config_path)
                .args(extra_args)
                .env("RUST_BACKTRACE", "1")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log),
        )
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", sluice_bin().display()));
        let mut agent = Agent { child: Some(child), ports, log_path, config_path };
        let health = format!("127.0.0.1:{}", ports.health);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok((200, _)) = http_get(&health, "/health/ready") {
                return agent;
            }
            if let Some(status) = agent.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("sluice exited ({status}) before it was ready.\nconfig:\n{config}\nlog:\n{}", agent.log());
            }
            if Instant::now() > deadline {
                panic!(
                    "sluice did not answer 200 on http://{health}/health/ready within 15s.\nconfig:\n{config}\nlog:\n{}",
                    agent.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn grpc_endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.ports.grpc)
    }

    pub fn http_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.http)
    }

    /// The text of /metrics (panics with the agent's log if it is not 200).
    pub fn metrics(&self) -> String {
        match http_get(&format!("127.0.0.1:{}", self.ports.metrics), "/metrics") {
            Ok((200, body)) => body,
            other => panic!("GET /metrics failed: {other:?}\nlog:\n{}", self.log()),
        }
    }

    /// Sum of `name` over the series matching `labels`; 0 when none exists.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric_value(&self.metrics(), name, labels).unwrap_or(0.0)
    }

    /// SIGTERM, then wait (up to 20 s) and assert a clean exit (status 0).
    pub fn stop(mut self) {
        let status = self.terminate(Duration::from_secs(20));
        match status {
            Some(s) if s.success() => {}
            other => panic!("sluice did not exit 0 after SIGTERM: {other:?}\nlog:\n{}", self.log()),
        }
    }

    /// The agent's process ID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The agent's peak resident memory so far (VmHWM), in MiB.
    pub fn peak_rss_mib(&self) -> u64 {
        let pid = self.pid().expect("sluice runs");
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap();
        kib / 1024
    }

    /// The log with the ANSI colour codes of the console encoding taken out.
    pub fn log_plain(&self) -> String {
        strip_ansi_codes(&self.log())
    }

    /// Sends SIGHUP: the agent re-reads its config file.
    pub fn sighup(&self) {
        let pid = self.pid().expect("the agent is not running");
        // SAFETY: kill(2) on the pid of a child we own and have not reaped.
        let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGHUP) };
        assert_eq!(rc, 0, "kill -HUP {pid}: {}", std::io::Error::last_os_error());
    }

    /// Replaces the config file with `config` in one step (write a sibling,
    /// then rename), so an agent that polls the file never reads half of it.
    pub fn rewrite_config(&self, config: &str) {
        let tmp = self.config_path.with_extension("yaml.next");
        fs::write(&tmp, config).unwrap();
        fs::rename(&tmp, &self.config_path).unwrap();
    }

    /// `sluice_config_reloads_total{result="success"|"failure"}`, 0 before any reload.
    pub fn reloads(&self, result: &str) -> f64 {
        self.metric("sluice_config_reloads_total", &[("result", result)])
    }

    /// Waits until `sluice_config_reloads_total{result}` is at least `n`;
    /// panics with both counters and the log if the agent exits first or
    /// `timeout` passes.
    pub fn wait_reloads(&mut self, result: &str, n: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("sluice exited ({status}) while a config reload was awaited\nlog:\n{}", self.log());
            }
            let text = http_get(&format!("127.0.0.1:{}", self.ports.metrics), "/metrics").ok().map(|(_, b)| b);
            let count = |r: &str| {
                text.as_deref().and_then(|t| metric_value(t, "sluice_config_reloads_total", &[("result", r)]))
            };
            if count(result).unwrap_or(0.0) >= n as f64 {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "after {timeout:?}: sluice_config_reloads_total success={:?} failure={:?}, awaited {result} >= {n}\nlog:\n{}",
                    count("success"),
                    count("failure"),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL (a crash: nothing is flushed or drained) and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill_group();
        }
    }

    /// SIGTERM and wait; None when it did not exit in time (it is then killed).
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.child.take()?.terminate(timeout)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill_group();
            if std::thread::panicking() {
                eprintln!("---- sluice log ({}) ----\n{}", self.log_path.display(), self.log());
            }
        }
    }
}

/// `text` without ANSI escape sequences (`ESC [ ... m`), as the console log
/// encoding colours level names when it writes to a file too.
pub fn strip_ansi_codes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Python peers that print `READY key=port ...` once they listen

/// A peer from tests/peers/, started with `--out DIR/OUT_NAME` and `args`,
/// its stderr in `DIR/LOG_NAME`.
pub struct PeerProcess {
    pub child: PeerChild,
    /// The words after `READY` on its first stdout line.
    pub ready: String,
    pub out: PathBuf,
    pub log_path: PathBuf,
}

/// Starts `script` and waits for its READY line.
pub fn start_peer(py: &Path, dir: &Path, script: &str, out_name: &str, log_name: &str, args: &[&str]) -> PeerProcess {
    let out = dir.join(out_name);
    let log_path = dir.join(log_name);
    let mut child = PeerChild::spawn(
        Command::new(py)
            .arg(peers_dir().join(script))
            .arg("--out")
            .arg(&out)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&log_path).unwrap()),
    )
    .unwrap_or_else(|e| panic!("start {script}: {e}"));
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut ready).unwrap();
    PeerProcess { child, ready, out, log_path }
}

impl PeerProcess {
    /// The port after `key` (e.g. `grpc=`) in the READY line; panics with the peer's log.
    pub fn port(&self, key: &str) -> u16 {
        self.ready.split_whitespace().find_map(|w| w.strip_prefix(key)).and_then(|p| p.parse().ok()).unwrap_or_else(
            || {
                panic!(
                    "peer did not print READY with {key}: {:?}\n{}",
                    self.ready,
                    fs::read_to_string(&self.log_path).unwrap_or_default()
                )
            },
        )
    }
}

// ---------------------------------------------------------------------------
// The reference OTLP receiver (tests/peers/reference_receiver.py)

pub struct RefReceiver {
    child: Option<PeerChild>,
    pub grpc_port: u16,
    pub http_port: u16,
    /// JSON lines, one per request received.
    pub out: PathBuf,
    pub log_path: PathBuf,
}

impl RefReceiver {
    /// Starts the receiver on free ports with `args` (fault injection etc.)
    /// and waits for its READY line.
    pub fn start(py: &Path, dir: &Path, args: &[&str]) -> RefReceiver {
        let peer = start_peer(py, dir, "reference_receiver.py", "received.jsonl", "receiver.log", args);
        let (grpc_port, http_port) = (peer.port("grpc="), peer.port("http="));
        let PeerProcess { child, out, log_path, .. } = peer;
        RefReceiver { child: Some(child), grpc_port, http_port, out, log_path }
    }

    /// `http://127.0.0.1:PORT` of its OTLP/HTTP side.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    pub fn grpc_addr(&self) -> String {
        format!("127.0.0.1:{}", self.grpc_port)
    }

    /// Its counters: requests, requests_accepted, requests_rejected,
    /// items_accepted.{traces,metrics,logs}, items_rejected.{…}, stalled.
    pub fn stats(&self) -> serde_json::Value {
        let (status, body) = http_get(&format!("127.0.0.1:{}", self.http_port), "/stats").expect("GET /stats");
        assert_eq!(status, 200, "GET /stats: {body}");
        serde_json::from_str(&body).unwrap()
    }

    pub fn accepted_items(&self, signal: &str) -> u64 {
        self.stats()["items_accepted"][signal].as_u64().unwrap_or(0)
    }

    /// Waits until at least `n` items of `signal` were accepted; false on timeout.
    pub fn wait_items(&self, signal: &str, n: u64, timeout: Duration) -> bool {
        wait_until(&format!("{n} {signal} items at the reference receiver"), timeout, || {
            self.accepted_items(signal) >= n
        })
    }
}

impl Drop for RefReceiver {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.terminate(Duration::from_secs(5));
        }
    }
}

// ---------------------------------------------------------------------------
// Senders and comparison

fn output_text(o: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs tests/peers/send_otlp.py with `args`; returns its output (not asserted).
pub fn run_python_sender(py: &Path, args: &[&str]) -> Output {
    Command::new(py).arg(peers_dir().join("send_otlp.py")).args(args).output().expect("run send_otlp.py")
}

/// Runs send_otlp.py and panics (with its output) unless every export succeeded.
pub fn send_python(py: &Path, args: &[&str]) -> Output {
    let o = run_python_sender(py, args);
    assert!(o.status.success(), "send_otlp.py {args:?} failed:\n{}", output_text(&o));
    o
}

/// Runs tests/peers/node/send_json.mjs and panics unless every export succeeded.
pub fn send_node(node: &Path, args: &[&str]) -> Output {
    let o =
        Command::new(node).arg(peers_dir().join("node/send_json.mjs")).args(args).output().expect("run send_json.mjs");
    assert!(o.status.success(), "send_json.mjs {args:?} failed:\n{}", output_text(&o));
    o
}

/// Number of items in an expect file.
pub fn expected_count(path: &Path) -> u64 {
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    v["items"].as_array().map(|a| a.len() as u64).unwrap_or(0)
}

/// compare.py over expect files and the receiver's output; panics with its
/// diff (and `context`, e.g. the agent's log) on mismatch.
pub fn assert_received(py: &Path, expect: &[&Path], received: &Path, extra: &[&str], context: &str) {
    let mut cmd = Command::new(py);
    cmd.arg(peers_dir().join("compare.py")).arg("--received").arg(received).args(extra);
    for e in expect {
        cmd.arg("--expect").arg(e);
    }
    let o = cmd.output().expect("run compare.py");
    assert!(o.status.success(), "received content differs from what was sent:\n{}\n{context}", output_text(&o));
}

/// `promtool check metrics` over a /metrics page; panics with its complaints.
pub fn promtool_check(promtool: &Path, exposition: &str) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child.stdin.take().unwrap().write_all(exposition.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "promtool check metrics failed:\n{}\n--- exposition ---\n{exposition}",
        output_text(&o)
    );
}

/// A fresh temp dir for one test.
pub fn temp_dir() -> TempDir {
    tempfile::Builder::new().prefix("sluice-e2e-").tempdir().unwrap()
}

// ---------------------------------------------------------------------------
// Config snippets shared by the e2e tests

/// `processors:` body with a fast batch processor (id `batch`).
pub const FAST_BATCH: &str = "  batch:
    timeout: 200ms
    send_batch_size: 512";

/// Retry settings that keep a test short: first retry after 100 ms.
pub const FAST_RETRY: &str = "    retry_on_failure:
      initial_interval: 100ms
      max_interval: 500ms
      max_elapsed_time: 20s";

/// `exporters:` body with one exporter, `otlp` (gRPC) or `otlphttp`, pointed
/// at the reference receiver; `extra` is more YAML at the exporter's level
/// (four spaces of indent).
pub fn exporter_yaml(kind: &str, recv: &RefReceiver, extra: &str) -> String {
    match kind {
        "otlp" => format!(
            "  otlp:\n    endpoint: {}\n    tls:\n      insecure: true\n    timeout: 10s\n{FAST_RETRY}\n{extra}",
            recv.grpc_addr()
        ),
        "otlphttp" => {
            format!("  otlphttp:\n    endpoint: {}\n    timeout: 10s\n{FAST_RETRY}\n{extra}", recv.http_url())
        }
        other => panic!("no exporter snippet for {other}"),
    }
}

/// Every request line the reference receiver wrote to `out` (JSON lines).
pub fn received_requests(out: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// Every item of the requests the reference receiver accepted.
pub fn received_items(out: &Path) -> Vec<serde_json::Value> {
    received_requests(out)
        .into_iter()
        .filter(|req| req["status"] == "accepted")
        .flat_map(|req| req["items"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// The items of an expect file written by `send_otlp.py --expect-file`.
pub fn expected_items(path: &Path) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    v["items"].as_array().cloned().unwrap_or_default()
}

/// The usual set-up: a quiet reference receiver, and sluice with the
/// `processors:` body `processors_yaml`, one `otlp` exporter to the receiver,
/// and one pipeline per signal running `processors` (plus `pipeline_extra`).
pub fn agent_to_reference(
    py: &Path,
    dir: &Path,
    processors_yaml: &str,
    signals: &[&str],
    processors: &[&str],
    pipeline_extra: &[&str],
) -> (RefReceiver, Agent) {
    let recv = RefReceiver::start(py, dir, &["--quiet"]);
    let ports = Ports::pick();
    let config = agent_config(
        ports,
        processors_yaml,
        &exporter_yaml("otlp", &recv, ""),
        signals,
        processors,
        &["otlp"],
        pipeline_extra,
    );
    let agent = Agent::start(dir, &config, ports);
    (recv, agent)
}

// ---------------------------------------------------------------------------
// Certificates (made at test time; no key is kept in the repository)

/// PEM files of a test PKI (see [`make_pki`]).
pub struct Pki {
    pub ca: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: String,
    pub client_key: String,
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files in `dir`.
pub fn make_pki(dir: &Path) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct names: OpenSSL and BoringSSL take a leaf whose issuer equals its subject for self-signed.
    ca_params.distinguished_name.push(DnType::CommonName, "sluice test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let mut sp = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    sp.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    sp.distinguished_name.push(DnType::CommonName, "localhost");
    let server = sp.signed_by(&server_key, &ca, &ca_key).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = {
        let mut cp = CertificateParams::new(vec!["e2e-client".to_string()]).unwrap();
        cp.distinguished_name.push(DnType::CommonName, "e2e-client");
        cp.signed_by(&client_key, &ca, &ca_key).unwrap()
    };
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    Pki {
        ca: write("ca.pem", ca.pem()),
        server_cert: write("server.pem", server.pem()),
        server_key: write("server-key.pem", server_key.serialize_pem()),
        client_cert: write("client.pem", client.pem()),
        client_key: write("client-key.pem", client_key.serialize_pem()),
    }
}
