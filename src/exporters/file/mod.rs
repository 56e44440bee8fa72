//! The `file` exporter.
pub mod config;
