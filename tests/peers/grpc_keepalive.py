#!/usr/bin/env python3
"""Hold an OTLP/gRPC channel open with grpcio (gRPC C-core, the transport
under the OpenTelemetry Python SDK's gRPC exporters) sending keepalive
pings every --keepalive-ms, with or without a call in flight, then export
one span on the same channel.

Used by tests/e2e_security.rs to check sluice's keepalive enforcement
policy against a real gRPC client: a client pinging too often is sent
GOAWAY ENHANCE_YOUR_CALM "too_many_pings" (C-core then doubles its ping
interval and reconnects), one within the policy keeps its connection.

    grpc_keepalive.py --endpoint 127.0.0.1:4317 --keepalive-ms 100 --seconds 2

Prints one JSON line: {"export_ok": true|false, "error": "..."}.
"""

import argparse
import json
import sys
import time

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", required=True, help="host:port of an OTLP/gRPC receiver")
    p.add_argument("--keepalive-ms", type=int, required=True)
    p.add_argument("--seconds", type=float, required=True, help="how long to hold the channel idle")
    args = p.parse_args()

    options = [
        ("grpc.keepalive_time_ms", args.keepalive_ms),
        ("grpc.keepalive_timeout_ms", 5000),
        ("grpc.keepalive_permit_without_calls", 1),
        # C-core otherwise stops pinging after 2 pings with no data sent.
        ("grpc.http2.max_pings_without_data", 0),
    ]
    channel = grpc.insecure_channel(args.endpoint, options=options)
    grpc.channel_ready_future(channel).result(timeout=10)
    time.sleep(args.seconds)
    now = time.time_ns()
    span = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="keepalive", start_time_unix_nano=now, end_time_unix_nano=now)
    req = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])])
    result = {"export_ok": True, "error": ""}
    try:
        TraceServiceStub(channel).Export(req, timeout=10, wait_for_ready=True)
    except grpc.RpcError as e:
        result = {"export_ok": False, "error": f"{e.code()}: {e.details()}"}
    channel.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
