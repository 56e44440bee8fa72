#!/usr/bin/env bash
# Load run of tail sampling: `sluice-loadgen send` sends OTLP/gRPC requests of
# 1000 spans (100 traces of 10 spans, fresh trace IDs every request) into
# sluice running tail_sampling with 10 policies, which forwards kept traces
# with the `otlp` exporter to the counting sink. Samples, while traces are
# buffered, how many spans are in memory, the bytes tail_sampling accounts
# for them, and sluice's RSS; prints spans/s and CPU per million spans.
#
#   bash benches/load_tail.sh [REQUESTS] [CONCURRENCY] [DECISION_WAIT]
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${1:-2000}
CONC=${2:-4}
WAIT=${3:-20s}
cargo build --release --bin sluice --bin sluice-loadgen >/dev/null
work=$(mktemp -d)
. benches/support/load_common.sh
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
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
    limit_mib: 3072
    spike_limit_mib: 512
  tail_sampling:
    decision_wait: $WAIT
    num_traces: 400000
    max_memory_mib: 2048
    policies:
      - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
      - {name: slow, type: latency, latency: {threshold_ms: 5000}}
      - {name: checkout, type: string_attribute, string_attribute: {key: http.route, values: [/api/v1/items/7]}}
      - {name: admin, type: string_attribute, string_attribute: {key: http.route, values: ["^/admin/.*"], enabled_regex_matching: true}}
      - {name: big, type: span_count, span_count: {min_spans: 50}}
      - {name: retried, type: boolean_attribute, boolean_attribute: {key: retry, value: true}}
      - {name: server-errors, type: numeric_attribute, numeric_attribute: {key: http.response.status_code, min_value: 500, max_value: 599}}
      - {name: debug-flag, type: trace_state, trace_state: {key: debug, values: ["1"]}}
      - {name: capped, type: rate_limiting, rate_limiting: {spans_per_second: 1000}}
      - {name: some, type: probabilistic, probabilistic: {sampling_percentage: 10}}
  batch:
$OTLP_TO_SINK_YAML
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, tail_sampling, batch]
      exporters: [otlp]
YAML
start_sink
start_agent
rss0=$(awk '/VmRSS/ {print $2}' /proc/$agent/status)
before=$(cpu_ticks)
start=$(date +%s.%N)
taskset -c $core_load "$target/release/sluice-loadgen" send --endpoint http://127.0.0.1:24317 --requests "$REQUESTS" \
  --connections 1 --concurrency "$CONC" --spans-per-request 1000 --spans-per-trace 10 > "$work/gen.json"
end=$(date +%s.%N)
after=$(cpu_ticks)
# Everything sent is buffered now (decision_wait has not passed for the last traces).
traces=$(metric sluice_tail_sampling_traces_in_memory)
bytes=$(metric sluice_tail_sampling_bytes_in_memory)
rss1=$(awk '/VmRSS/ {print $2}' /proc/$agent/status)
refused=$(metric otelcol_receiver_refused_spans_total)
early=$(metric sluice_tail_sampling_early_decisions_total)
peak_kb=$(peak_rss_kb)
kill -TERM $agent; wait $agent || true
kill -TERM $sink; wait $sink || true
python3 - "$work/gen.json" "$before" "$after" "$tick" "$start" "$end" "$traces" "$bytes" "$rss0" "$rss1" "$refused" "$early" "$peak_kb" "$work/sink.json" <<'PY'
import json, sys
gen = json.load(open(sys.argv[1]))
before, after, tick = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
start, end = float(sys.argv[5]), float(sys.argv[6])
traces, acct, rss0, rss1 = int(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9]) * 1024, int(sys.argv[10]) * 1024
refused, early, peak = int(sys.argv[11]), int(sys.argv[12]), int(sys.argv[13]) * 1024
sink = json.load(open(sys.argv[14]))
spans = gen["items_sent"]
cpu = (after - before) / tick
buffered = traces * 10
print(f"spans accepted:            {spans} ({gen['requests_refused']} requests refused, retryable; {refused} spans)")
print(f"ingest spans/s:            {spans / (end - start):.0f}")
print(f"CPU s per 1M spans:        {cpu / spans * 1e6:.2f} (during ingest)")
print(f"traces buffered at end:    {traces} ({buffered} spans); early decisions {early}")
if buffered:
    print(f"accounted bytes per span:  {acct / buffered:.0f} (tail_sampling's own count)")
    print(f"RSS bytes per span:        {(rss1 - rss0) / buffered:.0f} (RSS growth / spans buffered)")
print(f"encoded bytes per span:    {gen['request_bytes'] / gen['items_per_request']:.0f} (the request's protobuf size / spans in it)")
print(f"peak RSS:                  {peak / 2**20:.0f} MiB")
print(f"spans forwarded after shutdown flush: {sink['spans']}")
PY
