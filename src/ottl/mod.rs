//! OTTL, the OpenTelemetry Transformation Language of the Collector
//! (pkg/ottl): statements such as
//! `set(attributes["env"], "prod") where resource.attributes["k8s.ns"] == "web"`
//! and conditions such as `name == "health" or attributes["http.target"] == "/ready"`,
//! compiled once when the config is loaded and run on decoded batches.
//!
//! Guarantees:
//! - Compiling is the only check: a statement or condition either compiles
//!   (every path exists in its context, every function exists and gets the
//!   arguments it takes, every regex compiles within [`Limits`]) or yields an
//!   [`OttlError`] naming the column and a hint (for an unknown function or
//!   path, the close names).
//! - Parsing is linear in the text; the text's length and its nesting depth
//!   are bounded ([`Limits`]) before any work is done on them.
//! - Running never panics on any data: a wrong type at run time is an
//!   [`EvalError`], which the consumer handles by its `error_mode`.
//! - Conditions borrow what they read; nothing is copied to compare.
//!
//! Layering: this module knows the OTLP data model (`data/`) and nothing of
//! the components that use it (`transform`, `filter`, `tail_sampling`).

pub mod compile;
pub mod context;
pub mod funcs;
pub mod parse;
pub mod strptime;
pub mod value;
pub mod walk;

#[cfg(test)]
mod tests;

pub use compile::{Condition, Statement};
pub use context::{ContextKind, EvalCtx};
pub use value::Value;

use std::fmt;

/// Longest statement or condition, in bytes ([`Limits::max_statement_len`]).
pub const MAX_STATEMENT_LEN: usize = 16 * 1024;
/// Deepest nesting of parentheses, calls, lists and `not` ([`Limits::max_depth`]).
pub const MAX_DEPTH: usize = 64;
/// Most binary operators in one text ([`Limits::max_operators`]).
pub const MAX_OPERATORS: usize = 512;
/// Largest compiled regex, in bytes ([`Limits::max_regex_size`]).
pub const MAX_REGEX_SIZE: usize = 1 << 20;

/// Bounds on what a config may ask of the parser and the regex engine.
/// Every consumer compiles with [`Limits::default`], the constants above:
/// they bound the config's own text, so a config that needs more is split
/// into more statements rather than given a knob (README, "Limits").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Longest statement or condition, in bytes.
    pub max_statement_len: usize,
    /// Deepest nesting of parentheses, calls, lists and `not`.
    pub max_depth: usize,
    /// Most binary operators (`and`, `or`, comparisons, math) in one text:
    /// a chain of them is a tree as deep as it is long.
    pub max_operators: usize,
    /// Largest compiled regex, in bytes (the `regex` crate's size limit).
    pub max_regex_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_statement_len: MAX_STATEMENT_LEN,
            max_depth: MAX_DEPTH,
            max_operators: MAX_OPERATORS,
            max_regex_size: MAX_REGEX_SIZE,
        }
    }
}

/// What a consumer does when a statement or condition fails at run time:
/// the Collector's `error_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorMode {
    /// Log the error, count it and go on with the next statement.
    Ignore,
    /// Count it and go on, without a log line.
    Silent,
    /// The Collector returns the error up the pipeline, which drops the
    /// batch; sluice drops the batch and counts it (see README).
    #[default]
    Propagate,
}

impl ErrorMode {
    pub fn parse(s: &str) -> Option<ErrorMode> {
        match s {
            "ignore" => Some(ErrorMode::Ignore),
            "silent" => Some(ErrorMode::Silent),
            "propagate" => Some(ErrorMode::Propagate),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorMode::Ignore => "ignore",
            ErrorMode::Silent => "silent",
            ErrorMode::Propagate => "propagate",
        }
    }
}

impl serde::Serialize for ErrorMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl schemars::JsonSchema for ErrorMode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ErrorMode".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "What a failing statement or condition does.",
            "type": "string",
            "enum": ["ignore", "silent", "propagate"]
        })
    }
}

impl<'de> serde::Deserialize<'de> for ErrorMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ErrorMode;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("ignore, silent or propagate")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ErrorMode, E> {
                ErrorMode::parse(s).ok_or_else(|| {
                    E::custom(format!("unknown error_mode \"{s}\"; expected ignore, silent or propagate"))
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// A statement or condition that does not compile.
#[derive(Debug, Clone, PartialEq)]
pub struct OttlError {
    pub statement: String,
    /// 1-based column, in characters.
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl OttlError {
    pub fn at(text: &str, byte: usize, message: impl Into<String>, hint: Option<&str>) -> Self {
        let byte = byte.min(text.len());
        let column = text.get(..byte).map_or(byte, |t| t.chars().count()) + 1;
        // Very long statements are cut in messages.
        let statement = if text.chars().count() > 200 {
            let cut: String = text.chars().take(200).collect();
            format!("{cut}…")
        } else {
            text.to_string()
        };
        OttlError { statement, column, message: message.into(), hint: hint.map(str::to_string) }
    }
}

impl fmt::Display for OttlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.statement.is_empty() {
            // Not about one text (a group's shape).
            return f.write_str(&self.message);
        }
        write!(f, "in {:?} at column {}: {}", self.statement, self.column, self.message)
    }
}

impl std::error::Error for OttlError {}

/// A statement or condition that failed on one item.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalError(pub String);

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) fn eval_err<T>(msg: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError(msg.into()))
}
