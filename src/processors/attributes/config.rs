//! Configuration of the `attributes` processor: the Collector's
//! `actions:` list. `include`/`exclude` match properties are not supported
//! yet; every item of the pipeline is acted on.

use super::actions::ActionConfig;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AttributesConfig {
    /// Applied in order to each span's, log record's or data point's attributes.
    #[serde(default)]
    pub actions: Vec<ActionConfig>,
}
