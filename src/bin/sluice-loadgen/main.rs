//! `sluice-loadgen`: the load harness of sluice's end-to-end benchmarks
//! (`benches/e2e.sh`).
//!
//! - `send` drives OTLP/gRPC or OTLP/HTTP (traces, metrics or logs) at a
//!   fixed rate or flat out, over several connections, with a configurable
//!   request shape, and prints one JSON line: requests ok / refused /
//!   failed, items/s, requests/s, client-observed latency percentiles.
//! - `sink` accepts OTLP and counts items (or, with `--no-decode`, only
//!   requests and bytes), printing its totals as JSON when it stops.
//!
//! `cargo run --release --bin sluice-loadgen -- sink --grpc 127.0.0.1:14317 &`
//! `cargo run --release --bin sluice-loadgen -- send --endpoint 127.0.0.1:14317 --duration 10`

mod body;
mod histogram;
mod send;
mod sink;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "sluice-loadgen", version, about = "OTLP load generator and counting sink for sluice's benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send OTLP requests and report what the client saw.
    Send(send::SendArgs),
    /// Accept OTLP and count what arrives.
    Sink(sink::SinkArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Send(args) => send::run(args),
        Command::Sink(args) => sink::run(args),
    }
}
