#!/usr/bin/env python3
"""Send a mix of normal, slow and failing traces with the OpenTelemetry Python
SDK, for sampling tests, and write a manifest of what was sent.

  send_sampling_mix.py --endpoint 127.0.0.1:4317 --traces 300 --manifest m.json

Trace i is:
  * "error"  when i % --error-every == 0: its last child span has status ERROR;
  * "slow"   when i % --slow-every == 1: its root span lasts --slow-ms;
  * "normal" otherwise: the root lasts 20 ms.
With --error-on-first-child the ERROR is on the first child instead, the
first span a head sampler sees. Each trace has --spans spans (a root and its children). Children end before
their root, and the SDK exports in batches of --batch-size spans, so a trace's
spans reach the agent out of order and spread over several requests.
Timestamps are explicit (no sleeping), so durations are exact.

The manifest maps each trace ID (hex) to {"kind", "spans"}. Exit status is 0
only if every export succeeded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode, set_span_in_context

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seeded_ids import SeededIds  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", required=True, help="host:port of an OTLP/gRPC receiver")
    p.add_argument("--traces", type=int, default=300)
    p.add_argument("--spans", type=int, default=4, help="spans per trace")
    p.add_argument("--error-every", type=int, default=10)
    p.add_argument("--slow-every", type=int, default=10)
    p.add_argument("--slow-ms", type=int, default=5000)
    p.add_argument("--batch-size", type=int, default=7)
    p.add_argument(
        "--error-on-first-child",
        action="store_true",
        help="put the ERROR status on the first child (the first span a head sampler sees) instead of the last",
    )
    p.add_argument("--manifest", required=True)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()

    failures = []
    inner = OTLPSpanExporter(endpoint=args.endpoint, insecure=True, timeout=10)

    class Reporting(SpanExporter):
        def export(self, spans):
            r = inner.export(spans)
            if r != SpanExportResult.SUCCESS:
                failures.append(len(spans))
            return r

        def shutdown(self):
            inner.shutdown()

    provider = TracerProvider(
        resource=Resource.create({"service.name": "sampling-mix"}), id_generator=SeededIds(args.seed)
    )
    provider.add_span_processor(
        BatchSpanProcessor(
            Reporting(),
            max_export_batch_size=args.batch_size,
            max_queue_size=max(2048, args.traces * args.spans * 2),
            schedule_delay_millis=20,
        )
    )
    tracer = provider.get_tracer("sluice.sampling-mix")

    manifest = {}
    base = time.time_ns() - 60_000_000_000  # a minute ago, so nothing is "in the future"
    for i in range(args.traces):
        kind = "error" if i % args.error_every == 0 else "slow" if i % args.slow_every == 1 else "normal"
        root_ms = args.slow_ms if kind == "slow" else 20
        t0 = base + i * 1_000_000
        root = tracer.start_span(f"GET /mix/{kind}", start_time=t0, attributes={"mix.kind": kind, "mix.index": i})
        ctx = set_span_in_context(root)
        for c in range(args.spans - 1):
            child = tracer.start_span(f"child-{c}", context=ctx, start_time=t0 + (c + 1) * 1_000)
            error_child = 0 if args.error_on_first_child else args.spans - 2
            if kind == "error" and c == error_child:
                child.set_status(Status(StatusCode.ERROR, "boom"))
            child.end(end_time=t0 + (c + 1) * 1_000 + 500_000)
        root.end(end_time=t0 + root_ms * 1_000_000)
        manifest[format(root.get_span_context().trace_id, "032x")] = {"kind": kind, "spans": args.spans}

    provider.force_flush()
    provider.shutdown()
    with open(args.manifest, "w") as f:
        json.dump(manifest, f, sort_keys=True)
    if failures:
        print(f"{len(failures)} exports failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
