//! The `debug` exporter.
pub mod config;
