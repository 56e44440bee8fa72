//! Configuration of the `attributes` processor: the Collector's `actions:`
//! list and its optional `include` / `exclude` match properties (see
//! `matcher`).

use super::actions::{ActionConfig, Actions};
use super::matcher::{MatchConfig, Matcher};
use crate::config::component::Checker;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
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

/// Compiles the `include` or `exclude` match properties; `Some(None)` when
/// they are absent, `None` after reporting their errors.
pub fn compile_matcher(c: &mut Checker, field: &str, m: Option<&MatchConfig>) -> Option<Option<Matcher>> {
    let Some(m) = m else { return Some(None) };
    match Matcher::compile(m) {
        Ok(matcher) => Some(Some(matcher)),
        Err(errors) => {
            for e in errors {
                let path: Vec<String> = std::iter::once(field.to_string()).chain(e.path).collect();
                c.error_at(&path, e.message, e.hint);
            }
            None
        }
    }
}

/// Compiles the action list of `attributes` (`actions:`) or `resource`
/// (`attributes:`); `None` after reporting its errors.
pub fn compile_actions(c: &mut Checker, field: &'static str, actions: &[ActionConfig]) -> Option<Actions> {
    if actions.is_empty() {
        let hint = format!("e.g. {field}: [{{key: deployment.environment, value: production, action: upsert}}]");
        c.error(&[field], format!("{field} must list at least one action"), Some(&hint));
        return None;
    }
    let (compiled, errors) = Actions::compile(actions);
    for e in &errors {
        let i = e.index.to_string();
        let mut path = vec![field, i.as_str()];
        if !e.field.is_empty() {
            path.push(e.field);
        }
        c.error(&path, e.message.clone(), e.hint.as_deref());
    }
    errors.is_empty().then_some(compiled)
}
