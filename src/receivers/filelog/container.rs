//! The `container` operator's formats and the pod metadata in a log path.
//!
//! - CRI (containerd, CRI-O): `<RFC3339Nano time> <stdout|stderr> <tag> <log>`,
//!   where tag `P` marks a partial line continued by the next one of the same
//!   stream, and `F` the last part.
//! - Docker JSON file driver: `{"log":"...\n","stream":"stdout","time":"..."}`,
//!   where a `log` without the trailing newline is continued by the next line.
//!
//! Parsing never fails the caller: a line that fits neither format is
//! reported as `None` and the reader sends it with its raw text.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Docker,
    Cri,
    /// Decided line by line: a line starting with `{` is Docker JSON, any other CRI.
    Auto,
}

impl Format {
    /// The `format` field of the operator; validation allows only these names.
    pub fn from_config(name: Option<&str>) -> Format {
        match name {
            Some("docker") => Format::Docker,
            Some("crio" | "containerd" | "cri") => Format::Cri,
            _ => Format::Auto,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    fn parse(s: &str) -> Option<Stream> {
        match s {
            "stdout" => Some(Stream::Stdout),
            "stderr" => Some(Stream::Stderr),
            _ => None,
        }
    }
}

/// One physical line of a container log, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerLine {
    pub time_unix_nano: u64,
    pub stream: Stream,
    /// The text continues in the next line of the same stream.
    pub partial: bool,
    /// The CRI tag (`P`, `F`), reported as attribute `logtag` as the Collector does; None for Docker.
    pub logtag: Option<String>,
    /// The log text without the trailing newline.
    pub text: String,
}

/// Parses `line` (without its newline) in `format`.
pub fn parse(format: Format, line: &str) -> Option<ContainerLine> {
    match format {
        Format::Docker => parse_docker(line),
        Format::Cri => parse_cri(line),
        Format::Auto if line.starts_with('{') => parse_docker(line),
        Format::Auto => parse_cri(line),
    }
}

pub fn parse_cri(line: &str) -> Option<ContainerLine> {
    let (time, rest) = line.split_once(' ')?;
    let (stream, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let stream = Stream::parse(stream)?;
    // The log may be empty, in which case the separator after the tag may be missing too.
    let (tag, text) = rest.split_once(' ').unwrap_or((rest, ""));
    if tag.is_empty() || tag.contains(|c: char| c.is_whitespace()) {
        return None;
    }
    Some(ContainerLine {
        time_unix_nano: parse_rfc3339(time)?,
        stream,
        partial: tag.split(':').next() == Some("P"),
        logtag: Some(tag.to_string()),
        text: text.to_string(),
    })
}

#[derive(Deserialize)]
struct DockerLine {
    log: String,
    stream: String,
    time: String,
}

pub fn parse_docker(line: &str) -> Option<ContainerLine> {
    let d: DockerLine = serde_json::from_str(line).ok()?;
    let (text, partial) = match d.log.strip_suffix('\n') {
        Some(t) => (t.to_string(), false),
        None => (d.log, true),
    };
    Some(ContainerLine {
        time_unix_nano: parse_rfc3339(&d.time)?,
        stream: Stream::parse(&d.stream)?,
        partial,
        logtag: None,
        text,
    })
}

/// RFC 3339 with optional fraction (up to nanoseconds) and `Z` or `±hh:mm`,
/// as Unix nanoseconds; None for anything else or a time before 1970.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes().all(|c| c.is_ascii_digit()).then(|| t.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() {
            return None;
        }
        let kept = &digits[..digits.len().min(9)];
        nanos = kept.parse::<i64>().ok()? * 10i64.pow(9 - kept.len() as u32);
    }
    let offset_secs = match &s[i..] {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && tz.is_ascii() && (tz.starts_with('+') || tz.starts_with('-')) && &tz[3..4] == ":" => {
            let h: i64 = tz[1..3].parse().ok()?;
            let m: i64 = tz[4..6].parse().ok()?;
            let v = h * 3600 + m * 60;
            if tz.starts_with('-') {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
    u64::try_from(secs).ok()?.checked_mul(1_000_000_000)?.checked_add(nanos as u64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The pod a Kubernetes container log belongs to, from its path
/// `/var/log/pods/<namespace>_<pod-name>_<pod-uid>/<container-name>/<restart-count>.log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodMetadata {
    pub namespace: String,
    pub pod_name: String,
    pub pod_uid: String,
    pub container_name: String,
    pub restart_count: String,
}

impl PodMetadata {
    /// None when the path does not have that shape. Namespaces and pod names
    /// cannot contain `_` (they are DNS names), so the split is unambiguous.
    pub fn from_path(path: &std::path::Path) -> Option<PodMetadata> {
        let mut parts = path.iter().rev().filter_map(|p| p.to_str());
        let file = parts.next()?;
        let container = parts.next()?;
        let pod_dir = parts.next()?;
        let restart = file.strip_suffix(".log")?;
        if restart.is_empty() || !restart.bytes().all(|c| c.is_ascii_digit()) || container.is_empty() {
            return None;
        }
        let mut ids = pod_dir.splitn(3, '_');
        let (ns, pod, uid) = (ids.next()?, ids.next()?, ids.next()?);
        if ns.is_empty() || pod.is_empty() || uid.is_empty() || uid.contains('_') {
            return None;
        }
        Some(PodMetadata {
            namespace: ns.into(),
            pod_name: pod.into(),
            pod_uid: uid.into(),
            container_name: container.into(),
            restart_count: restart.into(),
        })
    }

    /// The resource attributes the Collector's container operator sets.
    pub fn attributes(&self) -> [(&'static str, &str); 5] {
        [
            ("k8s.namespace.name", &self.namespace),
            ("k8s.pod.name", &self.pod_name),
            ("k8s.pod.uid", &self.pod_uid),
            ("k8s.container.name", &self.container_name),
            ("k8s.container.restart_count", &self.restart_count),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn cri_lines_full_partial_and_empty() {
        let l = parse_cri("2024-03-01T12:00:00.123456789Z stdout F hello world").unwrap();
        assert_eq!(l.time_unix_nano, 1_709_294_400_123_456_789);
        assert_eq!((l.stream, l.partial, l.text.as_str()), (Stream::Stdout, false, "hello world"));
        assert_eq!(l.logtag.as_deref(), Some("F"));
        let p = parse_cri("2024-03-01T12:00:00.1+01:00 stderr P part ").unwrap();
        assert_eq!(p.time_unix_nano, 1_709_290_800_100_000_000);
        assert_eq!((p.stream, p.partial, p.text.as_str()), (Stream::Stderr, true, "part "));
        let e = parse_cri("2024-03-01T12:00:00Z stdout F").unwrap();
        assert_eq!(e.text, "");
    }

    #[test]
    fn bad_cri_lines_are_refused() {
        for bad in [
            "",
            "hello world",
            "2024-03-01T12:00:00Z stdin F x",
            "yesterday stdout F x",
            "2024-13-01T12:00:00Z stdout F x",
            "2024-03-01T12:00:00 stdout F x",
            "2024-03-01T12:00:00+0\u{e9}:0 stdout F x",
            "2024-03-01T12:00:00.Z stdout F x",
            "\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9} stdout F x",
        ] {
            assert_eq!(parse_cri(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn docker_lines_full_partial_and_bad() {
        let l =
            parse_docker(r#"{"log":"a \"quoted\" line\n","stream":"stderr","time":"2024-03-01T12:00:00.5Z"}"#).unwrap();
        assert_eq!(l.text, "a \"quoted\" line");
        assert!(!l.partial);
        assert_eq!(l.stream, Stream::Stderr);
        assert_eq!(l.time_unix_nano, 1_709_294_400_500_000_000);
        assert!(
            parse_docker(r#"{"log":"no newline","stream":"stdout","time":"2024-03-01T12:00:00Z"}"#).unwrap().partial
        );
        assert_eq!(parse_docker(r#"{"log":"x\n","stream":"stdout"}"#), None);
        assert_eq!(parse_docker(r#"{"log":"x\n","stream":"stdout","time":"now"}"#), None);
        assert_eq!(parse_docker("{not json"), None);
    }

    #[test]
    fn auto_format_decides_per_line() {
        assert!(parse(Format::Auto, r#"{"log":"d\n","stream":"stdout","time":"2024-03-01T12:00:00Z"}"#).is_some());
        assert!(parse(Format::Auto, "2024-03-01T12:00:00Z stdout F c").is_some());
        assert!(parse(Format::Docker, "2024-03-01T12:00:00Z stdout F c").is_none());
    }

    #[test]
    fn pod_path_maps_to_resource_attributes() {
        let m = PodMetadata::from_path(Path::new(
            "/var/log/pods/kube-system_coredns-5d78c9869d-abcde_0c5f1a2b-1111-2222-3333-444455556666/coredns/12.log",
        ))
        .unwrap();
        assert_eq!(
            m.attributes(),
            [
                ("k8s.namespace.name", "kube-system"),
                ("k8s.pod.name", "coredns-5d78c9869d-abcde"),
                ("k8s.pod.uid", "0c5f1a2b-1111-2222-3333-444455556666"),
                ("k8s.container.name", "coredns"),
                ("k8s.container.restart_count", "12"),
            ]
        );
        for bad in
            ["/var/log/pods/ns_pod/ctr/0.log", "/var/log/pods/ns_pod_uid/ctr/zero.log", "/var/log/syslog", "0.log"]
        {
            assert_eq!(PodMetadata::from_path(Path::new(bad)), None, "{bad}");
        }
    }
}
