//! OTLP metrics as Prometheus series, shared by the `prometheusremotewrite`
//! exporter (and a later `prometheus` scrape exporter): metric and label
//! naming ([`naming`]) and the translation of each metric type, staleness
//! and delta temporality ([`translate`]).
use crate::config::component::Checker;

pub mod naming;
pub mod translate;

pub use naming::{metric_name, sanitize_label, NameKind};
pub use translate::{
    stale_nan, DeltaOptions, Dropped, Family, FamilyType, Labels, SeriesSet, TranslateOptions, Translator,
    STALE_NAN_BITS,
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

#[cfg(test)]
mod tests;
