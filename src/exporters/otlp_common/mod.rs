//! What the `otlp` and `otlphttp` exporters share.

pub mod config;
pub use config::*;
