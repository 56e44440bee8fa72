//! Where the backends come from: a fixed list (`resolver.static`) or the
//! addresses a DNS name resolves to (`resolver.dns`), looked up again every
//! `interval`.
//!
//! Guarantees: the DNS resolver hands on a new backend set only when the
//! sorted set of `ip:port` endpoints changed; a failed or timed-out lookup, or
//! one that returns no address, keeps the last good set and is counted.

use super::config::{static_endpoint, DnsResolverConfig, ResolverConfig};
use crate::telemetry::Counter;
use std::time::Duration;
use tracing::{debug, warn};

/// The resolver a validated config names.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolver {
    /// `host:port` endpoints, fixed for the life of the exporter.
    Static(Vec<String>),
    Dns(DnsResolverConfig),
}

impl Resolver {
    pub fn from_config(cfg: &ResolverConfig) -> Result<Resolver, String> {
        match (&cfg.static_, &cfg.dns) {
            (Some(s), None) => {
                let endpoints = s.hostnames.iter().map(|h| static_endpoint(h)).collect::<Result<Vec<_>, _>>()?;
                if endpoints.is_empty() {
                    return Err("resolver.static.hostnames is empty".into());
                }
                Ok(Resolver::Static(endpoints))
            }
            (None, Some(d)) => Ok(Resolver::Dns(d.clone())),
            _ => Err("exactly one of resolver.static and resolver.dns must be set".into()),
        }
    }
}

/// Counters of the DNS resolver.
#[derive(Clone, Debug, Default)]
pub struct ResolverCounters {
    /// Lookups that succeeded (with or without a change).
    pub refreshes: Counter,
    /// Lookups that failed, timed out or found no address.
    pub errors: Counter,
}

/// One lookup: the sorted, de-duplicated `ip:port` endpoints of `cfg.hostname`.
pub async fn lookup(cfg: &DnsResolverConfig) -> Result<Vec<String>, String> {
    let query = (cfg.hostname.as_str(), cfg.port);
    let found = match cfg.timeout.is_zero() {
        true => Ok(tokio::net::lookup_host(query).await),
        false => tokio::time::timeout(cfg.timeout.get(), tokio::net::lookup_host(query)).await,
    };
    let addrs = match found {
        Err(_) => return Err(format!("lookup of {:?} timed out after {}", cfg.hostname, cfg.timeout)),
        Ok(Err(e)) => return Err(format!("lookup of {:?} failed: {e}", cfg.hostname)),
        Ok(Ok(addrs)) => addrs,
    };
    // SocketAddr's Display brackets IPv6 addresses, which Target::parse expects.
    let mut endpoints: Vec<String> = addrs.map(|a| a.to_string()).collect();
    endpoints.sort();
    endpoints.dedup();
    if endpoints.is_empty() {
        return Err(format!("{:?} resolved to no address", cfg.hostname));
    }
    Ok(endpoints)
}

/// Looks `cfg.hostname` up now and then every `interval`, calling `apply`
/// with each endpoint set that differs from the last one applied. Runs until
/// the task is aborted.
pub async fn run_dns(cfg: DnsResolverConfig, counters: ResolverCounters, mut apply: impl FnMut(Vec<String>)) {
    let interval = cfg.interval.get().max(Duration::from_millis(10));
    let mut current: Option<Vec<String>> = None;
    loop {
        match lookup(&cfg).await {
            Ok(endpoints) => {
                counters.refreshes.inc();
                if current.as_ref() != Some(&endpoints) {
                    debug!(hostname = %cfg.hostname, ?endpoints, "loadbalancing: backend set changed");
                    current = Some(endpoints.clone());
                    apply(endpoints);
                }
            }
            Err(e) => {
                counters.errors.inc();
                warn!(error = %e, "loadbalancing: DNS lookup failed; keeping the last known backends");
            }
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Duration as CfgDuration;
    use std::sync::{Arc, Mutex};

    fn dns(hostname: &str) -> DnsResolverConfig {
        DnsResolverConfig {
            hostname: hostname.into(),
            port: 4317,
            interval: CfgDuration::from_secs(5),
            timeout: CfgDuration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn localhost_resolves_to_loopback_endpoints_with_the_port() {
        let endpoints = lookup(&dns("localhost")).await.unwrap();
        assert!(endpoints.iter().any(|e| e == "127.0.0.1:4317" || e == "[::1]:4317"), "{endpoints:?}");
    }

    #[tokio::test]
    async fn a_failed_lookup_is_counted_and_applies_nothing() {
        let counters = ResolverCounters::default();
        let applied = Arc::new(Mutex::new(Vec::new()));
        let sink = applied.clone();
        let task =
            tokio::spawn(run_dns(dns("no-such-host.invalid"), counters.clone(), move |e| sink.lock().unwrap().push(e)));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while counters.errors.get() == 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        task.abort();
        assert_eq!(counters.errors.get(), 1);
        assert_eq!(counters.refreshes.get(), 0);
        assert!(applied.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_unchanged_set_is_applied_once() {
        let counters = ResolverCounters::default();
        let applied = Arc::new(Mutex::new(Vec::new()));
        let sink = applied.clone();
        let mut cfg = dns("localhost");
        cfg.interval = CfgDuration::from_millis(20);
        let task = tokio::spawn(run_dns(cfg, counters.clone(), move |e| sink.lock().unwrap().push(e)));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while counters.refreshes.get() < 3 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        task.abort();
        assert!(counters.refreshes.get() >= 3);
        assert_eq!(applied.lock().unwrap().len(), 1);
    }
}
