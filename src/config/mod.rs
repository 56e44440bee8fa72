//! The generic layer of configuration, below every component: YAML nodes
//! that remember their lines, `${env:}` expansion, serde over nodes,
//! durations and sizes, errors with YAML paths and hints, component IDs, and
//! the part of the component contract every kind shares
//! ([`component`]). It knows no component; the loader of a whole config is
//! the service module, above the components.

pub mod component;
pub mod de;
pub mod describe;
pub mod duration;
pub mod error;
pub mod expand;
pub mod node;
pub mod size;
pub mod suggest;

pub use component::ComponentKind;
pub use duration::Duration;
pub use error::{ConfigError, ConfigErrors};
pub use size::ByteSize;

use crate::data::Signal;
use serde::{Deserialize, Deserializer};
use std::fmt;

/// `type[/name]`, e.g. `otlp` or `otlp/tempo`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComponentId {
    pub kind: String,
    pub name: Option<String>,
}

impl ComponentId {
    pub fn parse(s: &str) -> Result<ComponentId, String> {
        let (kind, name) = match s.split_once('/') {
            Some((k, n)) => (k, Some(n)),
            None => (s, None),
        };
        if kind.is_empty() {
            return Err(format!("invalid component id \"{s}\": the type before '/' is empty"));
        }
        if let Some(n) = name {
            if n.is_empty() {
                return Err(format!("invalid component id \"{s}\": the name after '/' is empty"));
            }
        }
        let ok = |p: &str| p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok(kind) {
            return Err(format!(
                "invalid component id \"{s}\": the type may hold only letters, digits, '_', '-' and '.'"
            ));
        }
        Ok(ComponentId { kind: kind.to_string(), name: name.map(str::to_string) })
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{}/{}", self.kind, n),
            None => f.write_str(&self.kind),
        }
    }
}

/// `traces|metrics|logs[/name]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PipelineId {
    pub signal: Signal,
    pub name: Option<String>,
}

impl PipelineId {
    /// Reads `traces|metrics|logs[/name]`; the error says what is wrong.
    pub fn parse(s: &str) -> Result<PipelineId, String> {
        let (signal, name) = match s.split_once('/') {
            Some((sig, n)) => (sig, Some(n)),
            None => (s, None),
        };
        let Some(signal) = Signal::ALL.into_iter().find(|x| x.as_str() == signal) else {
            return Err(format!(
                "\"{s}\" is not a pipeline id: it begins with traces, metrics or logs, optionally followed by /name"
            ));
        };
        if name.is_some_and(str::is_empty) {
            return Err(format!("\"{s}\" is not a pipeline id: the name after '/' is empty"));
        }
        Ok(PipelineId { signal, name: name.map(str::to_string) })
    }
}

impl fmt::Display for PipelineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{}/{}", self.signal, n),
            None => write!(f, "{}", self.signal),
        }
    }
}

/// Lets `grpc:` with an empty body mean "enabled with defaults", as the Collector does.
pub fn null_as_default<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    let v: Option<T> = Option::deserialize(d)?;
    Ok(Some(v.unwrap_or_default()))
}
