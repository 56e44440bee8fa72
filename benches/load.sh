#!/usr/bin/env bash
# End-to-end load run over loopback: h2load drives OTLP/gRPC trace exports
# (1000 spans each) into sluice, which batches and forwards them with the
# `otlp` exporter to a counting sink (`sluice-loadgen sink`). Prints spans/s,
# CPU seconds per million spans and peak RSS of sluice. benches/e2e.sh runs
# the standard scenarios with sluice-loadgen as the client; this script keeps
# h2load, with which the first figures in BENCHMARKS.md were made.
#
#   bash benches/load.sh [REQUESTS] [CONNECTIONS] [STREAMS]
#   RPS=40 bash benches/load.sh ...   # cap each connection at 40 requests/s
#   PERF_OUT=FILE bash benches/load.sh ...   # also record a CPU profile of sluice
#
# Needs h2load (apt-get install nghttp2-client). On a 2-core machine sluice is
# pinned to core 0 and the load generator and sink to core 1.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${1:-20000}
CONNS=${2:-4}
STREAMS=${3:-8}
command -v h2load >/dev/null || { echo "h2load missing: apt-get install -y nghttp2-client" >&2; exit 1; }
cargo build --release --bin sluice --bin sluice-loadgen --example make_load_body >/dev/null
work=$(mktemp -d)
. benches/support/load_common.sh
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
"$target/release/examples/make_load_body" "$work/body.bin" 1000
cat > "$work/sluice.yaml" <<YAML
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:24317
        max_recv_msg_size_mib: 16
processors:
  memory_limiter:
    check_interval: 100ms
    limit_mib: 1024
    spike_limit_mib: 256
  batch:
$OTLP_TO_SINK_YAML
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlp]
YAML
start_sink --idle-exit 3
start_agent
if [[ -n "${PERF_OUT:-}" ]]; then perf record -e cpu-clock -F 499 -g -p $agent -o "$PERF_OUT" 2>/dev/null & fi
before=$(cpu_ticks)
start=$(date +%s.%N)
rate_args=()
[[ -n "${RPS:-}" ]] && rate_args=(--rps="$RPS")
taskset -c $core_load h2load -n "$REQUESTS" -c "$CONNS" -m "$STREAMS" "${rate_args[@]}" \
  -H 'content-type: application/grpc' -H 'te: trailers' \
  -d "$work/body.bin" http://127.0.0.1:24317/opentelemetry.proto.collector.trace.v1.TraceService/Export > "$work/h2load.txt"
wait $sink || true
end=$(date +%s.%N)
after=$(cpu_ticks)
peak_kb=$(peak_rss_kb)
refused=$(metric otelcol_receiver_refused_spans_total)
kill -TERM $agent; wait $agent || true
spans=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["spans"])' "$work/sink.json")
python3 - "$spans" "$before" "$after" "$tick" "$start" "$end" "$peak_kb" "$refused" <<'PY'
import sys
spans, before, after, tick, start, end, peak_kb, refused = sys.argv[1:]
spans = int(spans); cpu = (int(after) - int(before)) / int(tick); wall = float(end) - float(start)
print(f"spans forwarded:        {spans}")
print(f"refused (retryable):    {refused}")
print(f"wall seconds:           {wall:.2f} (includes the sink's 3 s idle exit)")
print(f"sluice CPU seconds:     {cpu:.2f}")
print(f"CPU seconds / M spans:  {cpu / spans * 1e6:.2f}" if spans else "no spans")
print(f"peak RSS:               {int(peak_kb) / 1024:.1f} MiB")
PY
grep -E '^(finished|requests:|status codes)' "$work/h2load.txt"
cat "$work/sink.json"
