//! The `otlphttp` exporter.
pub mod config;
