//! The few `google.rpc` messages OTLP error answers carry, defined here
//! because no dependency ships them: `Status` (the OTLP/HTTP error body and
//! the gRPC `grpc-status-details-bin`) and `RetryInfo` (how long to back off).

use prost::Message;

/// `google.rpc.Status`. In JSON only `code` and `message` are written: no
/// HTTP error here carries details.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    #[serde(skip)]
    pub details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoAny {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoDuration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// The `grpc-status-details-bin` payload of a retryable error: the status
/// again, with a RetryInfo that OTLP exporters (the Collector's, ours) honour.
pub fn retry_details(code: tonic::Code, message: &str, retry_after_secs: u64) -> bytes::Bytes {
    let info = RetryInfo {
        retry_delay: Some(ProtoDuration { seconds: i64::try_from(retry_after_secs).unwrap_or(i64::MAX), nanos: 0 }),
    };
    let status = RpcStatus {
        code: code as i32,
        message: message.to_string(),
        details: vec![ProtoAny {
            type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
            value: info.encode_to_vec(),
        }],
    };
    status.encode_to_vec().into()
}
