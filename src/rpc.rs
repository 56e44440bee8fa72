//! The few `google.rpc` messages OTLP errors carry, shared by receivers (which
//! write them) and exporters (which read them): `Status` (the gRPC
//! `grpc-status-details-bin` trailer and the OTLP/HTTP error body) and
//! `RetryInfo` (how long to back off). Defined here rather than pulling in a
//! googleapis crate for four messages.

use prost::Message;
use std::time::Duration;

pub const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// `google.rpc.Status`. In JSON only `code` and `message` are written: no
/// OTLP/HTTP error sluice sends carries details.
#[derive(Clone, PartialEq, Message, serde::Serialize)]
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
#[derive(Clone, PartialEq, Message)]
pub struct ProtoAny {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, Message)]
pub struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, Message)]
pub struct ProtoDuration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl ProtoDuration {
    /// Negative or out-of-range values give `None`: a server's bad hint must
    /// not make us wait forever or panic.
    pub fn to_std(&self) -> Option<Duration> {
        if self.seconds < 0 || self.nanos < 0 || self.nanos >= 1_000_000_000 {
            return None;
        }
        Some(Duration::new(self.seconds as u64, self.nanos as u32))
    }
}

/// The delay of the first `RetryInfo` among an encoded `google.rpc.Status`'s
/// details; `None` when absent or undecodable.
pub fn retry_delay(status_details: &[u8]) -> Option<Duration> {
    let status = RpcStatus::decode(status_details).ok()?;
    status
        .details
        .iter()
        .filter(|any| any.type_url == RETRY_INFO_TYPE_URL)
        .find_map(|any| RetryInfo::decode(any.value.as_slice()).ok()?.retry_delay?.to_std())
}

/// Encodes a `google.rpc.Status` carrying a `RetryInfo`: what a server sends
/// to ask for a delay (receivers refusing data; tests playing a backend).
pub fn status_with_retry_info(code: i32, message: &str, delay: Duration) -> Vec<u8> {
    let info = RetryInfo {
        retry_delay: Some(ProtoDuration { seconds: delay.as_secs() as i64, nanos: delay.subsec_nanos() as i32 }),
    };
    RpcStatus {
        code,
        message: message.to_string(),
        details: vec![ProtoAny { type_url: RETRY_INFO_TYPE_URL.to_string(), value: info.encode_to_vec() }],
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_round_trips() {
        let bytes = status_with_retry_info(14, "busy", Duration::from_millis(1500));
        assert_eq!(retry_delay(&bytes), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn garbage_and_foreign_details_give_no_delay() {
        assert_eq!(retry_delay(b"\xff\xff\xff"), None);
        let other = RpcStatus {
            code: 8,
            message: String::new(),
            details: vec![ProtoAny { type_url: "type.googleapis.com/google.rpc.QuotaFailure".into(), value: vec![] }],
        };
        assert_eq!(retry_delay(&other.encode_to_vec()), None);
        let negative = ProtoDuration { seconds: -1, nanos: 0 };
        assert_eq!(negative.to_std(), None);
    }
}
