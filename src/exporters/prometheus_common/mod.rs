//! OTLP metrics as Prometheus series, shared by the `prometheusremotewrite`
//! exporter (and a later `prometheus` scrape exporter): metric and label
//! naming ([`naming`]) and the translation of each metric type, staleness
//! and delta temporality ([`translate`]).
use crate::config::component::Checker;

pub mod naming;
pub mod translate;

use crate::telemetry::PrometheusExporterMetrics;
pub use naming::{metric_name, sanitize_label, NameKind};
pub use translate::{
    escaped_len, line_bytes, stale_nan, DeltaOptions, Dropped, Family, FamilyType, Labels, PointLimits, SeriesSet,
    TranslateOptions, Translator, STALE_NAN_BITS,
};

/// Label names that would be renamed on the way out are refused instead.
pub fn prometheus_label_names<'a>(c: &mut Checker, field: &str, names: impl Iterator<Item = &'a String>) {
    for name in names {
        if name.is_empty() || crate::exporters::prometheus_common::sanitize_label(name) != *name {
            c.error(
                &[field, name],
                format!("{field} name {name:?} is not a valid Prometheus label name"),
                Some("use letters, digits and _, not starting with a digit or _ (e.g. cluster)"),
            );
        }
    }
}

/// Adds a translation's dropped points to the exporter's counters, by reason.
pub fn count_dropped(m: &PrometheusExporterMetrics, d: &Dropped) {
    m.dropped_delta.add(d.delta_temporality);
    m.dropped_unsupported.add(d.unsupported_type);
    m.dropped_max_series.add(d.max_series);
    m.dropped_out_of_order.add(d.out_of_order);
    m.dropped_too_many_buckets.add(d.too_many_buckets);
    m.dropped_too_many_labels.add(d.too_many_labels);
    m.dropped_label_value_too_long.add(d.label_value_too_long);
    m.dropped_batch_too_large.add(d.batch_too_large);
}

/// Checks the point limits of an exporter's `limits` section: each from 1
/// to a ceiling far above any real need.
pub fn check_limits(c: &mut Checker, l: &PointLimits) {
    use translate::{
        DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_HISTOGRAM_BUCKETS, DEFAULT_MAX_LABELS_PER_SERIES,
        DEFAULT_MAX_LABEL_VALUE_LENGTH,
    };
    let fields = [
        ("max_histogram_buckets", l.max_histogram_buckets, 1 << 20, DEFAULT_MAX_HISTOGRAM_BUCKETS),
        ("max_labels_per_series", l.max_labels_per_series, 1 << 16, DEFAULT_MAX_LABELS_PER_SERIES),
        ("max_label_value_length", l.max_label_value_length, 1 << 24, DEFAULT_MAX_LABEL_VALUE_LENGTH),
        ("max_batch_bytes", l.max_batch_bytes, 1 << 34, DEFAULT_MAX_BATCH_BYTES),
    ];
    for (field, value, max, default) in fields {
        if value == 0 || value > max {
            let hint = format!("the default is {default}; points over the bound are dropped and counted");
            c.error(&["limits", field], format!("{field} must be from 1 to {max}, not {value}"), Some(&hint));
        }
    }
}

#[cfg(test)]
mod tests;
