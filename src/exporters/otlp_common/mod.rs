//! What the `otlp` and `otlphttp` exporters share: configuration, the rustls
//! client configuration built from `tls:`, and the `google.rpc` messages that
//! carry a server's error details and requested retry delay.

pub mod civil;
pub mod compression;
pub mod config;
pub mod tls;
pub use config::*;
