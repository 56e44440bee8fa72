//! `sluice top` as an operator meets it: run in a real terminal (tmux)
//! against an agent under a steady load, it shows each component with its
//! pipeline and the rates the load gives, refreshing in place.

mod common;

use common::{agent_config, tmux, Agent, PeerChild, Ports};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A tmux session, killed on drop.
struct Session(String);

impl Session {
    fn start(name: &str, command: &str) -> Session {
        let status = Command::new(tmux())
            .args(["new-session", "-d", "-s", name, "-x", "160", "-y", "40", command])
            .status()
            .unwrap();
        assert!(status.success(), "tmux new-session");
        Session(name.to_string())
    }

    fn screen(&self) -> String {
        let out = Command::new(tmux()).args(["capture-pane", "-p", "-t", &self.0]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.0]).status();
    }
}

/// The words of the screen's row for `kind id`.
fn row(screen: &str, kind: &str, id: &str) -> Option<Vec<String>> {
    screen
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|w| w.len() >= 2 && w[0] == kind && w[1] == id)
}

/// A rate cell as a number: `950`, `1.9k`.
fn number(cell: &str) -> f64 {
    match cell.strip_suffix('k') {
        Some(k) => k.parse::<f64>().unwrap() * 1000.0,
        None => cell.parse().unwrap_or_else(|_| panic!("not a rate: {cell}")),
    }
}

#[test]
#[ignore = "needs peers (tmux): bash .ci/run"]
fn top_shows_components_pipelines_and_rates_of_a_loaded_agent() {
    tmux();
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::pick();
    let config =
        agent_config(ports, "  batch:\n    timeout: 100ms\n", "  nop:\n", &["traces"], &["batch"], &["nop"], &[]);
    let agent = Agent::start(dir.path(), &config, ports);
    // 20 requests of 100 spans a second: 2000 spans/s, for longer than the test looks.
    let _load = PeerChild::spawn(
        Command::new(env!("CARGO_BIN_EXE_sluice-loadgen"))
            .args(["send", "--endpoint", &agent.grpc_endpoint(), "--rate", "20", "--spans-per-request", "100"])
            .args(["--connections", "1", "--concurrency", "1", "--duration", "30", "--threads", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    let command = format!(
        "{} top --config {} --interval 1s; sleep 30",
        env!("CARGO_BIN_EXE_sluice"),
        agent.config_path.display()
    );
    let session = Session::start(&format!("sluice-top-{}", std::process::id()), &command);

    // Wait for a frame that shows the load (the first frames may start
    // before the load does).
    let deadline = Instant::now() + Duration::from_secs(20);
    let screen = loop {
        let screen = session.screen();
        if row(&screen, "receiver", "otlp").is_some_and(|r| r.get(3).is_some_and(|c| number(c) > 0.0))
            && row(&screen, "exporter", "nop").is_some_and(|r| r.get(4).is_some_and(|c| number(c) > 0.0))
        {
            break screen;
        }
        assert!(Instant::now() < deadline, "no frame with the load in 20 s:\n{screen}\nagent log:\n{}", agent.log());
        std::thread::sleep(Duration::from_millis(250));
    };
    // Drawn in place: one header, at the top of the screen.
    assert!(screen.starts_with(&format!("sluice top  http://127.0.0.1:{}/metrics  up ", ports.metrics)), "{screen}");
    assert_eq!(screen.matches("KIND").count(), 1, "{screen}");

    let receiver = row(&screen, "receiver", "otlp").unwrap();
    assert_eq!(receiver[2], "traces", "{screen}");
    let spans_in = number(&receiver[3]);
    // 2000 spans/s sent; a one-second window sees 1000 to 3000 of them.
    assert!((1000.0..=3000.0).contains(&spans_in), "receiver IN/s {spans_in}:\n{screen}");
    assert_eq!(receiver[5], "0", "nothing refused:\n{screen}");

    let batch = row(&screen, "processor", "batch").unwrap();
    assert_eq!(batch[2], "traces");
    assert!(number(&batch[3]) > 0.0 && number(&batch[4]) > 0.0, "{screen}");

    let nop = row(&screen, "exporter", "nop").unwrap();
    assert_eq!((nop[2].as_str(), nop[6].as_str()), ("traces", "0"), "sent, none failed:\n{screen}");
    assert!(nop[7].contains('/'), "queue fill shown:\n{screen}");

    let pipeline = row(&screen, "pipeline", "traces").unwrap();
    assert!(pipeline.last().unwrap().ends_with("%)"), "{screen}");
    // The channel is bounded in bytes by default (64 MiB without a memory_limiter): read in MiB.
    assert!(pipeline[7].ends_with("/64.0MiB"), "{screen}");
}
