//! The `filelog` receiver end to end: a real sluice process reads real files
//! laid out as the kubelet writes them (/var/log/pods/<ns>_<pod>_<uid>/<ctr>/<n>.log)
//! and sends them over OTLP/gRPC to the Python reference receiver. Checked:
//! container formats and their attributes, rotation while writing, restarts
//! (kill -9 and SIGTERM) against the checkpoint, start_at, multiline.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// sluice with the given `receivers:` body (filelog receivers, listed in
/// `receivers`) → one `otlp` exporter to `recv`; with `storage`, a
/// file_storage extension there that the exporter's queue uses too.
fn config(
    ports: Ports,
    recv: &RefReceiver,
    receivers_yaml: &str,
    receivers: &[&str],
    storage: Option<&Path>,
) -> String {
    let (ext, ext_list, queue) = match storage {
        Some(dir) => (
            format!("  file_storage:\n    directory: {}\n", dir.display()),
            "health_check, file_storage",
            // One consumer: at most one batch is in flight (and sent again) when the agent is killed.
            "    sending_queue:\n      storage: file_storage\n      num_consumers: 1\n",
        ),
        None => (String::new(), "health_check", ""),
    };
    format!(
        "receivers:
{receivers_yaml}
exporters:
{exporter}
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
{ext}
service:
  extensions: [{ext_list}]
  shutdown_timeout: 5s
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    logs:
      receivers: [{receivers}]
      exporters: [otlp]
",
        exporter = exporter_yaml("otlp", recv, queue),
        health = ports.health,
        metrics = ports.metrics,
        receivers = receivers.join(", "),
    )
}

