#!/usr/bin/env bash
# End-to-end scenarios over loopback, from a fresh clone with one command:
#
#   bash benches/e2e.sh                 # every scenario (about 4 minutes)
#   bash benches/e2e.sh 1 3             # some of them: 1 1none 1zstd 1gz6 1nop 1f16 2 3 4 5 6 7
#
# Builds sluice and sluice-loadgen (release), then for each scenario starts a
# counting sink (`sluice-loadgen sink`), sluice with the scenario's config,
# and `sluice-loadgen send`, in two phases on the same agent (after a 1 s
# warm-up at the fixed rate, not counted):
#   - latency: a fixed rate (LAT_RATE requests/s, LAT_SECONDS) well under
#     capacity; the client's p50 and p99 minus those of the same load sent
#     straight to the sink (measured once per protocol) are the latency
#     sluice adds;
#   - throughput: flat out (CONNS connections x CONC requests in flight) for
#     DURATION seconds: items/s accepted, refusals, and sluice's CPU seconds
#     (utime+stime from /proc/PID/stat, including draining what it accepted)
#     per million items.
# Peak RSS is sluice's VmHWM over both phases, printed against the memory
# budget: memory_limiter's limit_mib (LIMIT_MIB, default 1024; spike a
# quarter of it) plus the 64 MiB overhead README "Memory" states; a peak
# over it is marked OVER.
#
# Scenarios (exporters with their default compression, gzip, as users run them):
#   1     OTLP/gRPC -> sluice (memory_limiter, batch) -> otlp -> gRPC sink
#   1none scenario 1 with `compression: none` on the exporter
#   1zstd scenario 1 with `compression: zstd` on the exporter
#   1gz6  scenario 1 with gzip at `compression_params.level: 6` (the Collector's default)
#   1nop  scenario 1 with the nop exporter: sluice's own cost, no export
#   1f16  scenario 1 with a sink that keeps HTTP/2's default 16 KiB frames, as
#         grpc-go backends do (the sink otherwise allows 1 MiB, as a sluice
#         gateway does)
#   2     OTLP/HTTP -> sluice (memory_limiter, batch) -> otlphttp -> HTTP sink
#   3     scenario 1 with tail_sampling (10 policies, decision_wait 2s)
#   4     metrics through cardinality_limiter, logs through log_rate_limiter -> gRPC sink
#   5     I/O ceiling: the same requests flat out into a sink that does not decode
#   6     scenario 1 with transform (3 OTTL statements) and filter (2 OTTL conditions)
#   7     connectors: OTLP/gRPC traces -> spanmetrics + slo (2 SLOs) -> metrics -> batch -> otlp -> gRPC sink
#         (`exported` counts the metric points the connectors emit, not spans)
#
# sluice runs on core 0, the load generator and the sink on core 1 (taskset);
# on a 1-core machine everything shares core 0 and the figures say less.
#
# INSTRUCTIONS=1 counts instead of timing, for comparing two builds on a VM
# whose timings drift: each scenario's sluice runs under valgrind's callgrind
# (unpinned) and takes INSTR_REQUESTS requests (200) at 10/s; the table gives
# the user-space instructions sluice ran per item accepted (start-up and
# shutdown included: under 0.5 % at 200 requests). The kernel's share (system
# calls, context switches) is not in it: timings still tell that part.
#
# SLUICE_BIN=PATH runs that sluice binary (and the sluice-loadgen beside it,
# or LOADGEN_BIN) instead of building the tree's.
#
# SLUICE_BASE=PATH adds scenarios NAME@base: scenario NAME run by another
# sluice binary (a build of an earlier commit), in the same run as the rest,
# so a change is measured against its baseline on the same machine state.
#
# Environment: DURATION (15), LAT_RATE (50), LAT_SECONDS (10), CONNS (4),
# CONC (2), SPANS (1000 items per request), E2E_PORT_BASE (34300: ports
# base+17/18/88 for sluice, base+27/28 for the sink), E2E_OUT (a directory to
# keep the configs, logs, JSON reports and each run's final self-metrics in;
# default a temp dir, removed), PIPELINE_EXTRA (one more line for every
# pipeline, e.g. "channel_capacity: 256", to compare under the same bound).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-15}
LAT_RATE=${LAT_RATE:-50}
LAT_SECONDS=${LAT_SECONDS:-10}
CONNS=${CONNS:-4}
CONC=${CONC:-2}
SPANS=${SPANS:-1000}
scenarios=("$@")
[[ ${#scenarios[@]} -eq 0 ]] && scenarios=(1 1none 1zstd 1gz6 1nop 1f16 2 3 4 5 6 7)
for s in "${scenarios[@]}"; do
    if [[ $s == *@base && ! -x "${SLUICE_BASE:-}" ]]; then
        echo "scenario $s needs SLUICE_BASE, the path of a sluice binary" >&2
        exit 2
    fi
    case ${s%@base} in 1 | 1none | 1zstd | 1gz6 | 1nop | 1f16 | 2 | 3 | 4 | 5 | 6 | 7) ;; *)
        echo "unknown scenario $s (1 1none 1zstd 1gz6 1nop 1f16 2 3 4 5 6 7)" >&2
        exit 2
        ;;
    esac
done

command -v cargo >/dev/null || { echo "cargo is needed (https://rustup.rs)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is needed (apt-get install -y curl)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is needed (apt-get install -y python3)" >&2; exit 1; }
if [[ -n "${SLUICE_BIN:-}" ]]; then
    # Binaries built earlier (e.g. of a commit under test while the tree moved on).
    SLUICE=$SLUICE_BIN
    LOADGEN=${LOADGEN_BIN:-$(dirname "$SLUICE_BIN")/sluice-loadgen}
    [[ -x $SLUICE && -x $LOADGEN ]] || { echo "SLUICE_BIN=$SLUICE_BIN: no sluice and sluice-loadgen there" >&2; exit 2; }
else
    echo "building release binaries..." >&2
    cargo build --release --bin sluice --bin sluice-loadgen >&2
    target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    SLUICE=$target/release/sluice
    LOADGEN=$target/release/sluice-loadgen
fi

if [[ -n "${E2E_OUT:-}" ]]; then
    work=$E2E_OUT
    mkdir -p "$work"
else
    work=$(mktemp -d)
fi
cleanup() {
    local pids
    pids=$(jobs -p)
    [[ -n "$pids" ]] && kill $pids 2>/dev/null || true
    [[ -z "${E2E_OUT:-}" ]] && rm -rf "$work"
    return 0
}
trap cleanup EXIT
results=$work/results.jsonl
: > "$results"

# Core pinning: sluice on one core, load and sink on another.
ncpu=$(nproc)
if command -v taskset >/dev/null && ((ncpu > 1)); then
    pin_agent=(taskset -c 0)
    pin_load=(taskset -c 1)
else
    pin_agent=()
    pin_load=()
    echo "note: $ncpu core(s) or no taskset: sluice, load and sink share the machine unpinned" >&2
fi
tick=$(getconf CLK_TCK)

# Ports: E2E_PORT_BASE+17/+18 for sluice's OTLP, +88 its /metrics, +27/+28 the sink's.
base=${E2E_PORT_BASE:-34300}
AGENT_GRPC=127.0.0.1:$((base + 17))
AGENT_HTTP=127.0.0.1:$((base + 18))
AGENT_METRICS=127.0.0.1:$((base + 88))
SINK_GRPC=127.0.0.1:$((base + 27))
SINK_HTTP=127.0.0.1:$((base + 28))

# listening ADDR: true when something accepts connections on ADDR.
listening() { (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; }

# ports_free ADDR...: fail with a hint when another process holds one of them.
ports_free() {
    local a
    for a in "$@"; do
        if listening "$a"; then
            echo "port $a is in use; pick other ports with E2E_PORT_BASE=N" >&2
            exit 1
        fi
    done
}

# --- processes ---------------------------------------------------------------

# start_sink NAME [ARGS...]: the sink on the load core; sets $sink.
start_sink() {
    local name=$1
    shift
    ports_free $SINK_GRPC $SINK_HTTP
    "${pin_load[@]}" "$LOADGEN" sink --grpc $SINK_GRPC --http $SINK_HTTP "$@" \
        > "$work/$name.sink.json" 2> "$work/$name.sink.log" &
    sink=$!
    for _ in $(seq 100); do
        listening $SINK_GRPC && return 0
        sleep 0.05
    done
    echo "sink did not start: $(cat "$work/$name.sink.log")" >&2
    exit 1
}

stop_sink() { kill -TERM "$sink" 2>/dev/null || true; wait "$sink" || true; }

# start_agent NAME: sluice with $work/NAME.yaml on the agent core; sets $agent.
start_agent() {
    local name=$1
    ports_free $AGENT_GRPC $AGENT_HTTP $AGENT_METRICS
    local run=("${pin_agent[@]}")
    [[ -n $INSTRUCTIONS ]] && run=(valgrind --tool=callgrind --callgrind-out-file="$work/$name.callgrind")
    "${run[@]}" "$agent_bin" --config "$work/$name.yaml" 2> "$work/$name.sluice.log" &
    agent=$!
    for _ in $(seq 300); do
        kill -0 "$agent" 2>/dev/null || break
        curl -sf "http://$AGENT_METRICS/metrics" >/dev/null && return 0
        sleep 0.1
    done
    echo "sluice did not start: $(tail -20 "$work/$name.sluice.log")" >&2
    exit 1
}

stop_agent() { kill -TERM "$agent" 2>/dev/null || true; wait "$agent" || true; }

cpu_ticks() { awk '{print $14+$15}' "/proc/$agent/stat"; }
peak_rss_kb() { awk '/VmHWM/ {print $2}' "/proc/$agent/status"; }

# metric REGEX: the sum of every series whose name matches REGEX on sluice's /metrics.
metric() {
    curl -s "http://$AGENT_METRICS/metrics" | awk -v n="$1" '$1 ~ "^"n"({|$)" {s+=$2} END {printf "%.0f", s+0}'
}

# drain: wait (at most 30 s) until sluice has nothing buffered: tail_sampling
# holds no trace, the sending queues are empty, and the exported and dropped
# totals have stopped moving.
drain() {
    local prev="" now
    for _ in $(seq 60); do
        now="$(metric 'otelcol_exporter_(sent|send_failed)_[a-z_]+_total') $(metric 'otelcol_processor_dropped_[a-z_]+_total')"
        if [[ "$now" == "$prev" && "$(metric sluice_tail_sampling_traces_in_memory)" == 0 &&
            "$(metric otelcol_exporter_queue_size)" == 0 ]]; then
            return 0
        fi
        prev=$now
        sleep 0.5
    done
    echo "warning: sluice did not drain within 30 s" >&2
}

# send OUT ARGS...: sluice-loadgen send on the load core; its JSON report in OUT.
send() {
    local out=$1
    shift
    "${pin_load[@]}" "$LOADGEN" send --connections "$CONNS" --concurrency "$CONC" --spans-per-request "$SPANS" \
        "$@" > "$out" 2> "$out.log"
}

INSTRUCTIONS=${INSTRUCTIONS:-}
INSTR_REQUESTS=${INSTR_REQUESTS:-200}
if [[ -n $INSTRUCTIONS ]] && ! command -v valgrind >/dev/null; then
    echo "INSTRUCTIONS=1 needs valgrind (apt-get install -y valgrind)" >&2
    exit 1
fi

TRACE_SHAPE=(--spans-per-trace 10 --attributes 10 --error-ratio 0.01 --slow-ratio 0.005)

# --- configs -----------------------------------------------------------------

receivers_yaml="receivers:
  otlp:
    protocols:
      grpc:
        endpoint: $AGENT_GRPC
        max_recv_msg_size_mib: 16
      http:
        endpoint: $AGENT_HTTP"
# The memory budget of every scenario: the limiter's limit plus the
# overhead README "Memory" states (what the limiter cannot see between
# two readings), printed beside each peak RSS.
LIMIT_MIB=${LIMIT_MIB:-1024}
MEMORY_OVERHEAD_MIB=64
memory_limiter_yaml="  memory_limiter:
    check_interval: 100ms
    limit_mib: $LIMIT_MIB
    spike_limit_mib: $((LIMIT_MIB / 4))"
# exporters_yaml [COMPRESSION[/LEVEL]]: the exporters, with the default
# compression (gzip) unless COMPRESSION is given.
exporters_yaml() {
    local compression=""
    [[ -n "${1:-}" ]] && compression="
    compression: ${1%/*}"
    [[ "${1:-}" == */* ]] && compression="$compression
    compression_params:
      level: ${1#*/}"
    echo "exporters:
  otlp:
    endpoint: $SINK_GRPC
    tls:
      insecure: true$compression
  otlphttp:
    endpoint: http://$SINK_HTTP$compression
  nop:"
}

# write_config NAME SIGNAL PROCESSORS EXPORTER [EXTRA PROCESSOR YAML [COMPRESSION]]
write_config() {
    local name=$1 signal=$2 processors=$3 exporter=$4 extra=${5:-} compression=${6:-}
    cat > "$work/$name.yaml" <<YAML
$receivers_yaml
processors:
$memory_limiter_yaml
  batch:
$extra
$(exporters_yaml "$compression")
service:
  telemetry:
    metrics:
      address: $AGENT_METRICS
  pipelines:
    $signal:
      receivers: [otlp]
      processors: [$processors]
      exporters: [$exporter]${PIPELINE_EXTRA:+
      $PIPELINE_EXTRA}
YAML
}

# Scenario 6: what a typical transform and OTTL filter do to the load's spans
# (one in 50 names is dropped: 2% of spans).
ottl_yaml="  transform:
    error_mode: ignore
    trace_statements:
      - set(span.attributes[\"deployment.environment\"], \"prod\") where resource.attributes[\"service.name\"] == \"items\"
      - replace_pattern(span.name, \"^GET /api/v1/items/[0-9]+\$\", \"GET /api/v1/items/{id}\")
      - delete_key(resource.attributes, \"k8s.pod.name\")
  filter:
    error_mode: ignore
    traces:
      span:
        - span.name == \"GET /api/v1/items/7\"
        - span.status.code == STATUS_CODE_ERROR and span.attributes[\"never\"] != nil"
tail_sampling_yaml="  tail_sampling:
    decision_wait: 2s
    num_traces: 400000
    max_memory_mib: 1024
    policies:
      - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
      - {name: slow, type: latency, latency: {threshold_ms: 5000}}
      - {name: checkout, type: string_attribute, string_attribute: {key: http.route, values: [/api/v1/items/7]}}
      - {name: admin, type: string_attribute, string_attribute: {key: http.route, values: [\"^/admin/.*\"], enabled_regex_matching: true}}
      - {name: big, type: span_count, span_count: {min_spans: 50}}
      - {name: retried, type: boolean_attribute, boolean_attribute: {key: retry, value: true}}
      - {name: server-errors, type: numeric_attribute, numeric_attribute: {key: http.response.status_code, min_value: 500, max_value: 599}}
      - {name: debug-flag, type: trace_state, trace_state: {key: debug, values: [\"1\"]}}
      - {name: capped, type: rate_limiting, rate_limiting: {spans_per_second: 1000}}
      - {name: some, type: probabilistic, probabilistic: {sampling_percentage: 10}}"
# Scenario 7: R.E.D. metrics and SLOs from the load's spans (service `items`,
# 50 routes, 1% errors, 0.5% slow): 100 spanmetrics series, 2 SLOs.
write_connectors_config() {
    cat > "$work/$1.yaml" <<YAML
$receivers_yaml
processors:
$memory_limiter_yaml
  batch:
connectors:
  spanmetrics:
    metrics_flush_interval: 5s
    dimensions: [{name: http.route}, {name: http.request.method}]
  slo:
    metrics_flush_interval: 5s
    slos:
      - {name: availability, service: items, objective: 99.9}
      - {name: latency, service: items, objective: 99, bad: {status_codes: [], latency_above: 1s}}
$(exporters_yaml)
service:
  telemetry:
    metrics:
      address: $AGENT_METRICS
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter]
      exporters: [spanmetrics, slo]
    metrics:
      receivers: [spanmetrics, slo]
      processors: [batch]
      exporters: [otlp]
YAML
}
cardinality_yaml="  cardinality_limiter:
    default_limit: 2000"
log_rate_yaml="  log_rate_limiter:
    rate: 100
    burst: 100"

# --- runs --------------------------------------------------------------------

declare -A p99_direct=() p50_direct=()
sink_args=()

# baseline PROTOCOL: p99 of the latency phase's load sent straight to the sink.
baseline() {
    local proto=$1 endpoint
    [[ -n "${p99_direct[$proto]:-}" || -n $INSTRUCTIONS ]] && return 0
    endpoint=$SINK_GRPC
    [[ $proto == http ]] && endpoint=http://$SINK_HTTP
    echo "== direct $proto: loadgen -> sink at $LAT_RATE requests/s" >&2
    start_sink "direct-$proto"
    send "$work/direct-$proto.lat.json" --endpoint "$endpoint" --protocol "$proto" --rate "$LAT_RATE" \
        --duration "$LAT_SECONDS" "${TRACE_SHAPE[@]}"
    stop_sink
    p99_direct[$proto]=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["latency_p99_ms"])' \
        "$work/direct-$proto.lat.json")
    p50_direct[$proto]=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["latency_p50_ms"])' \
        "$work/direct-$proto.lat.json")
    python3 - "$work/direct-$proto.lat.json" "$work/direct-$proto.sink.json" "$proto" >> "$results" <<'PY'
import json, sys
lat, sink, proto = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
print(json.dumps({"scenario": f"direct {proto}", "what": f"loadgen -> sink, no sluice ({proto})",
                  "p50_ms": lat["latency_p50_ms"], "p99_ms": lat["latency_p99_ms"],
                  "forwarded": sink["items"], "sent": lat["items_sent"]}))
PY
}

# scenario NAME WHAT SIGNAL PROTOCOL [SEND ARGS...]: runs $work/NAME.yaml.
scenario() {
    local name=$1 what=$2 signal=$3 proto=$4 endpoint before after
    shift 4
    baseline "$proto"
    endpoint=$AGENT_GRPC
    [[ $proto == http ]] && endpoint=http://$AGENT_HTTP
    echo "== $name: $what" >&2
    start_sink "$name" "${sink_args[@]}"
    start_agent "$name"
    if [[ -n $INSTRUCTIONS ]]; then
        count_instructions "$name" "$what" "$signal" "$proto" "$endpoint" "$@"
        return 0
    fi
    # Warm-up, not counted: the exporter connects lazily and buffers grow on first use.
    send "$work/$name.warm.json" --endpoint "$endpoint" --protocol "$proto" --signal "$signal" --rate "$LAT_RATE" \
        --duration 1 "$@"
    send "$work/$name.lat.json" --endpoint "$endpoint" --protocol "$proto" --signal "$signal" --rate "$LAT_RATE" \
        --duration "$LAT_SECONDS" "$@"
    drain
    local sent_before
    sent_before=$(metric 'otelcol_exporter_sent_[a-z_]+_total')
    before=$(cpu_ticks)
    send "$work/$name.tput.json" --endpoint "$endpoint" --protocol "$proto" --signal "$signal" --duration "$DURATION" "$@"
    drain
    after=$(cpu_ticks)
    local peak sent_after
    peak=$(peak_rss_kb)
    sent_after=$(metric 'otelcol_exporter_sent_[a-z_]+_total')
    # Every self-metric at the end (refusals by reason, queue fill), to read later.
    curl -s "http://$AGENT_METRICS/metrics" > "$work/$name.metrics.txt" || true
    stop_agent
    stop_sink
    python3 - "$name" "$what" "$work" "$before" "$after" "$tick" "$peak" "$sent_before" "$sent_after" \
        "${p99_direct[$proto]}" "${p50_direct[$proto]}" >> "$results" <<'PY'
import json, sys
name, what, work = sys.argv[1:4]
before, after, tick, peak, sent0, sent1 = map(int, sys.argv[4:10])
direct, direct50 = float(sys.argv[10]), float(sys.argv[11])
lat = json.load(open(f"{work}/{name}.lat.json"))
tput = json.load(open(f"{work}/{name}.tput.json"))
items = tput["items_sent"]
cpu = (after - before) / tick
offered = items + tput["items_refused"]
print(json.dumps({
    "scenario": name, "what": what,
    "items_per_s": tput["items_per_second"],
    "refused_pct": 100.0 * tput["items_refused"] / offered if offered else 0.0,
    "failed": tput["requests_failed"] + lat["requests_failed"],
    "sent": items, "exported": sent1 - sent0,
    "cpu_s_per_m": cpu / items * 1e6 if items else None,
    "peak_rss_mib": peak / 1024,
    "p50_ms": lat["latency_p50_ms"], "p50_added_ms": lat["latency_p50_ms"] - direct50,
    "p99_ms": lat["latency_p99_ms"], "p99_added_ms": lat["latency_p99_ms"] - direct,
    "p99_flat_out_ms": tput["latency_p99_ms"],
}))
PY
}

# count_instructions NAME WHAT SIGNAL PROTOCOL ENDPOINT [SEND ARGS...]: the
# INSTRUCTIONS=1 run of a scenario whose sluice started under callgrind.
count_instructions() {
    local name=$1 what=$2 signal=$3 proto=$4 endpoint=$5 accepted
    shift 5
    send "$work/$name.count.json" --endpoint "$endpoint" --protocol "$proto" --signal "$signal" --rate 10 \
        --requests "$INSTR_REQUESTS" "$@"
    drain
    accepted=$(metric 'otelcol_receiver_accepted_[a-z_]+_total')
    stop_agent
    stop_sink
    python3 - "$name" "$what" "$work/$name.callgrind" "$accepted" >> "$results" <<'PY'
import json, sys
name, what, out, accepted = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
totals = [l.split()[1] for l in open(out) if l.startswith(("summary:", "totals:"))]
ir = int(totals[0])
print(json.dumps({"scenario": name, "what": what, "accepted": accepted, "instructions": ir,
                  "per_item": ir / accepted if accepted else None}))
PY
}

# ceiling PROTOCOL: flat out straight into a sink that does not decode.
ceiling() {
    local proto=$1 endpoint
    endpoint=$SINK_GRPC
    [[ $proto == http ]] && endpoint=http://$SINK_HTTP
    echo "== 5 $proto: I/O ceiling, loadgen -> non-decoding sink flat out" >&2
    start_sink "5-$proto" --no-decode
    send "$work/5-$proto.tput.json" --endpoint "$endpoint" --protocol "$proto" --duration "$DURATION" "${TRACE_SHAPE[@]}"
    stop_sink
    python3 - "$work/5-$proto.tput.json" "$proto" >> "$results" <<'PY'
import json, sys
t, proto = json.load(open(sys.argv[1])), sys.argv[2]
print(json.dumps({"scenario": f"5 {proto}", "what": f"I/O ceiling: loadgen -> non-decoding sink ({proto})",
                  "items_per_s": t["items_per_second"], "sent": t["items_sent"],
                  "p99_flat_out_ms": t["latency_p99_ms"]}))
PY
}

agent_bin=$SLUICE
for s in "${scenarios[@]}"; do
    t=""
    agent_bin=$SLUICE
    if [[ $s == *@base ]]; then
        t=@base
        agent_bin=$SLUICE_BASE
    fi
    case ${s%@base} in
    1)
        write_config 1$t traces "memory_limiter, batch" otlp
        scenario 1$t "OTLP/gRPC -> batch -> otlp (gzip) -> gRPC sink${t:+ [SLUICE_BASE]}" traces grpc "${TRACE_SHAPE[@]}"
        ;;
    1none)
        write_config 1none$t traces "memory_limiter, batch" otlp "" none
        scenario 1none$t "scenario 1, otlp with compression: none${t:+ [SLUICE_BASE]}" traces grpc "${TRACE_SHAPE[@]}"
        ;;
    1zstd)
        write_config 1zstd$t traces "memory_limiter, batch" otlp "" zstd
        scenario 1zstd$t "scenario 1, otlp with compression: zstd${t:+ [SLUICE_BASE]}" traces grpc "${TRACE_SHAPE[@]}"
        ;;
    1gz6)
        write_config 1gz6$t traces "memory_limiter, batch" otlp "" gzip/6
        scenario 1gz6$t "scenario 1, otlp with gzip level 6 (the Collector's default)${t:+ [SLUICE_BASE]}" traces grpc "${TRACE_SHAPE[@]}"
        ;;
    1nop)
        write_config 1nop$t traces "memory_limiter, batch" nop
        scenario 1nop$t "OTLP/gRPC -> batch -> nop (no export)${t:+ [SLUICE_BASE]}" traces grpc "${TRACE_SHAPE[@]}"
        ;;
    1f16)
        write_config 1f16$t traces "memory_limiter, batch" otlp
        sink_args=(--max-frame-kib 16)
        scenario 1f16$t "scenario 1, sink with 16 KiB HTTP/2 frames (as grpc-go)${t:+ [SLUICE_BASE]}" traces grpc "${TRACE_SHAPE[@]}"
        sink_args=()
        ;;
    2)
        write_config 2$t traces "memory_limiter, batch" otlphttp
        scenario 2$t "OTLP/HTTP -> batch -> otlphttp (gzip) -> HTTP sink${t:+ [SLUICE_BASE]}" traces http "${TRACE_SHAPE[@]}"
        ;;
    3)
        write_config 3$t traces "memory_limiter, tail_sampling, batch" otlp "$tail_sampling_yaml"
        scenario 3$t "scenario 1 + tail_sampling (10 policies)${t:+ [SLUICE_BASE]}" traces grpc "${TRACE_SHAPE[@]}"
        ;;
    4)
        write_config 4m$t metrics "memory_limiter, cardinality_limiter, batch" otlp "$cardinality_yaml"
        scenario 4m$t "metrics (new series each point) -> cardinality_limiter -> gRPC sink${t:+ [SLUICE_BASE]}" metrics grpc
        write_config 4l$t logs "memory_limiter, log_rate_limiter, batch" otlp "$log_rate_yaml"
        scenario 4l$t "noisy logs -> log_rate_limiter -> gRPC sink${t:+ [SLUICE_BASE]}" logs grpc --error-ratio 0.01
        ;;
    5)
        [[ -n $INSTRUCTIONS ]] && { echo "scenario 5 has no sluice to count; skipped" >&2; continue; }
        ceiling grpc
        ceiling http
        ;;
    7)
        write_connectors_config 7$t
        scenario 7$t "OTLP/gRPC traces -> spanmetrics + slo -> metrics -> otlp (gzip) -> gRPC sink${t:+ [SLUICE_BASE]}" traces grpc "${TRACE_SHAPE[@]}"
        ;;
    6)
        write_config 6$t traces "memory_limiter, filter, transform, batch" otlp "$ottl_yaml"
        scenario 6$t "scenario 1 + filter (2 OTTL conditions) + transform (3 OTTL statements)${t:+ [SLUICE_BASE]}" traces grpc "${TRACE_SHAPE[@]}"
        ;;
    esac
