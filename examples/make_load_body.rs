//! Writes a gRPC-framed OTLP trace export (1 byte flag, 4 byte big-endian
//! length, protobuf) for h2load: `cargo run --release --example make_load_body -- OUT [SPANS]`.
//! The spans are the same shape as the criterion bench's (10 attributes each).

#[path = "../benches/support/trace_data.rs"]
mod trace_data;

use prost::Message;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let out = args.get(1).cloned().unwrap_or_else(|| "load-body.bin".into());
    let spans: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let msg = trace_data::trace_request(spans).encode_to_vec();
    let mut framed = Vec::with_capacity(msg.len() + 5);
    framed.push(0);
    framed.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    framed.extend_from_slice(&msg);
    std::fs::write(&out, &framed)?;
    eprintln!("wrote {out}: {spans} spans, {} bytes", framed.len());
    Ok(())
}
