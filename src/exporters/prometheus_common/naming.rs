//! Metric and label names as the OpenTelemetry specification ("Prometheus and
//! OpenMetrics compatibility") and the Collector's translator write them.

/// What a metric becomes in Prometheus; decides the suffixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// A monotonic sum: gets `_total`.
    Counter,
    /// A gauge or non-monotonic sum: unit `1` gets `_ratio`.
    Gauge,
    /// Histograms and summaries: the unit only (`_bucket`/`_sum`/`_count` are added per series).
    Other,
}

/// UCUM units to Prometheus's spelled-out base units (the Collector's `unitMap`).
fn main_unit(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        "$" => "dollars",
        _ => return None,
    })
}

/// The denominator of `x/y` units (the Collector's `perUnitMap`).
fn per_unit(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

/// Drops `{...}` annotations: `{request}` is no unit, `By{packet}` is `By`.
fn strip_annotations(unit: &str) -> String {
    let mut out = String::with_capacity(unit.len());
    let mut depth = 0usize;
    for c in unit.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.trim().to_string()
}

fn tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !c.is_ascii_alphanumeric()).filter(|t| !t.is_empty())
}

/// The words of a metric name: split on every character Prometheus does not
/// allow in a name and on `_`, keeping `:` (valid in names, used by
/// recording rules: `slo:sli_error:ratio_rate5m`), as the Collector's
/// translator does.
fn name_tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == ':')).filter(|t| !t.is_empty())
}

/// The words a unit adds to a name: `ms` → `milliseconds`, `By/s` →
/// `bytes_per_second`, an unknown unit as its own cleaned words.
pub fn unit_words(unit: &str) -> Vec<String> {
    let unit = strip_annotations(unit);
    if unit.is_empty() {
        return Vec::new();
    }
    let (main, per) = match unit.split_once('/') {
        Some((m, p)) => (m.trim(), Some(p.trim())),
        None => (unit.as_str(), None),
    };
    let mut words: Vec<String> = match main_unit(main) {
        Some(w) => tokens(w).map(str::to_string).collect(),
        None => tokens(main).map(str::to_string).collect(),
    };
    if let Some(per) = per.filter(|p| !p.is_empty()) {
        let pw: Vec<String> = match per_unit(per) {
            Some(w) => vec![w.to_string()],
            None => tokens(per).map(str::to_string).collect(),
        };
        if !pw.is_empty() {
            words.push("per".into());
            words.extend(pw);
        }
    }
    words
}

