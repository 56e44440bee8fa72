//! N check walks of the hot-path bench's request (1000 spans, 10 attributes
//! each), for counting the walk's instructions where timings drift:
//!
//! ```text
//! cargo build --release --example check_walk
//! for n in 20 120; do valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/check_walk $n 2>&1 | grep Collected; done
//! ```
//!
//! (Collected at 120 − Collected at 20) / 100 is one walk's instructions:
//! the request is built once either way, so its cost cancels out.

// The binary runs on mimalloc; measure what it runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../benches/support/trace_data.rs"]
mod trace_data;

use prost::Message;
use sluice::data::Signal;

fn main() {
    let walks: usize = match std::env::args().nth(1).map(|n| n.parse()) {
        None => 100,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("usage: check_walk [WALKS]: {e}");
            std::process::exit(2);
        }
    };
    let wire = trace_data::trace_request(1000).encode_to_vec();
    let mut spans = 0;
    for _ in 0..walks {
        let checked = sluice::data::check::check_request(Signal::Traces, std::hint::black_box(&wire));
        spans += std::hint::black_box(checked.expect("the bench's request checks"));
    }
    println!("{walks} walks of {} bytes, {spans} spans", wire.len());
}
