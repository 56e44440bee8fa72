//! A real Prometheus server (Debian's `prometheus`, 2.42) for the tests
//! that check what reaches one: started on a free port with the remote
//! write receiver on and the scrape configs a test gives, queried through
//! its HTTP API, and killed (process group included) when dropped, a
//! panicking test included.

use super::{free_port, http_get, wait_until, PeerChild};
use std::fs::{self, File};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A Prometheus server with the remote write receiver on and the given
/// `scrape_configs` body (YAML list, or `[]`).
pub struct PrometheusServer {
    child: PeerChild,
    pub addr: String,
    log: std::path::PathBuf,
}

impl PrometheusServer {
    pub fn start(bin: &Path, dir: &Path, scrape_configs: &str) -> PrometheusServer {
        let config = dir.join("prometheus.yml");
        fs::write(&config, format!("global:\n  scrape_interval: 15s\nscrape_configs: {scrape_configs}\n")).unwrap();
        let data = dir.join("prometheus-data");
        let log = dir.join("prometheus.log");
        let out = File::create(&log).unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let child = PeerChild::spawn(
            Command::new(bin)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--web.enable-remote-write-receiver")
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out),
        )
        .expect("start prometheus");
        let server = PrometheusServer { child, addr, log };
        let ready = wait_until("prometheus /-/ready", Duration::from_secs(30), || {
            matches!(http_get(&server.addr, "/-/ready"), Ok((200, _)))
        });
        assert!(ready, "prometheus did not become ready:\n{}", server.log());
        server
    }

    /// A server scraping sluice's page at `page` (host:port) every second,
    /// as job `sluice` with `honor_labels`, so the job (and instance) the
    /// page derives from the resource are kept.
    pub fn scraping(bin: &Path, dir: &Path, page: &str) -> PrometheusServer {
        let scrape = format!(
            "\n  - job_name: sluice\n    honor_labels: true\n    scrape_interval: 1s\n    \
             static_configs: [{{targets: ['{page}']}}]"
        );
        PrometheusServer::start(bin, dir, &scrape)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn write_url(&self) -> String {
        format!("http://{}/api/v1/write", self.addr)
    }

    /// The instant vector of a PromQL query: each series's labels and value.
    pub fn query(&self, promql: &str) -> Vec<(serde_json::Map<String, serde_json::Value>, f64)> {
        let (status, body) = http_get(&self.addr, &format!("/api/v1/query?query={}", urlencode(promql)))
            .unwrap_or_else(|e| panic!("query {promql}: {e}"));
        assert_eq!(status, 200, "query {promql}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let labels = r["metric"].as_object().unwrap().clone();
                let value = r["value"][1].as_str().unwrap().parse::<f64>().unwrap();
                (labels, value)
            })
            .collect()
    }

    /// The value of the one series `promql` selects, once it exists.
    pub fn wait_value(&self, promql: &str, timeout: Duration) -> Option<f64> {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.query(promql);
            if r.len() == 1 {
                return Some(r[0].1);
            }
            assert!(r.len() < 2, "{promql} selects {} series: {r:?}", r.len());
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        self.child.kill_group();
        if std::thread::panicking() {
            eprintln!("---- prometheus log ----\n{}", self.log());
        }
    }
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
