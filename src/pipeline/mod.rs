//! Builds and runs pipelines.
