//! The `otlp` exporter.
pub mod config;
