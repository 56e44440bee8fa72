#!/usr/bin/env python3
"""Send a deterministic OTLP workload with the real OpenTelemetry Python SDK.

  send_otlp.py --signal traces --protocol grpc --endpoint 127.0.0.1:4317 \
      --count 30 --expect-file /tmp/expect.json

* traces: --count spans, in trees of three (root → child → grandchild), with
  attributes of every type (str, int, float, bool, arrays of each), events and
  a status; exported through the SDK's BatchSpanProcessor in batches of
  --batch-size.
* metrics: a counter, an up-down counter, a histogram and a (synchronous)
  gauge, each recorded with --count attribute sets, so 4 × count points;
  collected once and exported once. `--temporality delta` makes the counter
  and the histogram delta (as OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta
  does); the up-down counter and the gauge stay as they are.
* logs: --count records through the logs SDK's BatchLogRecordProcessor, with
  severity, a body, attributes and a trace context.

The expect file holds {"signal", "items": [...]}: what the SDK encoded,
normalized by otlpnorm exactly as the reference receiver normalizes what it
gets, so the two compare item by item.

Every export the SDK makes goes through a wrapper that prints
`EXPORT signal=... items=N result=SUCCESS|FAILURE seconds=...` on stderr; the
SDK's own retry messages ("Transient error ... retrying in 1.00s") are logged
to stderr too. Exit status is 0 only if every export succeeded and every flush
completed.

--endpoint is host:port for gRPC and a base URL (http://host:port) for HTTP;
/v1/<signal> is appended.

TLS and credentials: --ca FILE verifies the server against that CA (gRPC over
TLS through grpc.ssl_channel_credentials; HTTP through certificate_file, with
an https:// endpoint); --client-cert/--client-key add a client certificate
(mTLS); --header key=value (repeatable) sends a header with every export,
e.g. --header "authorization=Bearer TOKEN". --timeout bounds each export including the SDK's
retries (its backoff is 1 s, 2 s, 4 s … ± 20 %, at most 6 tries).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import otlpnorm  # noqa: E402
from seeded_ids import SeededIds  # noqa: E402

from opentelemetry.exporter.otlp.proto.common._internal import _log_encoder, metrics_encoder, trace_encoder  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402

SCOPE_NAME = "sluice.e2e"
SCOPE_VERSION = "1.2.3"


class Results:
    """Export outcomes seen by the wrappers, for the exit status."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0
        self.failed = 0
        self.items = 0

    def add(self, signal, n, success, seconds):
        with self.lock:
            if success:
                self.ok += 1
                self.items += n
            else:
                self.failed += 1
        print(
            f"EXPORT signal={signal} items={n} result={'SUCCESS' if success else 'FAILURE'} seconds={seconds:.3f}",
            file=sys.stderr,
            flush=True,
        )


RESULTS = Results()


def compression(args):
    """The SDK's own compression setting: none, gzip or deflate (its three)."""
    name = "gzip" if args.gzip else args.compression
    if args.protocol == "grpc":
        from grpc import Compression

        return {"none": Compression.NoCompression, "gzip": Compression.Gzip, "deflate": Compression.Deflate}[name]
    from opentelemetry.exporter.otlp.proto.http import Compression

    return {"none": Compression.NoCompression, "gzip": Compression.Gzip, "deflate": Compression.Deflate}[name]


def make_exporter(args):
    """The SDK's own OTLP exporter for the signal and protocol."""
    kw = {"timeout": args.timeout, "compression": compression(args)}
    if args.header:
        kw["headers"] = dict(h.split("=", 1) for h in args.header)
    read = lambda path: open(path, "rb").read() if path else None  # noqa: E731
    if args.protocol == "grpc":
        if args.ca:
            import grpc

            creds = grpc.ssl_channel_credentials(
                root_certificates=read(args.ca),
                private_key=read(args.client_key),
                certificate_chain=read(args.client_cert),
            )
            kw.update(endpoint=args.endpoint, insecure=False, credentials=creds)
        else:
            kw.update(endpoint=args.endpoint, insecure=True)
        if args.signal == "traces":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as E
        elif args.signal == "metrics":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as E
        else:
            from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as E
    else:
        kw.update(endpoint=args.endpoint.rstrip("/") + "/v1/" + args.signal)
        if args.ca:
            kw["certificate_file"] = args.ca
            # requests lets these variables override a session's own CA file
            # (psf/requests#3829), which would silently ignore --ca.
            for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
                os.environ.pop(var, None)
        if args.client_cert:
            kw.update(client_certificate_file=args.client_cert, client_key_file=args.client_key)
        if args.signal == "traces":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as E
        elif args.signal == "metrics":
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as E
        else:
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as E
    return E(**kw)