/// The Prometheus name of an OTLP metric. With `add_suffixes` the name's
/// words are joined by `_`, the unit's words are appended unless already in
/// the name, counters end in `_total` and unitless (`1`) gauges in `_ratio`;
/// without, only invalid characters are replaced. `namespace` is a prefix.
pub fn metric_name(name: &str, unit: &str, kind: NameKind, add_suffixes: bool, namespace: &str) -> String {
    let mut out = if add_suffixes {
        let mut words: Vec<String> = name_tokens(name).map(str::to_string).collect();
        let unit_words = unit_words(unit);
        if !unit_words.is_empty() {
            // No duplicate suffix: `request.duration.seconds` with unit `s` stays as is.
            let tail = &words[words.len().saturating_sub(unit_words.len())..];
            if tail != unit_words.as_slice() {
                words.extend(unit_words);
            }
        }
        match kind {
            NameKind::Counter => {
                words.retain(|w| w != "total");
                words.push("total".into());
            }
            NameKind::Gauge if strip_annotations(unit) == "1" && words.last().map(String::as_str) != Some("ratio") => {
                words.push("ratio".into())
            }
            _ => {}
        }
        words.join("_")
    } else {
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == ':' { c } else { '_' }).collect()
    };
    if !namespace.is_empty() {
        out = format!("{}_{out}", sanitize_label(namespace));
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A valid Prometheus label name: invalid characters become `_`, a leading
/// digit gets `key_` in front, and a leading `_` gets `key` so user labels
/// never land in the reserved `__` space.
pub fn sanitize_label(name: &str) -> String {
    if name.is_empty() {
        return String::new();
    }
    let mut out: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    } else if out.starts_with('_') {
        out.insert_str(0, "key");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(name: &str, unit: &str, kind: NameKind) -> String {
        metric_name(name, unit, kind, true, "")
    }

    #[test]
    fn unit_suffixes_from_ucum() {
        assert_eq!(n("http.server.duration", "ms", NameKind::Other), "http_server_duration_milliseconds");
        assert_eq!(n("process.uptime", "s", NameKind::Gauge), "process_uptime_seconds");
        assert_eq!(n("system.memory.usage", "By", NameKind::Gauge), "system_memory_usage_bytes");
        assert_eq!(n("e2e.temperature", "Cel", NameKind::Gauge), "e2e_temperature_celsius");
        assert_eq!(n("net.io", "By/s", NameKind::Gauge), "net_io_bytes_per_second");
        assert_eq!(n("speed", "m/h", NameKind::Gauge), "speed_meters_per_hour");
        assert_eq!(n("odd", "furlongs", NameKind::Gauge), "odd_furlongs");
    }

    #[test]
    fn counters_ratios_and_annotations() {
        assert_eq!(n("e2e.requests", "{request}", NameKind::Counter), "e2e_requests_total");
        assert_eq!(n("requests.total", "", NameKind::Counter), "requests_total");
        assert_eq!(n("bytes.sent", "By", NameKind::Counter), "bytes_sent_bytes_total");
        assert_eq!(n("packets", "By{packet}", NameKind::Counter), "packets_bytes_total");
        assert_eq!(n("cpu.utilization", "1", NameKind::Gauge), "cpu_utilization_ratio");
        assert_eq!(n("cpu.ratio", "1", NameKind::Gauge), "cpu_ratio");
        assert_eq!(n("hits", "1", NameKind::Counter), "hits_total");
        assert_eq!(n("e2e.inflight", "{request}", NameKind::Gauge), "e2e_inflight");
    }

    #[test]
    fn recording_rule_names_keep_their_colons() {
        // Sloth's series, as the slo connector emits them (gauges, no unit).
        for name in [
            "slo:sli_error:ratio_rate5m",
            "slo:sli_error:ratio_rate30d",
            "slo:objective:ratio",
            "slo:period_error_budget_remaining:ratio",
            "sloth_slo_info",
        ] {
            assert_eq!(n(name, "", NameKind::Gauge), name);
            assert_eq!(metric_name(name, "", NameKind::Gauge, false, ""), name);
        }
        assert_eq!(n("job:requests:rate5m", "", NameKind::Counter), "job:requests:rate5m_total");
        assert_eq!(n("a.b:c", "ms", NameKind::Other), "a_b:c_milliseconds");
    }

    #[test]
    fn no_duplicate_suffixes_and_invalid_chars() {
        assert_eq!(n("request.duration.seconds", "s", NameKind::Other), "request_duration_seconds");
        assert_eq!(n("size_bytes", "By", NameKind::Gauge), "size_bytes");
        assert_eq!(n("my-metric/with spaces", "", NameKind::Gauge), "my_metric_with_spaces");
        assert_eq!(n("__weird__name", "", NameKind::Gauge), "weird_name");
        assert_eq!(n("2xx.count", "", NameKind::Counter), "_2xx_count_total");
        assert_eq!(metric_name("a.b-c", "ms", NameKind::Counter, false, ""), "a_b_c");
        assert_eq!(metric_name("a.b", "ms", NameKind::Other, true, "app"), "app_a_b_milliseconds");
    }

    #[test]
    fn label_sanitising() {
        assert_eq!(sanitize_label("http.method"), "http_method");
        assert_eq!(sanitize_label("route"), "route");
        assert_eq!(sanitize_label("2xx"), "key_2xx");
        assert_eq!(sanitize_label("_private"), "key_private");
        assert_eq!(sanitize_label("__name"), "key__name");
        assert_eq!(sanitize_label("über-label"), "key_ber_label");
        assert_eq!(sanitize_label(""), "");
    }
}
