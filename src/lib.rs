//! sluice: a telemetry pipeline agent. Receivers decode OTLP into batches,
//! pipelines of synchronous processors decide what to keep, and exporters send
//! it on, with every bound configurable and every drop counted.

pub mod components;
pub mod config;
pub mod connectors;
pub mod data;
pub mod exporters;
pub mod extensions;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod ottl;
pub mod pipeline;
pub mod processors;
pub mod queue;
pub mod receivers;
pub mod rpc;
pub mod service;
pub mod telemetry;
pub mod top;
