#!/usr/bin/env python3
"""Sends OTLP/gRPC trace requests one after another and records which ones
the agent acknowledged, for sluice's persistent-queue (crash) tests.

Request i carries --spans spans whose span IDs are unique across the run:
8 bytes = (run id u16, request i u32, span j u16), big-endian. After each
request one JSON line goes to --out (flushed at once, so a test that kills
the agent knows exactly what was acknowledged):
  {"request": i, "ok": true|false, "attempts": n, "error": "..."}
A request that gets UNAVAILABLE or a connection error is retried every
--retry-interval seconds for up to --retry-seconds; then it is recorded as
failed and the sender goes on. Other errors are recorded at once.

Built from the opentelemetry-proto package's generated stubs only.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}


def request(run: int, i: int, spans: int, pad: int) -> trace_service_pb2.ExportTraceServiceRequest:
    now = time.time_ns()
    trace_id = struct.pack(">HIxxxxxxxxxx", run, i)
    out = []
    for j in range(spans):
        out.append(
            trace_pb2.Span(
                trace_id=trace_id,
                span_id=struct.pack(">HIH", run, i, j),
                name=f"op-{j % 7}",
                kind=trace_pb2.Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=now,
                end_time_unix_nano=now + 1000,
                attributes=[common_pb2.KeyValue(key="pad", value=common_pb2.AnyValue(string_value="x" * pad))],
            )
        )
    resource = resource_pb2.Resource(
        attributes=[common_pb2.KeyValue(key="service.name", value=common_pb2.AnyValue(string_value="send-acked"))]
    )
    return trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[trace_pb2.ResourceSpans(resource=resource, scope_spans=[trace_pb2.ScopeSpans(spans=out)])]
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", required=True, help="host:port of the agent's OTLP/gRPC receiver")
    p.add_argument("--requests", type=int, default=100)
    p.add_argument("--spans", type=int, default=10, help="spans per request")
    p.add_argument("--pad", type=int, default=100, help="bytes of a padding attribute per span")
    p.add_argument("--run", type=int, default=1, help="run id in the span IDs (0..65535)")
    p.add_argument("--first", type=int, default=0, help="number of the first request")
    p.add_argument("--interval", type=float, default=0.0, help="seconds between requests")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: after --requests)")
    p.add_argument("--retry-seconds", type=float, default=5.0)
    p.add_argument("--retry-interval", type=float, default=0.2)
    p.add_argument("--timeout", type=float, default=15.0, help="per-attempt deadline")
    p.add_argument("--out", required=True)
    args = p.parse_args()

    channel = grpc.insecure_channel(args.endpoint)
    stub = trace_service_pb2_grpc.TraceServiceStub(channel)
    started = time.monotonic()
    ok_count = 0
    with open(args.out, "a", buffering=1) as out:
        for i in range(args.first, args.first + args.requests):
            if args.duration and time.monotonic() - started > args.duration:
                break
            req = request(args.run, i, args.spans, args.pad)
            deadline = time.monotonic() + args.retry_seconds
            attempts, ok, error = 0, False, ""
            while True:
                attempts += 1
                try:
                    stub.Export(req, timeout=args.timeout)
                    ok = True
                    break
                except grpc.RpcError as e:
                    error = f"{e.code().name}: {e.details()}"
                    if e.code() not in RETRYABLE or time.monotonic() > deadline:
                        break
                    time.sleep(args.retry_interval)
            ok_count += ok
            out.write(json.dumps({"request": i, "ok": ok, "attempts": attempts, "error": error}) + "\n")
            if args.interval:
                time.sleep(args.interval)
    print(f"DONE ok={ok_count}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
