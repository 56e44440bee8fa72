//! `compression` and `compression_params` of the `otlp` and `otlphttp`
//! exporters, as the Collector's `configcompression` names and checks them,
//! and the encoder that compresses a request body.
//!
//! Guarantees: the codecs and levels accepted are the Collector's (gRPC:
//! gzip, snappy, zstd; HTTP: also zlib, deflate, lz4 and x-snappy-framed);
//! an unset level (or 0, which the Collector reads as unset) is the
//! Collector's default except for gzip, zlib and deflate: level 1, not 6
//! (see [`Encoder::new`]); the output is what the Collector's own writers send
//! (`snappy` is the block format over HTTP and the framing format over gRPC,
//! `lz4` the LZ4 frame format, `deflate` a zlib stream as in the Collector).
//! Compression runs where it is called: the exporters call it in the sending
//! queue's consumer tasks, so `num_consumers` batches compress in parallel.

use crate::config::component::Checker;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::io::{self, Write};

/// Compression of request bodies.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    #[serde(rename = "gzip")]
    Gzip,
    #[serde(rename = "zlib")]
    Zlib,
    #[serde(rename = "deflate")]
    Deflate,
    #[serde(rename = "snappy")]
    Snappy,
    /// Snappy's framing format over HTTP (the Collector's `x-snappy-framed`).
    #[serde(rename = "x-snappy-framed")]
    SnappyFramed,
    #[serde(rename = "zstd")]
    Zstd,
    #[serde(rename = "lz4")]
    Lz4,
    #[serde(rename = "none")]
    None,
    /// The Collector accepts an empty string for "no compression".
    #[serde(rename = "")]
    Empty,
}

impl Compression {
    pub fn is_none(self) -> bool {
        matches!(self, Compression::None | Compression::Empty)
    }

    /// The `Content-Encoding` / `grpc-encoding` value.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zlib => "zlib",
            Compression::Deflate => "deflate",
            Compression::Snappy => "snappy",
            Compression::SnappyFramed => "x-snappy-framed",
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
            Compression::None | Compression::Empty => "none",
        }
    }

    /// Whether the Collector sends this codec over `transport`: gRPC has
    /// gzip, snappy and zstd (and none); HTTP has them all.
    pub fn available_over(self, transport: Transport) -> bool {
        transport == Transport::Http
            || self.is_none()
            || matches!(self, Compression::Gzip | Compression::Snappy | Compression::Zstd)
    }

    fn takes_deflate_level(self) -> bool {
        matches!(self, Compression::Gzip | Compression::Zlib | Compression::Deflate)
    }
}

/// `compression_params` (the Collector's `configcompression.CompressionParams`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CompressionParams {
    /// gzip, zlib, deflate: 1 (fastest) to 9 (smallest), -1 (zlib's default,
    /// 6), -2 (Huffman only), 0 (unset: 1, the Collector's is 6). zstd: any
    /// level (zstd's 1 to 22; below 1 is the fastest); unset: the Collector's.
    pub level: i32,
}

/// Where the compressed body goes: the codecs and default levels differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Http,
    Grpc,
}

/// zlib's levels, as the Collector's `ValidateParams` accepts them.
const DEFAULT_LEVEL: i32 = -1;
const HUFFMAN_ONLY: i32 = -2;

