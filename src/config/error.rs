//! Config errors: each names the YAML path of the problem, the line where it
//! is, what is wrong and, where one can be guessed, a hint.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// `::`-joined path, e.g. `exporters::otlp/tempo::retry_on_failure::max_interval`.
    /// Empty for errors about the whole document.
    pub path: String,
    /// 1-based line in the config file, when known.
    pub line: Option<usize>,
    pub message: String,
    /// e.g. `did you mean "max_interval"?`
    pub hint: Option<String>,
    /// The `--config` source `line` is in, when several were merged.
    pub source: Option<String>,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, line: Option<usize>, message: impl Into<String>) -> Self {
        ConfigError { path: path.into(), line, message: message.into(), hint: None, source: None }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn io(path: &std::path::Path, e: std::io::Error) -> Self {
        ConfigError::new("", None, format!("cannot read config file {}: {e}", path.display()))
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0: a value that came from the command line (`--set`).
        let place = match (self.line.filter(|l| *l > 0), &self.source) {
            (Some(line), Some(source)) => Some(format!("{source} line {line}")),
            (Some(line), None) => Some(format!("line {line}")),
            (None, Some(source)) => Some(source.clone()),
            (None, None) => None,
        };
        if !self.path.is_empty() {
            write!(f, "{}", self.path)?;
            if let Some(place) = place {
                write!(f, " ({place})")?;
            }
            write!(f, ": ")?;
        } else if let Some(place) = place {
            write!(f, "{place}: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "; hint: {h}")?;
        }
        Ok(())
    }
}

/// Every problem found in one config, in document order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn single(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(f, "invalid configuration: {n} error{}", if n == 1 { "" } else { "s" })?;
        for e in &self.0 {
            writeln!(f, "  * {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
