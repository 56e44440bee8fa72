//! Environment expansion in config values, as the Collector does it.
