"""What the trace senders (send_late_spans.py, send_trace_halves.py) share:
the common arguments, a tracer provider whose exporter reports every failed
export on stderr, and the manifest they write."""

from __future__ import annotations

import argparse
import json
import os
import sys

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seeded_ids import SeededIds  # noqa: E402


def parser(doc: str, traces: int, spans: int, seed: int) -> argparse.ArgumentParser:
    """An argument parser with --endpoint, --traces, --spans, --manifest and --seed."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", required=True, help="host:port of an OTLP/gRPC receiver")
    p.add_argument("--traces", type=int, default=traces)
    p.add_argument("--spans", type=int, default=spans, help="spans per trace, root included (at least 3)")
    p.add_argument("--manifest", required=True)
    p.add_argument("--seed", type=int, default=seed)
    return p


class Sender:
    """A tracer provider exporting over OTLP/gRPC with seeded IDs; every
    export that fails is counted in `failures` and reported on stderr."""

    def __init__(self, endpoint: str, service: str, seed: int, batch_size: int, queue_size: int):
        self.failures = []
        inner = OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=10)
        failures = self.failures

        class Reporting(SpanExporter):
            def export(self, spans):
                r = inner.export(spans)
                if r != SpanExportResult.SUCCESS:
                    failures.append(len(spans))
                    print(f"EXPORT items={len(spans)} result=FAILURE", file=sys.stderr, flush=True)
                return r

            def shutdown(self):
                inner.shutdown()

        self.provider = TracerProvider(resource=Resource.create({"service.name": service}), id_generator=SeededIds(seed))
        self.provider.add_span_processor(
            BatchSpanProcessor(
                Reporting(),
                max_export_batch_size=batch_size,
                max_queue_size=queue_size,
                schedule_delay_millis=20,
            )
        )

    def tracer(self, name: str):
        return self.provider.get_tracer(name)

    def flush(self) -> bool:
        return self.provider.force_flush()

    def finish(self, manifest_path: str, manifest: dict, flushed: bool, spans: int) -> int:
        """Shuts the provider down, writes the manifest, prints `SENT spans=N OK|FAILED`; the exit status."""
        self.provider.shutdown()
        with open(manifest_path, "w") as f:
            json.dump(manifest, f, sort_keys=True)
        ok = flushed and not self.failures
        print(f"SENT spans={spans} {'OK' if ok else 'FAILED'}", flush=True)
        return 0 if ok else 1
