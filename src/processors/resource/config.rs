//! Configuration of the `resource` processor. As in the Collector, its
//! action list is named `attributes:` (not `actions:`).

use crate::processors::attributes::actions::ActionConfig;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    /// Applied in order to each resource's attributes.
    #[serde(default)]
    pub attributes: Vec<ActionConfig>,
}
