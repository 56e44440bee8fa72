//! OTLP/HTTP: POST of protobuf or JSON bodies on the three signal paths,
//! over HTTP/1.1 or h2c.
//!
//! Guarantees: a body is never held beyond `max_request_body_size`, neither as
//! received (Content-Length or chunked) nor after decompression (413). Errors
//! of a request whose content type is known carry a `google.rpc.Status` in that
//! content type; others carry plain text. Unsupported Content-Encoding is 415,
//! as RFC 9110 §15.5.16 prescribes for an unsupported content coding.

use super::admission::{body_cut, Admission, BodyCut, Held, INLINE_BYTES};
use super::config::HttpServerConfig;
use super::decode::{prepare, Compression, DecodeError, Format, Rejection, RequestLimits};
use super::{Ingest, Security, RETRY_AFTER_SECS};
use crate::data::estimate::Estimate;
use crate::data::Signal;
use crate::rpc::RpcStatus;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use opentelemetry_proto::tonic::collector::{
    logs::v1::ExportLogsServiceResponse, metrics::v1::ExportMetricsServiceResponse,
    trace::v1::ExportTraceServiceResponse,
};
use prost::Message;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

struct Routes {
    traces: String,
    metrics: String,
    logs: String,
    limit: usize,
    cors: Option<super::config::CorsConfig>,
    /// `response_headers`, added to every answer.
    extra_headers: http::HeaderMap,
    /// `compression_algorithms`, lowercase; `None`: every one sluice decodes.
    algorithms: Option<Vec<String>>,
    admission: Admission,
}

/// OTLP/HTTP over TLS: h2 preferred, HTTP/1.1 for clients that do not offer it.
pub(super) const ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];

