//! The `grpc-status-details-bin` a receiver sends with a retryable refusal.
//! The messages themselves live in [`crate::rpc`], shared with exporters.

/// The status again, with a RetryInfo that OTLP exporters (the Collector's,
/// ours) honour.
pub fn retry_details(code: tonic::Code, message: &str, retry_after_secs: u64) -> bytes::Bytes {
    crate::rpc::status_with_retry_info(code as i32, message, std::time::Duration::from_secs(retry_after_secs)).into()
}