def resource(args) -> Resource:
    return Resource.create(
        {
            "service.name": args.service_name,
            "service.instance.id": "instance-1",
            "deployment.environment": "e2e",
            "host.cpu.count": 2,
        }
    )


def attrs_for(i: int) -> dict:
    """Attributes of every OTLP type, varying with the item index."""
    return {
        "item.index": i,
        "item.label": f"label-{i % 7}",
        "item.ratio": i / 8 + 0.125,
        "item.even": i % 2 == 0,
        "item.tags": [f"t{i % 3}", "common"],
        "item.ints": [i, i + 1, -i],
        "item.floats": [0.5, i * 1.5],
        "item.bools": [True, i % 3 == 0],
    }


# ---------------------------------------------------------------------------


def send_traces(args) -> list[dict]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

    inner = make_exporter(args)

    class Reporting(SpanExporter):
        def export(self, spans):
            t = time.monotonic()
            r = inner.export(spans)
            RESULTS.add("traces", len(spans), r == SpanExportResult.SUCCESS, time.monotonic() - t)
            return r

        def shutdown(self):
            inner.shutdown()

        def force_flush(self, timeout_millis=30000):
            return True

    captured = InMemorySpanExporter()
    provider = TracerProvider(resource=resource(args), id_generator=SeededIds(args.seed))
    provider.add_span_processor(SimpleSpanProcessor(captured))
    provider.add_span_processor(
        BatchSpanProcessor(
            Reporting(),
            max_export_batch_size=args.batch_size,
            max_queue_size=max(2048, args.count * 2),
            schedule_delay_millis=50,
        )
    )
    tracer = provider.get_tracer(SCOPE_NAME, SCOPE_VERSION)

    base = 1_700_000_000_000_000_000  # fixed timestamps keep the workload deterministic
    made = 0
    tree = 0
    while made < args.count:
        t0 = base + tree * 1_000_000_000
        depth = min(3, args.count - made)
        root = tracer.start_span(f"root-{tree}", kind=SpanKind.SERVER, attributes=attrs_for(made), start_time=t0)
        root.add_event("request.received", {"bytes": 100 + tree, "ok": True}, timestamp=t0 + 1000)
        made += 1
        spans = [root]
        parent = root
        for level in range(1, depth):
            ctx = set_span_in_context(parent)
            kind = SpanKind.INTERNAL if level == 1 else SpanKind.CLIENT
            child = tracer.start_span(
                f"child-{tree}-{level}", context=ctx, kind=kind, attributes=attrs_for(made), start_time=t0 + level * 10_000
            )
            child.add_event("step", {"level": level}, timestamp=t0 + level * 10_000 + 5)
            if level == 2:
                child.set_status(Status(StatusCode.ERROR, f"failure in tree {tree}"))
            made += 1
            spans.append(child)
            parent = child
        for depth_i, sp in reversed(list(enumerate(spans))):
            if depth_i == 0:
                sp.set_status(Status(StatusCode.OK))
            sp.end(end_time=t0 + 900_000 - depth_i * 1000)
        tree += 1

    flushed = provider.force_flush(timeout_millis=int(args.timeout * 1000 * 8))
    provider.shutdown()
    if not flushed:
        print("force_flush did not complete", file=sys.stderr)
        RESULTS.failed += 1
    return otlpnorm.trace_items(trace_encoder.encode_spans(captured.get_finished_spans()))


def send_metrics(args) -> list[dict]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult

    from opentelemetry.sdk.metrics import Counter, Histogram
    from opentelemetry.sdk.metrics.export import AggregationTemporality

    preferred = None
    if args.temporality == "delta":
        preferred = {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA}
    reader = InMemoryMetricReader(preferred_temporality=preferred)
    provider = MeterProvider(resource=resource(args), metric_readers=[reader])
    meter = provider.get_meter(SCOPE_NAME, SCOPE_VERSION)
    requests = meter.create_counter("e2e.requests", unit="{request}", description="Requests handled.")
    inflight = meter.create_up_down_counter("e2e.inflight", unit="{request}", description="Requests in flight.")
    latency = meter.create_histogram("e2e.latency", unit="ms", description="Request latency.")
    temp = meter.create_gauge("e2e.temperature", unit="Cel", description="Temperature.")
    for i in range(args.count):
        a = {"route": f"/r/{i}", "method": "GET" if i % 2 else "POST", "shard": i % 3}
        for k in range(i + 1):
            requests.add(k + 1, a)
            latency.record(1.5 * (k + 1) + i, a)
        inflight.add(i + 2, a)
        inflight.add(-1, a)
        temp.set(20.5 + i, a)
    data = reader.get_metrics_data()
    provider.shutdown()

    exporter = make_exporter(args)
    t = time.monotonic()
    r = exporter.export(data, timeout_millis=args.timeout * 1000)
    n = sum(len(m.data.data_points) for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics)
    RESULTS.add("metrics", n, r == MetricExportResult.SUCCESS, time.monotonic() - t)
    exporter.shutdown()
    return otlpnorm.metric_items(metrics_encoder.encode_metrics(data))


