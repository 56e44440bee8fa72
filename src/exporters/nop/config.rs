//! Configuration of the `nop` exporter: it has no settings, as the
//! Collector's; an unknown key is an error rather than silently ignored.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NopExporterConfig {}
