//! Configuration of the `attributes` processor: the Collector's `actions:`
//! list and its optional `include` / `exclude` match properties (see
//! `matcher`).

use super::actions::ActionConfig;
use super::matcher::MatchConfig;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AttributesConfig {
    /// Applied in order to each span's, log record's or data point's attributes.
    #[serde(default)]
    pub actions: Vec<ActionConfig>,
    /// Act only on items that match (boxed: most configs have none).
    #[serde(default)]
    pub include: Option<Box<MatchConfig>>,
    /// Never act on items that match.
    #[serde(default)]
    pub exclude: Option<Box<MatchConfig>>,
}