def send_logs(args) -> list[dict]:
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import (
        BatchLogRecordProcessor,
        InMemoryLogRecordExporter,
        LogRecordExporter,
        LogRecordExportResult,
        SimpleLogRecordProcessor,
    )
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

    inner = make_exporter(args)

    class Reporting(LogRecordExporter):
        def export(self, batch):
            t = time.monotonic()
            r = inner.export(batch)
            RESULTS.add("logs", len(batch), r == LogRecordExportResult.SUCCESS, time.monotonic() - t)
            return r

        def shutdown(self):
            inner.shutdown()

        def force_flush(self, timeout_millis=30000):
            return True

    captured = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=resource(args))
    provider.add_log_record_processor(SimpleLogRecordProcessor(captured))
    provider.add_log_record_processor(
        BatchLogRecordProcessor(
            Reporting(),
            max_export_batch_size=args.batch_size,
            max_queue_size=max(2048, args.count * 2),
            schedule_delay_millis=50,
        )
    )
    logger = provider.get_logger(SCOPE_NAME, SCOPE_VERSION)
    ids = SeededIds(args.seed)
    severities = [
        (SeverityNumber.DEBUG, "DEBUG"),
        (SeverityNumber.INFO, "INFO"),
        (SeverityNumber.WARN, "WARN"),
        (SeverityNumber.ERROR, "ERROR"),
    ]
    base = 1_700_000_000_000_000_000
    for i in range(args.count):
        sc = SpanContext(ids.generate_trace_id(), ids.generate_span_id(), is_remote=False, trace_flags=TraceFlags(1))
        num, text = severities[i % 4]
        logger.emit(
            timestamp=base + i * 1_000_000,
            observed_timestamp=base + i * 1_000_000 + 500,
            context=set_span_in_context(NonRecordingSpan(sc)),
            severity_number=num,
            severity_text=text,
            body=f"log line {i}: something happened",
            attributes=attrs_for(i),
        )
    flushed = provider.force_flush(timeout_millis=int(args.timeout * 1000 * 8))
    provider.shutdown()
    if not flushed:
        print("force_flush did not complete", file=sys.stderr)
        RESULTS.failed += 1
    return otlpnorm.log_items(_log_encoder.encode_logs(captured.get_finished_logs()))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--signal", choices=otlpnorm.SIGNALS, required=True)
    p.add_argument("--protocol", choices=("grpc", "http"), required=True)
    p.add_argument("--endpoint", required=True, help="host:port (grpc) or http://host:port (http)")
    p.add_argument("--gzip", action="store_true", help="short for --compression gzip")
    p.add_argument("--compression", choices=["none", "gzip", "deflate"], default="none")
    p.add_argument("--count", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=512, help="spans/log records per export")
    p.add_argument("--service-name", default="sluice-e2e-python")
    p.add_argument("--expect-file")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per export, retries included")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--temporality", choices=("cumulative", "delta"), default="cumulative", help="metrics: counter and histogram temporality")
    p.add_argument("--ca", help="PEM CA file to verify the server with (TLS)")
    p.add_argument("--client-cert", help="PEM client certificate (mTLS); needs --client-key")
    p.add_argument("--client-key", help="PEM private key of --client-cert")
    p.add_argument("--header", action="append", default=[], help="key=value sent with every export (repeatable)")
    args = p.parse_args()

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    t = time.monotonic()
    items = {"traces": send_traces, "metrics": send_metrics, "logs": send_logs}[args.signal](args)
    if args.expect_file:
        with open(args.expect_file, "w") as f:
            json.dump({"signal": args.signal, "items": items}, f, sort_keys=True)
    ok = RESULTS.failed == 0 and RESULTS.ok > 0
    print(
        f"SENT signal={args.signal} items={len(items)} exports_ok={RESULTS.ok} exports_failed={RESULTS.failed} "
        f"seconds={time.monotonic() - t:.3f} {'OK' if ok else 'FAILED'}",
        flush=True,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
