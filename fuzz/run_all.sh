#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 600) one after another, seeded
# from seeds/<target>, and prints libFuzzer's final line for each. A crash
# leaves its input in artifacts/<target>/; copy it to regressions/<target>/ so
# `cargo test --test fuzz_regressions` replays it.
#   bash fuzz/run_all.sh [SECONDS] [TARGET...]
set -uo pipefail
cd "$(dirname "$0")"
secs=${1:-600}
shift || true
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(config_load otlp_grpc otlp_http_protobuf otlp_http_json otlp_http_gzip otlp_http_decompress otlp_check ottl)
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
    log="run-$t.log"
    cargo +nightly fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=4096 -print_final_stats=1 >"$log" 2>&1
    rc=$?
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    rate=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}')
    cov=$(grep -E '^#[0-9]+.*DONE' "$log" | tail -1)
    echo "$t rc=$rc execs=$execs exec/s=$rate final: $cov"
done