pub(super) async fn serve(
    cfg: HttpServerConfig,
    listener: TcpListener,
    ingest: Ingest,
    shutdown: watch::Receiver<bool>,
    security: Security,
) {
    let routes = Arc::new(Routes {
        // As the Collector: 0 means the default, not "no body at all".
        limit: match cfg.max_request_body_size {
            0 => usize::try_from(HttpServerConfig::default().max_request_body_size).unwrap_or(usize::MAX),
            n => usize::try_from(n).unwrap_or(usize::MAX),
        },
        traces: super::config::url_path(&cfg.traces_url_path),
        metrics: super::config::url_path(&cfg.metrics_url_path),
        logs: super::config::url_path(&cfg.logs_url_path),
        cors: cfg.cors.clone().filter(|c| !c.allowed_origins.is_empty()),
        // Checked at validation: a bad one is skipped here rather than failing.
        extra_headers: cfg
            .response_headers
            .iter()
            .filter_map(|(k, v)| {
                Some((http::HeaderName::from_bytes(k.as_bytes()).ok()?, HeaderValue::from_str(v).ok()?))
            })
            .collect(),
        algorithms: cfg.compression_algorithms.as_ref().map(|a| a.iter().map(|s| s.to_ascii_lowercase()).collect()),
        admission: ingest.admission(&cfg.limits, cfg.max_request_body_size, body_timeout(&cfg)),
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    // hyper's header timer is off unless given a timer; 0 keeps it off, as Go's 0 means no limit.
    let header_timeout = Some(cfg.read_header_timeout.get()).filter(|d| !d.is_zero());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(cfg.keepalives_enabled);
    builder.http2().max_frame_size(super::MAX_HTTP2_FRAME);
    if cfg.max_concurrent_streams > 0 {
        builder.http2().max_concurrent_streams(cfg.max_concurrent_streams);
    }
    let idle = Some(cfg.idle_timeout.get()).filter(|d| !d.is_zero());
    let mut policy = security.policy(unauthorized, idle, header_timeout, &cfg.limits);
    policy.open_preflight = routes.cors.is_some();
    let ingest = Arc::new(ingest);
    let handler = move |req| handle(Arc::clone(&ingest), Arc::clone(&routes), req);
    crate::receivers::listener::serve_connections(listener, builder, handler, shutdown, "http", policy).await;
}

/// The whole-body deadline: `limits.body_timeout`, or the Collector's
/// `read_timeout` (Go's bound on reading a whole request) when shorter.
fn body_timeout(cfg: &HttpServerConfig) -> Option<std::time::Duration> {
    let ours = Some(cfg.limits.body_timeout.get()).filter(|d| !d.is_zero());
    let collectors = cfg.read_timeout.map(|d| d.get()).filter(|d| !d.is_zero());
    match (ours, collectors) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// 401 with the authenticator's challenge; the body is a `google.rpc.Status`
/// (UNAUTHENTICATED) in the request's content type, or plain text.
fn unauthorized(
    failure: crate::extensions::auth::AuthFailure,
    authenticator: &crate::extensions::auth::Authenticator,
    req: &Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let message = failure.message().to_string();
    let mut resp = match Format::from_content_type(ct) {
        Some(format) => {
            let st = RpcStatus { code: tonic::Code::Unauthenticated as i32, message, details: Vec::new() };
            let body = match format {
                Format::Protobuf => st.encode_to_vec(),
                Format::Json => to_json(&st),
            };
            respond(StatusCode::UNAUTHORIZED, format.content_type(), body)
        }
        None => text(StatusCode::UNAUTHORIZED, message),
    };
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, authenticator.challenge());
    resp
}

/// One request: a CORS preflight is answered here; any other answer gets
/// the CORS headers (for an allowed origin) and `response_headers`.
async fn handle(
    ingest: Arc<Ingest>,
    routes: Arc<Routes>,
    req: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    if req.extensions().get::<crate::receivers::h1_framing::AmbiguousFraming>().is_some() {
        // RFC 9112 §6.1: a server may reject it; a request-smuggling vector.
        // hyper closes the connection after this answer; the body is never read.
        ingest.refused_request("ambiguous_framing");
        return text(
            StatusCode::BAD_REQUEST,
            "the request carries both Content-Length and Transfer-Encoding (RFC 9112 section 6.1); send one".into(),
        );
    }
    let origin = req.headers().get(header::ORIGIN).cloned();
    let allowed = match (&routes.cors, &origin) {
        (Some(cors), Some(o)) => o.to_str().is_ok_and(|o| origin_allowed(&cors.allowed_origins, o)),
        _ => false,
    };
    let is_preflight = routes.cors.is_some() && crate::receivers::listener::is_preflight(&req);
    let mut resp = match &routes.cors {
        Some(cors) if is_preflight => preflight(cors, allowed, &req),
        _ => handle_otlp(ingest, Arc::clone(&routes), req).await,
    };
    let headers = resp.headers_mut();
    if let (true, false, Some(o)) = (allowed, is_preflight, origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    for (k, v) in &routes.extra_headers {
        headers.insert(k.clone(), v.clone());
    }
    resp
}

/// Whether `origin` matches one of the allowed origins: `*`, exact (any
/// case), or with one `*` standing for any characters.
fn origin_allowed(allowed: &[String], origin: &str) -> bool {
    let origin = origin.to_ascii_lowercase();
    allowed.iter().any(|a| {
        let a = a.to_ascii_lowercase();
        match a.split_once('*') {
            None => a == origin,
            Some((prefix, suffix)) => {
                origin.len() >= prefix.len() + suffix.len() && origin.starts_with(prefix) && origin.ends_with(suffix)
            }
        }
    })
}

/// The answer to a preflight, as rs/cors (the Collector's) gives it: 204,
/// with the CORS headers only when the origin, the method (POST) and every
/// requested header are allowed.
fn preflight(
    cors: &super::config::CorsConfig,
    origin_ok: bool,
    req: &Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    for v in ["Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"] {
        h.append(header::VARY, HeaderValue::from_static(v));
    }
    let method_ok = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .is_some_and(|m| m.as_bytes().eq_ignore_ascii_case(b"POST"));
    let requested = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS).and_then(|v| v.to_str().ok());
    let any_header = cors.allowed_headers.iter().any(|a| a == "*");
    const ALWAYS: &[&str] = &["origin", "accept", "content-type", "x-requested-with"];
    let headers_ok = requested.is_none_or(|r| {
        any_header
            || r.split(',').map(str::trim).filter(|x| !x.is_empty()).all(|x| {
                ALWAYS.iter().any(|a| a.eq_ignore_ascii_case(x))
                    || cors.allowed_headers.iter().any(|a| a.eq_ignore_ascii_case(x))
            })
    });
    if !(origin_ok && method_ok && headers_ok) {
        return resp;
    }
    if let Some(o) = req.headers().get(header::ORIGIN) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o.clone());
    }
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST"));
    if let Some(r) = requested.and_then(|r| HeaderValue::from_str(r).ok()) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, r);
    }
    if cors.max_age > 0 {
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(cors.max_age));
    }
    resp
}

