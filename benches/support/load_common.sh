# Sourced by benches/load.sh and benches/load_tail.sh: core pinning, starting
# the counting sink (`sluice-loadgen sink`) and the agent, and reading the
# agent's CPU and metrics. (benches/e2e.sh is self-contained.)
# Expects $work (a temp dir holding sluice.yaml) to be set by the caller.
# The agent listens for OTLP/gRPC on 24317 and serves /metrics on 28888; the
# sink listens on 24318.

ncpu=$(nproc)
core_agent=0
core_load=$(( ncpu > 1 ? 1 : 0 ))
tick=$(getconf CLK_TCK)
# Where cargo put the release binaries (CARGO_TARGET_DIR is honoured).
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

# The exporter and self-telemetry half of both configs.
OTLP_TO_SINK_YAML='exporters:
  otlp:
    endpoint: 127.0.0.1:24318
    tls:
      insecure: true
    compression: none
service:
  telemetry:
    metrics:
      address: 127.0.0.1:28888'

# start_sink [SINK ARGS...]: the counting sink on the load core; sets $sink.
start_sink() {
    taskset -c "$core_load" "$target/release/sluice-loadgen" sink --grpc 127.0.0.1:24318 "$@" > "$work/sink.json" 2> "$work/sink.log" &
    sink=$!
}

# start_agent: sluice on the agent core, waiting until /metrics answers; sets $agent.
start_agent() {
    taskset -c "$core_agent" "$target/release/sluice" --config "$work/sluice.yaml" 2> "$work/sluice.log" &
    agent=$!
    for _ in $(seq 50); do curl -sf http://127.0.0.1:28888/metrics >/dev/null && break; sleep 0.1; done
}

# User + system CPU ticks of the agent so far.
cpu_ticks() { awk '{print $14+$15}' "/proc/$agent/stat"; }

# metric NAME: the sum of every series of NAME on the agent's /metrics.
metric() { curl -s http://127.0.0.1:28888/metrics | awk -v n="$1" '$1 ~ "^"n"({|$)" {s+=$2} END {printf "%.0f", s+0}'; }

# Peak resident set size of the agent, in KiB.
peak_rss_kb() { awk '/VmHWM/ {print $2}' "/proc/$agent/status"; }