/// Reports `compression` and `compression_params` that the Collector would refuse.
pub fn check_compression(c: &mut Checker, compression: Compression, params: &CompressionParams, transport: Transport) {
    if !compression.available_over(transport) {
        c.error(
            &["compression"],
            format!("compression {:?} is not available over gRPC", compression.name()),
            Some("the otlp exporter sends gzip, snappy, zstd or none; zlib, deflate and lz4 need otlphttp"),
        );
        return;
    }
    let level = params.level;
    if compression.takes_deflate_level() {
        if !(level == DEFAULT_LEVEL || level == HUFFMAN_ONLY || (0..=9).contains(&level)) {
            c.error(
                &["compression_params", "level"],
                format!("level {level} is not a {} level", compression.name()),
                Some("use 1 (fastest) to 9 (smallest), -1 (zlib's default, 6), 0 (unset: 1) or -2 (Huffman only)"),
            );
        }
    } else if compression != Compression::Zstd && level != 0 {
        let name = if compression.is_none() { "none".to_string() } else { compression.name().to_string() };
        c.error(
            &["compression_params", "level"],
            format!("compression {name:?} takes no level (got {level})"),
            Some("remove compression_params.level, or choose gzip, zlib, deflate or zstd"),
        );
    }
}

/// A compression with its level resolved; `None` when nothing is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoder {
    compression: Compression,
    level: i32,
}

impl Encoder {
    /// The encoder of checked settings (see [`check_compression`]).
    pub fn new(compression: Compression, params: &CompressionParams, transport: Transport) -> Option<Encoder> {
        if compression.is_none() {
            return None;
        }
        let level = match compression {
            // Unset: level 1, where the Collector would use 6. Level 6 costs
            // 3.5x the CPU of level 1 for a few percent of size (BENCHMARKS.md:
            // 146k against 520k spans/s on one core), and gzip is the default,
            // so its default must not be the agent's ceiling (issue 18).
            // -1 is zlib's default, 6, as in the Collector. zlib-rs has no
            // Huffman-only mode behind flate2: -2 is its fastest level.
            _ if compression.takes_deflate_level() => match params.level {
                0 => 1,
                DEFAULT_LEVEL => 6,
                HUFFMAN_ONLY => 1,
                l => l,
            },
            // The Collector's HTTP client turns an unset level into -1, which
            // its zstd maps to SpeedFastest (level 1); its gRPC zstd codec
            // uses the library's default (level 3). Below 1: the fastest.
            Compression::Zstd => match params.level {
                0 if transport == Transport::Http => 1,
                0 => zstd::DEFAULT_COMPRESSION_LEVEL,
                l => l.clamp(1, *zstd::compression_level_range().end()),
            },
            _ => 0,
        };
        Some(Encoder { compression, level })
    }

    pub fn compression(&self) -> Compression {
        self.compression
    }

    pub fn level(&self) -> i32 {
        self.level
    }

    /// Whether the bytes are snappy's framing format: gRPC's `snappy`.
    fn framed_snappy(&self, transport: Transport) -> bool {
        self.compression == Compression::SnappyFramed
            || (self.compression == Compression::Snappy && transport == Transport::Grpc)
    }

    /// Appends the compressed concatenation of `chunks` to `out` and returns it.
    pub fn compress<C: AsRef<[u8]>>(&self, chunks: &[C], out: Vec<u8>, transport: Transport) -> io::Result<Vec<u8>> {
        fn write_all<W: Write, C: AsRef<[u8]>>(mut w: W, chunks: &[C]) -> io::Result<W> {
            for c in chunks {
                w.write_all(c.as_ref())?;
            }
            Ok(w)
        }
        let level = u32::try_from(self.level).unwrap_or(1);
        match self.compression {
            Compression::Gzip => {
                write_all(flate2::write::GzEncoder::new(out, flate2::Compression::new(level)), chunks)?.finish()
            }
            Compression::Zlib | Compression::Deflate => {
                write_all(flate2::write::ZlibEncoder::new(out, flate2::Compression::new(level)), chunks)?.finish()
            }
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(out, self.level)?;
                let total: usize = chunks.iter().map(|c| c.as_ref().len()).sum();
                // Lets the frame header carry the size and zstd size its window.
                enc.set_pledged_src_size(Some(total as u64))?;
                enc.include_contentsize(true)?;
                write_all(enc, chunks)?.finish()
            }
            Compression::Snappy | Compression::SnappyFramed if self.framed_snappy(transport) => {
                write_all(snap::write::FrameEncoder::new(out), chunks)?.into_inner().map_err(|e| e.into_error())
            }
            Compression::Snappy | Compression::SnappyFramed => {
                // The block format needs its input in one piece.
                let joined;
                let input: &[u8] = match chunks {
                    [one] => one.as_ref(),
                    _ => {
                        joined = chunks.iter().flat_map(|c| c.as_ref().iter().copied()).collect::<Vec<u8>>();
                        &joined
                    }
                };
                let mut out = out;
                let start = out.len();
                out.resize(start + snap::raw::max_compress_len(input.len()), 0);
                let n = snap::raw::Encoder::new().compress(input, &mut out[start..]).map_err(io::Error::other)?;
                out.truncate(start + n);
                Ok(out)
            }
            Compression::Lz4 => {
                write_all(lz4_flex::frame::FrameEncoder::new(out), chunks)?.finish().map_err(io::Error::other)
            }
            Compression::None | Compression::Empty => write_all(out, chunks),
        }
    }
}

