//! The `/metrics` endpoint and the `health_check` extension's endpoints.
