//! Configuration of the `nop` exporter: it has no settings, as the
//! Collector's; an unknown key is an error rather than silently ignored.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NopExporterConfig {}