/// Decompresses `bytes` of a gRPC answer's `grpc-encoding` within `limit` bytes.
pub fn decompress(encoding: &str, bytes: &[u8], limit: usize) -> io::Result<Vec<u8>> {
    use std::io::Read;
    fn read(r: impl Read, limit: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        r.take(limit as u64 + 1).read_to_end(&mut out)?;
        match out.len() > limit {
            true => Err(io::Error::other(format!("over {limit} bytes"))),
            false => Ok(out),
        }
    }
    match encoding {
        "identity" => Ok(bytes.to_vec()),
        "gzip" => read(flate2::read::GzDecoder::new(bytes), limit),
        "deflate" => read(flate2::read::ZlibDecoder::new(bytes), limit),
        "zstd" => read(zstd::stream::read::Decoder::new(bytes)?, limit),
        "snappy" => read(snap::read::FrameDecoder::new(bytes), limit),
        other => Err(io::Error::other(format!("unknown grpc-encoding {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn decompress(name: &str, framed: bool, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match name {
            "gzip" => flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).map(drop).unwrap(),
            "zlib" | "deflate" => flate2::read::ZlibDecoder::new(bytes).read_to_end(&mut out).map(drop).unwrap(),
            "zstd" => out = zstd::decode_all(bytes).unwrap(),
            "snappy" if !framed => out = snap::raw::Decoder::new().decompress_vec(bytes).unwrap(),
            "snappy" | "x-snappy-framed" => {
                snap::read::FrameDecoder::new(bytes).read_to_end(&mut out).map(drop).unwrap()
            }
            "lz4" => lz4_flex::frame::FrameDecoder::new(bytes).read_to_end(&mut out).map(drop).unwrap(),
            other => panic!("{other}"),
        }
        out
    }

    #[test]
    fn every_codec_round_trips_from_chunks_after_a_prefix() {
        let chunks = [b"hello ".repeat(1000), b"world".repeat(3)];
        let plain: Vec<u8> = chunks.concat();
        for c in [
            Compression::Gzip,
            Compression::Zlib,
            Compression::Deflate,
            Compression::Snappy,
            Compression::SnappyFramed,
            Compression::Zstd,
            Compression::Lz4,
        ] {
            for transport in [Transport::Http, Transport::Grpc] {
                let enc = Encoder::new(c, &CompressionParams::default(), transport).unwrap();
                let out = enc.compress(&chunks, vec![9; 5], transport).unwrap();
                assert_eq!(out[..5], [9; 5]);
                let framed = transport == Transport::Grpc;
                assert_eq!(decompress(c.name(), framed, &out[5..]), plain, "{c:?} {transport:?}");
                assert!(out.len() < plain.len() / 4, "{c:?}");
            }
        }
        assert!(Encoder::new(Compression::None, &CompressionParams::default(), Transport::Http).is_none());
    }

    #[test]
    fn default_levels_are_the_collectors() {
        let unset = CompressionParams::default();
        let level = |c, p: &CompressionParams, t| Encoder::new(c, p, t).unwrap().level();
        // gzip unset is sluice's 1, not the Collector's 6; -1 asks for 6.
        assert_eq!(level(Compression::Gzip, &unset, Transport::Grpc), 1);
        assert_eq!(level(Compression::Gzip, &CompressionParams { level: -1 }, Transport::Grpc), 6);
        assert_eq!(level(Compression::Zlib, &CompressionParams { level: -1 }, Transport::Http), 6);
        assert_eq!(level(Compression::Gzip, &CompressionParams { level: 1 }, Transport::Http), 1);
        assert_eq!(level(Compression::Zstd, &unset, Transport::Http), 1);
        assert_eq!(level(Compression::Zstd, &unset, Transport::Grpc), 3);
        assert_eq!(level(Compression::Zstd, &CompressionParams { level: 99 }, Transport::Grpc), 22);
        assert_eq!(level(Compression::Zstd, &CompressionParams { level: -5 }, Transport::Grpc), 1);
    }

    /// Each codec and a few levels, from both exporters into sluice's own
    /// OTLP receiver, as a decoded batch and as bytes forwarded as received.
    #[tokio::test]
    async fn every_codec_round_trips_exporter_to_receiver() {
        use crate::data::{Batch, EncodedBatch, Signal};
        use crate::exporters::otlp::config::OtlpExporterConfig;
        use crate::exporters::otlp::OtlpExporter;
        use crate::exporters::otlp_common::TlsClientConfig;
        use crate::exporters::otlphttp::config::{HttpEncoding, OtlpHttpExporterConfig};
        use crate::exporters::otlphttp::OtlpHttpExporter;
        use crate::exporters::Exporter;
        use crate::receivers::otlp::test_support::{traces, Harness, Sink};

        let h = Harness::start(Sink::recording()).await;
        let batch = Batch::Traces(traces(50));
        let encoded = EncodedBatch::encode(&batch);
        let mut expected = 0;
        let levels = |c: Compression| match c {
            Compression::Gzip | Compression::Zlib | Compression::Deflate => vec![0, 1, 9, -2],
            Compression::Zstd => vec![0, 1, 19],
            _ => vec![0],
        };
        for c in [Compression::Gzip, Compression::Snappy, Compression::Zstd, Compression::None] {
            for level in levels(c) {
                let cfg = OtlpExporterConfig {
                    endpoint: format!("http://{}", h.grpc_addr()),
                    tls: TlsClientConfig { insecure: true, ..Default::default() },
                    headers: Default::default(),
                    compression: c,
                    compression_params: CompressionParams { level },
                    timeout: crate::config::Duration::from_secs(5),
                    sending_queue: Default::default(),
                    retry_on_failure: Default::default(),
                    ..Default::default()
                };
                let exp = OtlpExporter::new(&cfg, Signal::Traces, "otlp").unwrap();
                exp.export(&batch).await.unwrap_or_else(|e| panic!("grpc {c:?}/{level}: {e:?}"));
                exp.export_encoded(&encoded).await.unwrap_or_else(|e| panic!("grpc {c:?}/{level}: {e:?}"));
                expected += 2;
            }
        }
        for c in [
            Compression::Gzip,
            Compression::Zlib,
            Compression::Deflate,
            Compression::Snappy,
            Compression::SnappyFramed,
            Compression::Zstd,
            Compression::Lz4,
            Compression::None,
        ] {
            for level in levels(c) {
                for encoding in [HttpEncoding::Proto, HttpEncoding::Json] {
                    let cfg = OtlpHttpExporterConfig {
                        endpoint: Some(format!("http://{}", h.http_addr())),
                        traces_endpoint: None,
                        metrics_endpoint: None,
                        logs_endpoint: None,
                        tls: TlsClientConfig::default(),
                        headers: Default::default(),
                        compression: c,
                        compression_params: CompressionParams { level },
                        encoding,
                        timeout: crate::config::Duration::from_secs(5),
                        sending_queue: Default::default(),
                        retry_on_failure: Default::default(),
                        ..Default::default()
                    };
                    let exp = OtlpHttpExporter::new(&cfg, Signal::Traces, "otlphttp").unwrap();
                    exp.export(&batch).await.unwrap_or_else(|e| panic!("http {c:?}/{level}: {e:?}"));
                    exp.export_encoded(&encoded).await.unwrap_or_else(|e| panic!("http {c:?}/{level}: {e:?}"));
                    expected += 2;
                }
            }
        }
        let seen = h.sink.batches();
        assert_eq!(seen.len(), expected);
        assert!(seen.iter().all(|b| *b == batch));
        h.stop().await;
    }

    fn config_errors(exporter: &str, body: &str) -> Vec<crate::config::error::ConfigError> {
        let text = format!(
            "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:4317\n\
             exporters:\n  {exporter}:\n    endpoint: http://backend:4317\n{body}\n\
             service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [{exporter}]\n"
        );
        match crate::service::load(&text, &|_| None) {
            Ok(_) => vec![],
            Err(e) => e.0,
        }
    }

    #[test]
    fn levels_and_codecs_are_checked_at_their_yaml_path() {
        let bad: &[(&str, &str, &str, &str)] = &[
            ("otlp", "    compression: gzip\n    compression_params:\n      level: 10", "level", "not a gzip level"),
            (
                "otlphttp",
                "    compression: zlib\n    compression_params:\n      level: -3",
                "level",
                "not a zlib level",
            ),
            ("otlphttp", "    compression: deflate\n    compression_params: {level: 42}", "level", "deflate"),
            ("otlp", "    compression: snappy\n    compression_params: {level: 1}", "level", "takes no level"),
            ("otlphttp", "    compression: lz4\n    compression_params: {level: 3}", "level", "takes no level"),
            ("otlphttp", "    compression: none\n    compression_params: {level: 3}", "level", "takes no level"),
            ("otlp", "    compression: lz4", "compression", "not available over gRPC"),
            ("otlp", "    compression: zlib", "compression", "not available over gRPC"),
            ("otlp", "    compression: brotli", "compression", "brotli"),
            ("otlphttp", "    compression_params: {levle: 3}", "compression_params", "levle"),
        ];
        for (exporter, body, field, text) in bad {
            let errors = config_errors(exporter, body);
            let path = match *field {
                "level" => format!("exporters::{exporter}::compression_params::level"),
                f => format!("exporters::{exporter}::{f}"),
            };
            assert!(
                errors.iter().any(|e| e.path.starts_with(&path) && e.message.contains(text) && e.line.is_some()),
                "{exporter} {body}: {errors:#?}"
            );
            if *field != "compression_params" && *text != "brotli" {
                assert!(errors.iter().all(|e| e.hint.is_some()), "{errors:#?}");
            }
        }
        let good: &[(&str, &str)] = &[
            ("otlp", "    compression: gzip\n    compression_params: {level: 1}"),
            ("otlp", "    compression: zstd\n    compression_params: {level: 19}"),
            ("otlp", "    compression: snappy"),
            ("otlphttp", "    compression: gzip\n    compression_params: {level: -1}"),
            ("otlphttp", "    compression: zlib\n    compression_params: {level: -2}"),
            ("otlphttp", "    compression: deflate\n    compression_params: {level: 9}"),
            ("otlphttp", "    compression: x-snappy-framed"),
            ("otlphttp", "    compression: lz4"),
            ("otlphttp", "    compression: ''\n    compression_params: {level: 0}"),
        ];
        for (exporter, body) in good {
            assert!(
                config_errors(exporter, body).is_empty(),
                "{exporter} {body}: {:#?}",
                config_errors(exporter, body)
            );
        }
    }
}