done

python3 - "$results" "$ncpu" "$DURATION" "$LAT_RATE" "$SPANS" "$CONNS" "$CONC" "$((LIMIT_MIB + MEMORY_OVERHEAD_MIB))" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ncpu, duration, rate, spans, conns, conc, budget = sys.argv[2:]
def f(v, fmt):
    return "—" if v is None else format(v, fmt)
if rows and "instructions" in rows[0]:
    print(f"\nuser-space instructions of sluice under callgrind; {spans} items per request\n")
    print("| scenario | what | items accepted | instructions | instructions per item |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['scenario']} | {r['what']} | {r['accepted']:,} | {r['instructions']:,} | {f(r['per_item'], ',.0f')} |")
    sys.exit(0)
print(f"\n{ncpu} CPUs; flat out {duration} s over {conns} connections x {conc} in flight; "
      f"latency at {rate} requests/s; {spans} items per request\n")
print("| scenario | what | items/s accepted (flat out) | refused | exported | sluice CPU s / 1M items | peak RSS MiB "
      f"(budget {budget}) | p50 / p99 ms at fixed rate | p50 / p99 added ms | p99 ms flat out |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['scenario']} | {r['what']} | {f(r.get('items_per_s'), ',.0f')} | "
          f"{f(r.get('refused_pct'), '.1f')}{'' if r.get('refused_pct') is None else ' %'} | "
          f"{f(r.get('exported', r.get('forwarded')), ',')} | {f(r.get('cpu_s_per_m'), '.2f')} | "
          f"{f(r.get('peak_rss_mib'), '.0f')}{' OVER' if (r.get('peak_rss_mib') or 0) > int(budget) else ''} | "
          f"{f(r.get('p50_ms'), '.1f')} / {f(r.get('p99_ms'), '.1f')} | "
          f"{f(r.get('p50_added_ms'), '.1f')} / {f(r.get('p99_added_ms'), '.1f')} | "
          f"{f(r.get('p99_flat_out_ms'), '.1f')} |")
    if r.get("failed"):
        print(f"  ({r['scenario']}: {r['failed']} requests failed; see the logs)", file=sys.stderr)
PY
