#!/usr/bin/env python3
"""Send traces in two halves with the OpenTelemetry Python SDK, pausing in
between until told to go on, so something can happen to an agent (a reload)
while it holds half of every trace.

  send_trace_halves.py --endpoint 127.0.0.1:4317 --traces 5 --spans 6 --manifest m.json

Trace t has a root `halves-root-t` and --spans - 1 children
`halves-child-t-c`. First the first half of the children of every trace end
(the SDK exports a span when it ends), the SDK flushes, and the script prints
`FIRST_HALF_SENT spans=N` on stdout. It then waits for a line on stdin, ends
the other children and the roots, flushes again and prints
`SENT spans=N OK|FAILED`.

The manifest maps each trace ID (hex) to {"spans": S, "first_half": K}.
Exit status is 0 only if every export succeeded and both flushes completed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import set_span_in_context

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seeded_ids import SeededIds  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", required=True, help="host:port of an OTLP/gRPC receiver")
    p.add_argument("--traces", type=int, default=5)
    p.add_argument("--spans", type=int, default=6, help="spans per trace, root included (at least 3)")
    p.add_argument("--batch-size", type=int, default=4, help="spans per export")
    p.add_argument("--manifest", required=True)
    p.add_argument("--seed", type=int, default=23)
    args = p.parse_args()
    if args.spans < 3:
        p.error("--spans must be at least 3 (a root and two children, one per half)")

    failures = []
    inner = OTLPSpanExporter(endpoint=args.endpoint, insecure=True, timeout=10)

    class Reporting(SpanExporter):
        def export(self, spans):
            r = inner.export(spans)
            if r != SpanExportResult.SUCCESS:
                failures.append(len(spans))
                print(f"EXPORT items={len(spans)} result=FAILURE", file=sys.stderr, flush=True)
            return r

        def shutdown(self):
            inner.shutdown()

    provider = TracerProvider(resource=Resource.create({"service.name": "halves"}), id_generator=SeededIds(args.seed))
    provider.add_span_processor(
        BatchSpanProcessor(
            Reporting(),
            max_export_batch_size=args.batch_size,
            max_queue_size=max(2048, args.traces * args.spans * 2),
            schedule_delay_millis=20,
        )
    )
    tracer = provider.get_tracer("sluice.halves")

    children = args.spans - 1
    first = children // 2
    manifest = {}
    open_spans = []  # per trace: (root, children)
    for t in range(args.traces):
        root = tracer.start_span(f"halves-root-{t}", attributes={"halves.trace": t})
        ctx = set_span_in_context(root)
        kids = [tracer.start_span(f"halves-child-{t}-{c}", context=ctx) for c in range(children)]
        open_spans.append((root, kids))
        manifest[format(root.get_span_context().trace_id, "032x")] = {"spans": args.spans, "first_half": first}

    for _, kids in open_spans:
        for kid in kids[:first]:
            kid.end()
    flushed_first = provider.force_flush()
    print(f"FIRST_HALF_SENT spans={first * args.traces}", flush=True)

    sys.stdin.readline()
    for root, kids in open_spans:
        for kid in kids[first:]:
            kid.end()
        root.end()
    flushed_second = provider.force_flush()
    provider.shutdown()

    with open(args.manifest, "w") as f:
        json.dump(manifest, f, sort_keys=True)
    ok = flushed_first and flushed_second and not failures
    print(f"SENT spans={args.traces * args.spans} {'OK' if ok else 'FAILED'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
