//! The `otlp` receiver: OTLP over gRPC and over HTTP (protobuf and JSON).
pub mod config;
