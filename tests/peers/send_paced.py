#!/usr/bin/env python3
"""Keep sending spans at a steady pace with the OpenTelemetry Python SDK until
told to stop, so an agent can be reloaded while a real client sends.

  send_paced.py --endpoint 127.0.0.1:4317 --stop-file /tmp/stop --out sent.json

Span i (from 0) is a root span named `paced-i` with the attribute
`paced.index = i`; IDs come from a seeded generator, so every span is unique.
Spans are made --round at a time, a round every --round/--rate seconds, and
exported over OTLP/gRPC by the SDK's BatchSpanProcessor (at most --batch-size
spans per export, every 50 ms), so the agent gets many small requests the
whole time. The SDK's exporter retries UNAVAILABLE with its own backoff within
--timeout.

Prints `STARTED` on stdout once the SDK is set up. When --stop-file exists (or
after --max-seconds) it makes no more spans, flushes, and writes
{"count": N, "names": [...]} to --out; it then prints
`SENT items=N exports_ok=.. exports_failed=.. OK|FAILED`. Every export is logged on stderr as
`EXPORT items=N result=SUCCESS|FAILURE seconds=S`. Exit status is 0 only if
every export succeeded and the flush completed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seeded_ids import SeededIds  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", required=True, help="host:port of an OTLP/gRPC receiver")
    p.add_argument("--stop-file", required=True, help="stop making spans once this file exists")
    p.add_argument("--out", required=True, help="where to write the count and names of the spans made")
    p.add_argument("--rate", type=float, default=200.0, help="spans per second")
    p.add_argument("--round", type=int, default=10, help="spans made at a time")
    p.add_argument("--batch-size", type=int, default=20, help="spans per export")
    p.add_argument("--max-seconds", type=float, default=30.0, help="stop anyway after this long")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds per export, retries included")
    p.add_argument("--seed", type=int, default=11)
    args = p.parse_args()

    lock = threading.Lock()
    results = {"ok": 0, "failed": 0}
    inner = OTLPSpanExporter(endpoint=args.endpoint, insecure=True, timeout=args.timeout)

    class Reporting(SpanExporter):
        def export(self, spans):
            t = time.monotonic()
            r = inner.export(spans)
            ok = r == SpanExportResult.SUCCESS
            with lock:
                results["ok" if ok else "failed"] += 1
            print(
                f"EXPORT items={len(spans)} result={'SUCCESS' if ok else 'FAILURE'} seconds={time.monotonic() - t:.3f}",
                file=sys.stderr,
                flush=True,
            )
            return r

        def shutdown(self):
            inner.shutdown()

        def force_flush(self, timeout_millis=30000):
            return True

    provider = TracerProvider(resource=Resource.create({"service.name": "paced"}), id_generator=SeededIds(args.seed))
    provider.add_span_processor(
        BatchSpanProcessor(
            Reporting(),
            max_export_batch_size=args.batch_size,
            # Never full: a dropped span would be a loss the test blames on the agent.
            max_queue_size=max(2048, int(args.rate * args.max_seconds * 2)),
            schedule_delay_millis=50,
        )
    )
    tracer = provider.get_tracer("sluice.paced")
    print("STARTED", flush=True)

    names = []
    interval = args.round / args.rate
    start = time.monotonic()
    next_round = start
    while not os.path.exists(args.stop_file) and time.monotonic() - start < args.max_seconds:
        for _ in range(args.round):
            i = len(names)
            name = f"paced-{i}"
            tracer.start_span(name, attributes={"paced.index": i}).end()
            names.append(name)
        next_round += interval
        time.sleep(max(0.0, next_round - time.monotonic()))

    flushed = provider.force_flush(timeout_millis=int(args.timeout * 1000 * 3))
    provider.shutdown()
    with open(args.out, "w") as f:
        json.dump({"count": len(names), "names": names}, f)
    ok = flushed and results["failed"] == 0 and results["ok"] > 0
    if not flushed:
        print("force_flush did not complete", file=sys.stderr)
    print(
        f"SENT items={len(names)} exports_ok={results['ok']} exports_failed={results['failed']} {'OK' if ok else 'FAILED'}",
        flush=True,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
