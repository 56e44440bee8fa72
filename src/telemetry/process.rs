//! Readings about this process from the operating system: resident memory and
//! CPU time. Linux reads `/proc/self`; elsewhere `getrusage` gives what it can.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the memory limiter while it is refusing data; exported as a gauge.
pub static MEMORY_REFUSING: AtomicBool = AtomicBool::new(false);

pub(crate) fn memory_refusing_value() -> f64 {
    if MEMORY_REFUSING.load(Ordering::Relaxed) {
        1.0
    } else {
        0.0
    }
}

/// Resident set size in bytes (0 if it cannot be read).
pub fn rss_bytes() -> u64 {
    if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
        if let Some(pages) = statm.split_whitespace().nth(1).and_then(|s| s.parse::<u64>().ok()) {
            return pages * page_size();
        }
    }
    0
}

/// Peak resident set size in bytes.
pub fn peak_rss_bytes() -> u64 {
    let usage = rusage();
    // ru_maxrss is in kilobytes on Linux.
    usage.ru_maxrss.max(0) as u64 * 1024
}

/// User plus system CPU time of the whole process, in seconds.
pub fn cpu_seconds() -> f64 {
    let usage = rusage();
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Total memory of the machine or of the cgroup the process runs in, in bytes.
pub fn total_memory_bytes() -> Option<u64> {
    for path in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
        if let Ok(s) = std::fs::read_to_string(path) {
            if let Ok(v) = s.trim().parse::<u64>() {
                // cgroup v1 reports "unlimited" as a huge number.
                if v < (1 << 60) {
                    return Some(v);
                }
            }
        }
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as u64
    } else {
        4096
    }
}

fn rusage() -> libc::rusage {
    // SAFETY: getrusage fills the struct we hand it; a zeroed rusage is valid.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    }
}