async fn handle_otlp(
    ingest: Arc<Ingest>,
    routes: Arc<Routes>,
    req: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let signal = if path == routes.traces {
        Signal::Traces
    } else if path == routes.metrics {
        Signal::Metrics
    } else if path == routes.logs {
        Signal::Logs
    } else {
        return text(StatusCode::NOT_FOUND, format!("no OTLP endpoint at {path}"));
    };
    if !ingest.accepts(signal) {
        return text(StatusCode::NOT_FOUND, ingest.no_pipeline_message(signal));
    }
    if req.method() != Method::POST {
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, format!("method {} not allowed; use POST", req.method()));
        resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return resp;
    }
    let header_str = |name| req.headers().get(name).map(|v| v.to_str().unwrap_or("<not visible ASCII>"));
    let ct = header_str(header::CONTENT_TYPE).unwrap_or("");
    let Some(format) = Format::from_content_type(ct) else {
        ingest.malformed(signal);
        return text(StatusCode::UNSUPPORTED_MEDIA_TYPE, DecodeError::UnsupportedContentType(ct.into()).to_string());
    };
    let ce = header_str(header::CONTENT_ENCODING);
    let listed = |ce: &str| {
        let ce = ce.trim().to_ascii_lowercase();
        ce.is_empty() || ce == "identity" || routes.algorithms.as_ref().is_none_or(|a| a.contains(&ce))
    };
    let Some(compression) = Compression::from_content_encoding(ce).filter(|_| ce.is_none_or(listed)) else {
        ingest.malformed(signal);
        let e = DecodeError::UnsupportedEncoding(ce.unwrap_or("").into());
        return status(format, e.http_status(), e.to_string());
    };
    let limit = routes.limit;
    let admission = &routes.admission;
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        ingest.malformed(signal);
        ingest.refused_request("body_too_large");
        return status(format, StatusCode::PAYLOAD_TOO_LARGE, DecodeError::TooLarge { limit }.to_string());
    }
    // A declared length is claimed whole before a byte is read; a chunked
    // body claims its bytes as they come.
    let held = Held::new(&admission.budget);
    let prepaid = declared.unwrap_or(0);
    if !held.take(prepaid) {
        ingest.refused_request(BodyCut::OverBudget.reason());
        return refused_text(format, BodyCut::OverBudget.to_string());
    }
    // Limited stops reading as soon as a chunked body passes the limit.
    let guarded = admission.guard(req.into_body(), Arc::clone(&held), prepaid);
    let body = match Limited::new(guarded, limit).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            if e.is::<http_body_util::LengthLimitError>() {
                ingest.malformed(signal);
                ingest.refused_request("body_too_large");
                return status(format, StatusCode::PAYLOAD_TOO_LARGE, DecodeError::TooLarge { limit }.to_string());
            }
            return match body_cut(&*e) {
                Some(tonic::Code::Unavailable) => refused_text(format, e.to_string()),
                Some(_) => status(format, StatusCode::REQUEST_TIMEOUT, e.to_string()),
                None => {
                    ingest.malformed(signal);
                    status(format, StatusCode::BAD_REQUEST, format!("cannot read request body: {e}"))
                }
            };
        }
    };
    // Decompressing, walking, admitting and decoding, off the async workers.
    let encoded = ingest.takes_encoded(signal);
    let inline = compression == Compression::Identity && body.len() <= INLINE_BYTES;
    let limits = RequestLimits { max_plain: limit, max_decoded: admission.max_decoded };
    let pipelines = Arc::clone(&ingest);
    let prepared = admission
        .decode(inline, move || {
            let mut decoded_bytes = 0;
            let admit = |e: Estimate| {
                decoded_bytes = e.decoded_bytes;
                pipelines.admit_estimate(signal, e)
            };
            prepare(signal, format, compression, body, limits, encoded, admit).map(|batch| (batch, decoded_bytes))
        })
        .await;
    let (batch, decoded_bytes) = match prepared {
        Some(Ok(prepared)) => prepared,
        Some(Err(rejection)) => {
            ingest.rejected(signal, &rejection);
            return match rejection {
                Rejection::Malformed(e) => status(format, e.http_status(), e.to_string()),
                Rejection::DecodedTooLarge { .. } => {
                    status(format, StatusCode::PAYLOAD_TOO_LARGE, rejection.to_string())
                }
                Rejection::Refused(refusal) => refused(format, refusal),
            };
        }
        None => return status(format, StatusCode::INTERNAL_SERVER_ERROR, "the request could not be decoded".into()),
    };
    let delivered = ingest.settle(ingest.deliver(batch, decoded_bytes)).await;
    drop(held);
    if let Err(refusal) = delivered {
        return refused(format, refusal);
    }
    let body = match (signal, format) {
        (Signal::Traces, Format::Protobuf) => ExportTraceServiceResponse::default().encode_to_vec(),
        (Signal::Metrics, Format::Protobuf) => ExportMetricsServiceResponse::default().encode_to_vec(),
        (Signal::Logs, Format::Protobuf) => ExportLogsServiceResponse::default().encode_to_vec(),
        // The crate's serde writes `{"partialSuccess":null}`; an absent field is the canonical form.
        (_, Format::Json) => b"{}".to_vec(),
    };
    respond(StatusCode::OK, format.content_type(), body)
}