fn append(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    OpenOptions::new().create(true).append(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
}

fn string(v: &Value) -> &str {
    v["string"].as_str().unwrap_or_else(|| panic!("not a string value: {v}"))
}

fn bodies(items: &[Value]) -> Vec<String> {
    items.iter().map(|i| string(&i["body"]).to_string()).collect()
}

/// Starts sluice in a fresh subdirectory of `dir` (so each run keeps its own log).
fn start_agent(dir: &Path, run: &str, config_for: impl Fn(Ports) -> String) -> Agent {
    let run_dir = dir.join(run);
    fs::create_dir_all(&run_dir).unwrap();
    let ports = Ports::pick();
    Agent::start(&run_dir, &config_for(ports), ports)
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn container_logs_in_cri_and_docker_format_arrive_with_pod_attributes() {
    let py = python();
    let dir = temp_dir();
    let pods = dir.path().join("var/log/pods");
    let cri = pods.join("shop_cart-7d9f_0a1b-2c3d/cart/0.log");
    let docker = pods.join("kube-system_dns-1_ffee-0011/coredns/3.log");
    append(
        &cri,
        "2024-03-01T12:00:00.000000001Z stdout F hello from cri\n\
         2024-03-01T12:00:01.5Z stderr P first part, \n\
         2024-03-01T12:00:02Z stderr F second part\n\
         this line is not CRI\n",
    );
    append(
        &docker,
        "{\"log\":\"hello from docker\\n\",\"stream\":\"stdout\",\"time\":\"2024-03-01T12:00:03Z\"}\n\
         {\"log\":\"split \",\"stream\":\"stderr\",\"time\":\"2024-03-01T12:00:04Z\"}\n\
         {\"log\":\"json line\\n\",\"stream\":\"stderr\",\"time\":\"2024-03-01T12:00:05Z\"}\n",
    );
    let recv = RefReceiver::start(&py, dir.path(), &["--quiet"]);
    let receivers = format!(
        "  filelog:\n    include: [{}/*/*/*.log]\n    start_at: beginning\n    poll_interval: 50ms\n    \
         include_file_path: true\n    operators:\n      - type: container\n",
        pods.display()
    );
    let agent = start_agent(dir.path(), "run", |p| config(p, &recv, &receivers, &["filelog"], None));
    assert!(recv.wait_items("logs", 5, Duration::from_secs(15)), "log:\n{}", agent.log());
    std::thread::sleep(Duration::from_millis(300)); // nothing more may come
    let items = received_items(&recv.out);
    let mut by_body: HashMap<String, Value> = HashMap::new();
    for i in &items {
        assert!(by_body.insert(string(&i["body"]).to_string(), i.clone()).is_none(), "twice: {i}");
    }
    assert_eq!(items.len(), 5, "{items:#?}");

    let res = |ns: &str, pod: &str, uid: &str, ctr: &str, n: &str| {
        json!({
            "k8s.container.name": {"string": ctr},
            "k8s.container.restart_count": {"string": n},
            "k8s.namespace.name": {"string": ns},
            "k8s.pod.name": {"string": pod},
            "k8s.pod.uid": {"string": uid},
        })
    };
    let cri_res = res("shop", "cart-7d9f", "0a1b-2c3d", "cart", "0");
    let docker_res = res("kube-system", "dns-1", "ffee-0011", "coredns", "3");
    let file_attrs = |path: &Path, name: &str| json!({"log.file.name": {"string": name}, "log.file.path": {"string": path.display().to_string()}});
    let with = |base: Value, extra: &[(&str, &str)]| {
        let mut m = base.as_object().unwrap().clone();
        for (k, v) in extra {
            m.insert(k.to_string(), json!({"string": v}));
        }
        Value::Object(m)
    };
    let expect: &[(&str, &Value, Value, u64)] = &[
        (
            "hello from cri",
            &cri_res,
            with(file_attrs(&cri, "0.log"), &[("log.iostream", "stdout"), ("logtag", "F")]),
            1_709_294_400_000_000_001,
        ),
        (
            "first part, second part",
            &cri_res,
            with(file_attrs(&cri, "0.log"), &[("log.iostream", "stderr"), ("logtag", "F")]),
            1_709_294_401_500_000_000,
        ),
        ("this line is not CRI", &cri_res, file_attrs(&cri, "0.log"), 0),
        (
            "hello from docker",
            &docker_res,
            with(file_attrs(&docker, "3.log"), &[("log.iostream", "stdout")]),
            1_709_294_403_000_000_000,
        ),
        (
            "split json line",
            &docker_res,
            with(file_attrs(&docker, "3.log"), &[("log.iostream", "stderr")]),
            1_709_294_404_000_000_000,
        ),
    ];
    for (body, resource, attributes, time) in expect {
        let item = by_body.get(*body).unwrap_or_else(|| panic!("no record {body:?} in {items:#?}"));
        assert_eq!(&item["resource"]["attributes"], *resource, "{body}");
        assert_eq!(&item["attributes"], attributes, "{body}");
        assert_eq!(item["time_unix_nano"].as_u64(), Some(*time), "{body}");
        assert!(item["observed_time_unix_nano"].as_u64().unwrap() > 1_700_000_000_000_000_000, "{body}");
    }
    let labels = [("receiver", "filelog")];
    assert_eq!(agent.metric("sluice_filelog_unparsed_lines_total", &labels), 1.0);
    assert_eq!(agent.metric("sluice_filelog_files_watched", &labels), 2.0);
    assert_eq!(agent.metric("otelcol_receiver_accepted_log_records_total", &labels), 5.0);
    agent.stop();
}

/// Appends `count` numbered lines from `from`, one write each, pausing
/// `pause` between them; `rotate(i)` runs before line i.
fn write_lines(path: &Path, from: usize, count: usize, pause: Duration, mut rotate: impl FnMut(usize)) {
    for i in from..from + count {
        rotate(i);
        // Padding makes each file's first kilobyte (its fingerprint) differ from the others'.
        append(path, &format!("line-{i:06} {}\n", "x".repeat(40)));
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
}

/// Line numbers received, with how often each arrived.
fn line_counts(out: &Path) -> HashMap<usize, usize> {
    let mut counts = HashMap::new();
    for body in bodies(&received_items(out)) {
        let n: usize = body.strip_prefix("line-").and_then(|s| s.get(..6)).and_then(|s| s.parse().ok()).unwrap();
        *counts.entry(n).or_default() += 1;
    }
    counts
}

fn plain_receiver(glob: &Path, extra: &str) -> String {
    format!("  filelog:\n    include: [{}]\n    start_at: beginning\n    poll_interval: 50ms\n{extra}", glob.display())
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn rename_and_copytruncate_rotation_while_writing_deliver_every_line_once() {
    let py = python();
    let dir = temp_dir();
    let logs = dir.path().join("logs");
    let app = logs.join("app.log");
    append(&app, "line-000000 written before the agent started\n");
    let recv = RefReceiver::start(&py, dir.path(), &["--quiet"]);
    let receivers = plain_receiver(&logs.join("*.log"), "");
    let agent = start_agent(dir.path(), "run", |p| config(p, &recv, &receivers, &["filelog"], None));
    const N: usize = 900;
    write_lines(&app, 1, N - 1, Duration::from_millis(2), |i| {
        if i == 300 {
            // Rename rotation (kubelet, logrotate create): the old file leaves the glob.
            fs::rename(&app, logs.join("app.log.1")).unwrap();
        }
        if i == 600 {
            // copytruncate, with the copy still matching the glob: it must not be read again.
            fs::copy(&app, logs.join("app-copy.log")).unwrap();
            OpenOptions::new().write(true).open(&app).unwrap().set_len(0).unwrap();
        }
    });
    let complete = wait_until("every line", Duration::from_secs(20), || line_counts(&recv.out).len() >= N);
    std::thread::sleep(Duration::from_millis(300));
    let counts = line_counts(&recv.out);
    let missing: Vec<usize> = (0..N).filter(|n| !counts.contains_key(n)).collect();
    let twice: Vec<(&usize, &usize)> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(complete && missing.is_empty(), "missing lines {missing:?}\nlog:\n{}", agent.log());
    assert!(twice.is_empty(), "lines received more than once: {twice:?}");
    assert_eq!(counts.len(), N);
    let rotations = agent.metric("sluice_filelog_rotations_total", &[("receiver", "filelog")]);
    assert_eq!(rotations, 2.0, "one rename, one truncation");
    agent.stop();
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn restarts_resume_at_the_checkpoint_kill9_repeats_little_and_sigterm_nothing() {
    let py = python();
    let dir = temp_dir();
    let logs = dir.path().join("var/log/pods/ns_pod_uid/ctr");
    let file = logs.join("0.log");
    let storage = dir.path().join("storage");
    fs::create_dir_all(&storage).unwrap();
    let recv = RefReceiver::start(&py, dir.path(), &["--quiet"]);
    // start_at: end, so a restart that ignored the checkpoint would skip what was written meanwhile.
    let receivers = format!(
        "  filelog:\n    include: [{}]\n    start_at: end\n    poll_interval: 50ms\n    storage: file_storage\n",
        logs.join("*.log").display()
    );
    let cfg = |p| config(p, &recv, &receivers, &["filelog"], Some(&storage));
    let mut agent = start_agent(dir.path(), "run1", cfg);

    // A writer appends continuously while the agent is killed and restarted.
    const N: usize = 3000;
    let written = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (file, written, stop) = (file.clone(), written.clone(), stop.clone());
        std::thread::spawn(move || {
            for i in 0..N {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                append(&file, &format!("line-{i:06} {}\n", "y".repeat(60)));
                written.store(i + 1, Ordering::Relaxed);
                if i % 10 == 9 {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        })
    };
    wait_until("a third written and some received", Duration::from_secs(20), || {
        written.load(Ordering::Relaxed) > N / 3 && !line_counts(&recv.out).is_empty()
    });
    agent.kill9();
    let agent = start_agent(dir.path(), "run2", cfg);
    writer.join().unwrap();
    let all = wait_until("every line after kill -9", Duration::from_secs(25), || line_counts(&recv.out).len() >= N);
    let counts = line_counts(&recv.out);
    let missing: Vec<usize> = (0..N).filter(|n| !counts.contains_key(n)).collect();
    assert!(
        all && missing.is_empty(),
        "{} lines missing after kill -9: {missing:?}\nlog:\n{}",
        missing.len(),
        agent.log()
    );
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    // Sent twice at most: the batch accepted but not yet checkpointed at the kill
    // (MAX_BATCH_RECORDS = 100), and the batch the single queue consumer was
    // sending, replayed by the persistent queue (another 100).
    eprintln!("kill -9 while writing: {duplicates} of {N} lines arrived twice");
    assert!(duplicates <= 200, "{duplicates} duplicates after kill -9");
    assert_eq!(counts.keys().max(), Some(&(N - 1)));

    // SIGTERM: a clean stop writes the checkpoint of everything accepted; nothing is sent twice.
    let before = received_items(&recv.out).len();
    agent.stop();
    write_lines(&file, N, 200, Duration::ZERO, |_| {});
    let agent = start_agent(dir.path(), "run3", cfg);
    assert!(
        wait_until("the lines written while stopped", Duration::from_secs(15), || line_counts(&recv.out).len()
            >= N + 200),
        "log:\n{}",
        agent.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    let after = received_items(&recv.out).len();
    assert_eq!(after - before, 200, "after SIGTERM and restart exactly the 200 new lines arrive");
    stop.store(true, Ordering::Relaxed);
    agent.stop();
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn start_at_end_skips_existing_lines_and_beginning_reads_them() {
    let py = python();
    let dir = temp_dir();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    append(&a.join("begin.log"), "old begin\n");
    append(&b.join("end.log"), "old end\n");
    let recv = RefReceiver::start(&py, dir.path(), &["--quiet"]);
    let receivers = format!(
        "  filelog/begin:\n    include: [{}/*.log]\n    start_at: beginning\n    poll_interval: 50ms\n  \
         filelog/end:\n    include: [{}/*.log]\n    poll_interval: 50ms\n",
        a.display(),
        b.display()
    );
    let agent =
        start_agent(dir.path(), "run", |p| config(p, &recv, &receivers, &["filelog/begin", "filelog/end"], None));
    assert!(wait_until("both files watched", Duration::from_secs(10), || {
        agent.metric("sluice_filelog_files_watched", &[("receiver", "filelog/end")]) == 1.0
    }));
    append(&a.join("begin.log"), "new begin\n");
    append(&b.join("end.log"), "new end\n");
    // A file created after the start is read from its beginning, even with start_at: end.
    append(&b.join("later.log"), "later end\n");
    assert!(recv.wait_items("logs", 4, Duration::from_secs(10)), "log:\n{}", agent.log());
    std::thread::sleep(Duration::from_millis(300));
    let mut got = bodies(&received_items(&recv.out));
    got.sort();
    assert_eq!(got, ["later end", "new begin", "new end", "old begin"]);
    agent.stop();
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn multiline_line_start_pattern_joins_a_stack_trace() {
    let py = python();
    let dir = temp_dir();
    let log = dir.path().join("java/app.log");
    let trace = "2024-03-01 12:00:01 ERROR request failed\n\
                 java.lang.IllegalStateException: boom\n\
                 \tat com.example.Cart.add(Cart.java:42)\n\
                 \tat com.example.Api.post(Api.java:7)\n";
    append(&log, &format!("2024-03-01 12:00:00 INFO started\n{trace}2024-03-01 12:00:02 INFO recovered\n"));
    let recv = RefReceiver::start(&py, dir.path(), &["--quiet"]);
    let receivers = plain_receiver(
        &dir.path().join("java/*.log"),
        "    force_flush_period: 200ms\n    multiline:\n      line_start_pattern: '^\\d{4}-\\d{2}-\\d{2} '\n",
    );
    let agent = start_agent(dir.path(), "run", |p| config(p, &recv, &receivers, &["filelog"], None));
    // The last entry waits for the next start line, then goes after force_flush_period.
    assert!(recv.wait_items("logs", 3, Duration::from_secs(10)), "log:\n{}", agent.log());
    std::thread::sleep(Duration::from_millis(300));
    let got = bodies(&received_items(&recv.out));
    assert_eq!(
        got,
        ["2024-03-01 12:00:00 INFO started", trace.trim_end_matches('\n'), "2024-03-01 12:00:02 INFO recovered"]
    );
    agent.stop();
}
