//! OTLP metrics as Prometheus series, shared by the `prometheusremotewrite`
//! exporter (and a later `prometheus` scrape exporter): metric and label
//! naming ([`naming`]) and the translation of each metric type, staleness
//! and delta temporality ([`translate`]).

pub mod naming;
pub mod translate;

pub use naming::{metric_name, sanitize_label, NameKind};
pub use translate::{
    stale_nan, DeltaOptions, Dropped, Family, FamilyType, Labels, SeriesSet, TranslateOptions, Translator,
    STALE_NAN_BITS,
};

#[cfg(test)]
mod tests;