/// 503 with Retry-After: the OTLP/HTTP spec's retryable refusal.
fn refused(format: Format, refusal: crate::receivers::Refusal) -> Response<Full<Bytes>> {
    refused_text(format, refusal.to_string())
}

fn refused_text(format: Format, message: String) -> Response<Full<Bytes>> {
    let mut resp = status(format, StatusCode::SERVICE_UNAVAILABLE, message);
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    resp
}

fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail; an empty object is a valid answer anyway.
    serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec())
}

fn respond(code: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = code;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn text(code: StatusCode, message: String) -> Response<Full<Bytes>> {
    respond(code, "text/plain; charset=utf-8", message.into_bytes())
}

/// An error answered with a `google.rpc.Status` in the request's format.
fn status(format: Format, code: StatusCode, message: String) -> Response<Full<Bytes>> {
    let st = RpcStatus { code: grpc_code_for(code) as i32, message, details: Vec::new() };
    let body = match format {
        Format::Protobuf => st.encode_to_vec(),
        Format::Json => to_json(&st),
    };
    respond(code, format.content_type(), body)
}

/// The gRPC code matching an HTTP status, as the spec's error body carries it.
fn grpc_code_for(code: StatusCode) -> tonic::Code {
    match code {
        StatusCode::SERVICE_UNAVAILABLE => tonic::Code::Unavailable,
        StatusCode::PAYLOAD_TOO_LARGE => tonic::Code::ResourceExhausted,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => tonic::Code::Unimplemented,
        StatusCode::REQUEST_TIMEOUT => tonic::Code::DeadlineExceeded,
        StatusCode::INTERNAL_SERVER_ERROR => tonic::Code::Internal,
        _ => tonic::Code::InvalidArgument,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::data::{Batch, Signal};
    use crate::rpc::RpcStatus;
    use http::StatusCode;
    use prost::Message;
    use std::io::Write;

    const PB: &str = "application/x-protobuf";

    #[tokio::test]
    async fn protobuf_each_signal() {
        let h = Harness::start(Sink::recording()).await;
        for (path, body) in [
            ("/v1/traces", traces(3).encode_to_vec()),
            ("/v1/metrics", metrics().encode_to_vec()),
            ("/v1/logs", logs(2).encode_to_vec()),
        ] {
            let r = post(h.http_addr(), path, &[("content-type", PB)], body).await;
            assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
            assert_eq!(r.header("content-type"), Some(PB.to_string()));
            assert!(r.body.is_empty());
        }
        assert_eq!(h.sink.batches(), vec![Batch::Traces(traces(3)), Batch::Metrics(metrics()), Batch::Logs(logs(2))]);
        assert_eq!(h.accepted("http", Signal::Traces), 3);
        assert_eq!(h.accepted("http", Signal::Metrics), 3);
        assert_eq!(h.accepted("http", Signal::Logs), 2);
        h.stop().await;
    }

    #[tokio::test]
    async fn json_request_gets_json_answer() {
        let h = Harness::start(Sink::recording()).await;
        let body = serde_json::to_vec(&traces(2)).unwrap();
        let r = post(h.http_addr(), "/v1/traces", &[("content-type", "application/json; charset=utf-8")], body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json".to_string()));
        assert_eq!(r.text(), "{}");
        assert_eq!(h.sink.batches(), vec![Batch::Traces(traces(2))]);
        h.stop().await;
    }

    #[tokio::test]
    async fn gzip_and_chunked_bodies() {
        let h = Harness::start(Sink::recording()).await;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&logs(3).encode_to_vec()).unwrap();
        let gz = enc.finish().unwrap();
        let r = post(h.http_addr(), "/v1/logs", &[("content-type", PB), ("content-encoding", "gzip")], gz).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let r = post_chunked(h.http_addr(), "/v1/traces", PB, traces(2).encode_to_vec()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(h.sink.batches(), vec![Batch::Logs(logs(3)), Batch::Traces(traces(2))]);
        h.stop().await;
    }

    #[tokio::test]
    async fn durable_pipeline_answers_after_the_write_and_503_when_it_fails() {
        let h = Harness::start(Sink::recording()).await;
        h.sink.durable(true);
        let r = post(h.http_addr(), "/v1/traces", &[("content-type", PB)], traces(3).encode_to_vec()).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(h.accepted("http", Signal::Traces), 3);
        h.sink.durable(false);
        let r = post(h.http_addr(), "/v1/traces", &[("content-type", PB)], traces(2).encode_to_vec()).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.header("retry-after"), Some("1".to_string()));
        assert_eq!(h.refused("http", Signal::Traces), 2);
        assert_eq!(h.durable_ack_failures("http"), 1);
        h.stop().await;
    }

    #[tokio::test]
    async fn refusal_is_503_with_retry_after() {
        let h = Harness::start(Sink::recording()).await;
        h.sink.refuse(true);
        let r = post(h.http_addr(), "/v1/traces", &[("content-type", PB)], traces(5).encode_to_vec()).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.header("retry-after"), Some("1".to_string()));
        let st = RpcStatus::decode(&r.body[..]).unwrap();
        assert_eq!((st.code, st.message.as_str()), (14, "the pipeline is full; retry later"));
        assert_eq!(h.refused("http", Signal::Traces), 5);
        assert_eq!(h.accepted("http", Signal::Traces), 0);
        h.stop().await;
    }

    #[tokio::test]
    async fn truncated_protobuf_is_400_then_next_request_works() {
        let h = Harness::start(Sink::recording()).await;
        let mut body = traces(1).encode_to_vec();
        body.truncate(body.len() - 3);
        let r = post(h.http_addr(), "/v1/traces", &[("content-type", PB)], body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let st = RpcStatus::decode(&r.body[..]).unwrap();
        assert_eq!(st.code, 3);
        assert!(st.message.starts_with("cannot decode protobuf ExportTraceServiceRequest: "), "{}", st.message);
        assert_eq!(h.malformed("http", Signal::Traces), 1);
        let r = post(h.http_addr(), "/v1/traces", &[("content-type", PB)], traces(1).encode_to_vec()).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(h.sink.batches().len(), 1);
        h.stop().await;
    }

    #[tokio::test]
    async fn invalid_json_is_400_with_json_status() {
        let h = Harness::start(Sink::recording()).await;
        let r =
            post(h.http_addr(), "/v1/logs", &[("content-type", "application/json")], b"{\"resourceLogs\": [".to_vec())
                .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.header("content-type"), Some("application/json".to_string()));
        let st: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(st["code"], 3);
        assert!(st["message"].as_str().unwrap().starts_with("cannot decode JSON ExportLogsServiceRequest: "), "{st}");
        assert_eq!(h.malformed("http", Signal::Logs), 1);
        h.stop().await;
    }

    #[tokio::test]
    async fn pass_through_pipeline_gets_checked_bytes_and_the_same_errors() {
        let h = Harness::start(Sink::pass_through()).await;
        let gz = |b: Vec<u8>| {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut enc, &b).unwrap();
            enc.finish().unwrap()
        };
        let r = post(h.http_addr(), "/v1/traces", &[("content-type", PB)], traces(3).encode_to_vec()).await;
        assert_eq!(r.status, StatusCode::OK);
        let headers = [("content-type", PB), ("content-encoding", "gzip")];
        let r = post(h.http_addr(), "/v1/logs", &headers, gz(logs(2).encode_to_vec())).await;
        assert_eq!(r.status, StatusCode::OK);
        // JSON is decoded whatever the pipeline: it has no bytes to forward.
        let json = serde_json::to_vec(&traces(1)).unwrap();
        let r = post(h.http_addr(), "/v1/traces", &[("content-type", "application/json")], json).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(h.sink.encoded_offers.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(h.sink.batches(), vec![Batch::Traces(traces(3)), Batch::Logs(logs(2)), Batch::Traces(traces(1))]);
        assert_eq!(h.accepted("http", Signal::Traces), 4);
        assert_eq!(h.accepted("http", Signal::Logs), 2);

        let mut t = traces(4);
        t.resource_spans[0].scope_spans[0].spans[3].trace_id = vec![7; 5];
        let r = post(h.http_addr(), "/v1/traces", &[("content-type", PB)], t.encode_to_vec()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            RpcStatus::decode(&r.body[..]).unwrap().message,
            "resource_spans[0].scope_spans[0].spans[3]: trace_id must be 16 bytes, got 5"
        );
        let mut body = traces(1).encode_to_vec();
        body.truncate(body.len() - 3);
        let r = post(h.http_addr(), "/v1/traces", &[("content-type", PB)], body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let st = RpcStatus::decode(&r.body[..]).unwrap();
        assert!(st.message.starts_with("cannot decode protobuf ExportTraceServiceRequest: "), "{}", st.message);
        assert_eq!(h.malformed("http", Signal::Traces), 2);
        assert_eq!(h.sink.batches().len(), 3, "nothing of a refused request reaches the pipeline");
        h.stop().await;
    }

    #[tokio::test]
    async fn wrong_trace_id_length_is_400() {
        let h = Harness::start(Sink::recording()).await;
        let mut t = traces(4);
        t.resource_spans[0].scope_spans[0].spans[3].trace_id = vec![7; 5];
        let r = post(h.http_addr(), "/v1/traces", &[("content-type", PB)], t.encode_to_vec()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            RpcStatus::decode(&r.body[..]).unwrap().message,
            "resource_spans[0].scope_spans[0].spans[3]: trace_id must be 16 bytes, got 5"
        );
        assert!(h.sink.batches().is_empty());
        h.stop().await;
    }

    #[tokio::test]
    async fn wrong_content_type_is_415() {
        let h = Harness::start(Sink::recording()).await;
        let r = post(h.http_addr(), "/v1/traces", &[("content-type", "text/plain")], b"hi".to_vec()).await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(r.text(), "unsupported content type \"text/plain\"; use application/x-protobuf or application/json");
        let r = post(h.http_addr(), "/v1/traces", &[("content-type", PB), ("content-encoding", "br")], vec![]).await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(h.malformed("http", Signal::Traces), 2);
        h.stop().await;
    }

    #[tokio::test]
    async fn oversize_is_413() {
        let h = Harness::start_with(Sink::recording(), |c| {
            c.protocols.http.as_mut().unwrap().max_request_body_size = 1000;
        })
        .await;
        let mut big = traces(1);
        big.resource_spans[0].scope_spans[0].spans[0].name = "x".repeat(5000);
        let body = big.encode_to_vec();
        let r = post(h.http_addr(), "/v1/traces", &[("content-type", PB)], body.clone()).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(RpcStatus::decode(&r.body[..]).unwrap().message, "request body larger than the limit of 1000 bytes");
        let r = post_chunked(h.http_addr(), "/v1/traces", PB, body.clone()).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&body).unwrap();
        let gz = enc.finish().unwrap();
        assert!(gz.len() < 1000);
        let r = post(h.http_addr(), "/v1/traces", &[("content-type", PB), ("content-encoding", "gzip")], gz).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(h.malformed("http", Signal::Traces), 3);
        assert!(h.sink.batches().is_empty());
        h.stop().await;
    }

    #[tokio::test]
    async fn every_collector_content_encoding_arrives_intact() {
        use super::super::decode::tests::{compressed, ENCODINGS};
        let h = Harness::start(Sink::recording()).await;
        for (codec, ce) in ENCODINGS {
            let headers = [("content-type", PB), ("content-encoding", *ce)];
            let r = post(h.http_addr(), "/v1/logs", &headers, compressed(codec, &logs(2).encode_to_vec())).await;
            assert_eq!(r.status, StatusCode::OK, "{codec}: {}", r.text());
        }
        assert_eq!(h.sink.batches(), vec![Batch::Logs(logs(2)); ENCODINGS.len()]);
        h.stop().await;
    }

    #[tokio::test]
    async fn a_bomb_of_every_content_encoding_is_413() {
        use super::super::decode::tests::{compressed, ENCODINGS};
        for sink in [Sink::recording(), Sink::pass_through()] {
            let h = Harness::start_with(sink, |c| {
                c.protocols.http.as_mut().unwrap().max_request_body_size = 64 << 10;
            })
            .await;
            for (i, (codec, ce)) in ENCODINGS.iter().enumerate() {
                let bomb = compressed(codec, &vec![0u8; 1 << 20]);
                assert!(bomb.len() < 64 << 10, "{codec}: {}", bomb.len());
                let r =
                    post(h.http_addr(), "/v1/traces", &[("content-type", PB), ("content-encoding", *ce)], bomb).await;
                assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{codec}");
                let message = RpcStatus::decode(&r.body[..]).unwrap().message;
                assert_eq!(message, "request body larger than the limit of 65536 bytes", "{codec}");
                assert_eq!(h.malformed("http", Signal::Traces), i as u64 + 1);
            }
            assert!(h.sink.batches().is_empty());
            h.stop().await;
        }
    }

    #[tokio::test]
    async fn h2c() {
        let h = Harness::start(Sink::recording()).await;
        let r = post_h2c(h.http_addr(), "/v1/metrics", PB, metrics().encode_to_vec()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(h.sink.batches(), vec![Batch::Metrics(metrics())]);
        h.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_finishes_in_flight_requests_then_closes() {
        let h = Harness::start(Sink::slow(std::time::Duration::from_millis(300))).await;
        let addr = h.http_addr();
        let in_flight = tokio::spawn(post(addr, "/v1/traces", &[("content-type", PB)], traces(1).encode_to_vec()));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let sink = h.sink.clone();
        h.stop().await;
        assert_eq!(in_flight.await.unwrap().status, StatusCode::OK);
        assert_eq!(sink.batches().len(), 1);
        assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "listener still open after shutdown");
    }

    #[tokio::test]
    async fn unknown_path_404_and_get_405() {
        let h = Harness::start(Sink::traces_only()).await;
        let r = request(h.http_addr(), "POST", "/v1/nope", &[("content-type", PB)], vec![]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.text(), "no OTLP endpoint at /v1/nope");
        let r = request(h.http_addr(), "POST", "/v1/logs", &[("content-type", PB)], vec![]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.text(), "receiver otlp has no logs pipeline");
        let r = request(h.http_addr(), "GET", "/v1/traces", &[], vec![]).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.header("allow"), Some("POST".to_string()));
        h.stop().await;
    }

    #[tokio::test]
    async fn cors_preflight_and_response_headers() {
        let h = Harness::start_with(Sink::recording(), |c| {
            let http = c.protocols.http.as_mut().unwrap();
            http.cors = Some(crate::receivers::otlp::config::CorsConfig {
                allowed_origins: vec!["https://foo.bar.com".into(), "https://*.test.com".into()],
                allowed_headers: vec!["Example-Header".into()],
                max_age: 7200,
            });
            http.response_headers.insert("X-Served-By".into(), "sluice".into());
            http.traces_url_path = "traces".into();
        })
        .await;
        let pre = |origin: &'static str, headers: &'static str| {
            let addr = h.http_addr();
            async move {
                request(
                    addr,
                    "OPTIONS",
                    "/traces",
                    &[
                        ("origin", origin),
                        ("access-control-request-method", "POST"),
                        ("access-control-request-headers", headers),
                    ],
                    Vec::new(),
                )
                .await
            }
        };
        let r = pre("https://a.test.com", "content-type, example-header").await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(r.header("access-control-allow-origin").as_deref(), Some("https://a.test.com"));
        assert_eq!(r.header("access-control-allow-methods").as_deref(), Some("POST"));
        assert_eq!(r.header("access-control-allow-headers").as_deref(), Some("content-type, example-header"));
        assert_eq!(r.header("access-control-max-age").as_deref(), Some("7200"));
        assert_eq!(r.header("x-served-by").as_deref(), Some("sluice"));
        // A header not allowed, or an origin not allowed: no CORS headers.
        let r = pre("https://a.test.com", "x-other").await;
        assert_eq!(r.header("access-control-allow-methods"), None);
        let r = pre("https://evil.example", "content-type").await;
        assert_eq!(r.header("access-control-allow-origin"), None);
        // The actual request, on the path written without its '/'.
        let r = post(
            h.http_addr(),
            "/traces",
            &[("content-type", PB), ("origin", "https://foo.bar.com")],
            traces(1).encode_to_vec(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.header("access-control-allow-origin").as_deref(), Some("https://foo.bar.com"));
        assert_eq!(h.sink.batches(), vec![Batch::Traces(traces(1))]);
        h.stop().await;
    }

    #[tokio::test]
    async fn compression_algorithms_limit_the_encodings_taken() {
        let h = Harness::start_with(Sink::recording(), |c| {
            c.protocols.http.as_mut().unwrap().compression_algorithms = Some(vec!["zstd".into()]);
        })
        .await;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&traces(1).encode_to_vec()).unwrap();
        let body = gz.finish().unwrap();
        let r = post(h.http_addr(), "/v1/traces", &[("content-type", PB), ("content-encoding", "gzip")], body).await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.text());
        let r = post(h.http_addr(), "/v1/traces", &[("content-type", PB)], traces(1).encode_to_vec()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        h.stop().await;
    }
}
