#!/usr/bin/env python3
"""A reference OTLP receiver for sluice's end-to-end tests.

Built only from the `opentelemetry-proto` package's generated messages and
gRPC stubs (grpcio server) and the standard library's `http.server`, so it
decodes exactly what the OTLP spec says, independently of sluice's code.

* gRPC: the Trace/Metrics/Logs services (gzip requests are accepted).
* HTTP: POST /v1/traces|metrics|logs, `application/x-protobuf` or
  `application/json`, optional `Content-Encoding: gzip`, Content-Length or
  chunked bodies. GET /stats answers the counters as JSON.

Every request (accepted or rejected) is written as one JSON line to --out:
  {"seq", "transport", "signal", "encoding", "gzip", "status", "items": [...],
   "headers": {...}}   (accepted requests: HTTP headers / gRPC metadata, lowercased)
("gzip" is null for gRPC: grpcio decompresses transparently and hides it)
where items are normalized by otlpnorm (one per span / point / log record).

Prints `READY grpc=PORT http=PORT` on stdout once both servers listen.

Fault injection:
  --fail-first N          the first N requests (both transports, counted
                          together) are rejected...
  --fail-code CODE        ...on gRPC with unavailable|invalid_argument|...
  --fail-http-status S    ...on HTTP with status S (default 503)
  --retry-after SECS      HTTP: Retry-After header; gRPC: RetryInfo trailer
  --stall-seconds S       every request that arrives within S seconds of the
                          first one is held until that moment, then answered
                          (a backend that hangs for S seconds, then recovers)
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import signal
import sys
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import otlpnorm  # noqa: E402

import grpc  # noqa: E402
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc  # noqa: E402
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc  # noqa: E402
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc  # noqa: E402

RESPONSES = {
    "traces": trace_service_pb2.ExportTraceServiceResponse,
    "metrics": metrics_service_pb2.ExportMetricsServiceResponse,
    "logs": logs_service_pb2.ExportLogsServiceResponse,
}


class State:
    """Counters, fault-injection decisions and the output file, behind one lock."""

    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.out = open(args.out, "a", buffering=1) if args.out else None
        self.seq = 0
        self.first_arrival: float | None = None
        self.stats = {
            "requests": 0,
            "requests_accepted": 0,
            "requests_rejected": 0,
            "items_accepted": {s: 0 for s in otlpnorm.SIGNALS},
            "items_rejected": {s: 0 for s in otlpnorm.SIGNALS},
            "stalled": 0,
        }

    def admit(self) -> tuple[int, bool, float]:
        """Numbers a new request; returns (seq, reject?, seconds to stall)."""
        with self.lock:
            self.seq += 1
            now = time.monotonic()
            if self.first_arrival is None:
                self.first_arrival = now
            stall = 0.0
            if self.args.stall_seconds > 0:
                stall = max(0.0, self.first_arrival + self.args.stall_seconds - now)
                if stall > 0:
                    self.stats["stalled"] += 1
            return self.seq, self.seq <= self.args.fail_first, stall

    def record(self, seq, transport, signal_, encoding, gz, items, accepted, error=None, headers=None):
        with self.lock:
            self.stats["requests"] += 1
            key = "accepted" if accepted else "rejected"
            self.stats[f"requests_{key}"] += 1
            self.stats[f"items_{key}"][signal_] += len(items)
            if self.out:
                line = {
                    "seq": seq,
                    "transport": transport,
                    "signal": signal_,
                    "encoding": encoding,
                    "gzip": gz,
                    "status": key,
                    "items": items,
                }
                if error:
                    line["error"] = error
                if headers:
                    line["headers"] = headers
                self.out.write(json.dumps(line, sort_keys=True) + "\n")
            if not self.args.quiet:
                print(
                    f"request seq={seq} {transport} {signal_} {encoding} gzip={gz} items={len(items)} {key}",
                    file=sys.stderr,
                    flush=True,
                )

    def snapshot(self) -> dict:
        with self.lock:
            return json.loads(json.dumps(self.stats))


# ---------------------------------------------------------------------------
# gRPC


def grpc_code(name: str) -> grpc.StatusCode:
    return grpc.StatusCode[name.upper()]


def make_servicer(state: State, signal_: str, base):
    class Servicer(base):
        def Export(self, request, context):  # noqa: N802 (generated name)
            seq, reject, stall = state.admit()
            if stall:
                time.sleep(stall)
            # grpcio decompresses before we see the message and hides grpc-encoding.
            gz = None
            items = otlpnorm.ITEMS[signal_](request)
            if reject:
                code = grpc_code(state.args.fail_code)
                state.record(seq, "grpc", signal_, "proto", gz, items, False, code.name)
                if state.args.retry_after is not None:
                    from google.rpc import error_details_pb2

                    info = error_details_pb2.RetryInfo()
                    info.retry_delay.FromNanoseconds(int(state.args.retry_after * 1e9))
                    context.set_trailing_metadata((("google.rpc.retryinfo-bin", info.SerializeToString()),))
                context.abort(code, f"reference receiver: injected failure for request {seq}")
            metadata = {k.lower(): v for k, v in context.invocation_metadata() if not k.endswith("-bin")}
            state.record(seq, "grpc", signal_, "proto", gz, items, True, headers=metadata)
            return RESPONSES[signal_]()

    return Servicer()


def start_grpc(state: State, host: str, port: int) -> tuple[grpc.Server, int]:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=64),
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    )
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
        make_servicer(state, "traces", trace_service_pb2_grpc.TraceServiceServicer), server
    )
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(
        make_servicer(state, "metrics", metrics_service_pb2_grpc.MetricsServiceServicer), server
    )
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(
        make_servicer(state, "logs", logs_service_pb2_grpc.LogsServiceServicer), server
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    server.start()
    return server, bound


# ---------------------------------------------------------------------------
# HTTP


def make_handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real exporters expect

        def log_message(self, *a):  # silence the default access log
            pass

        def _read_body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                while True:
                    size_line = self.rfile.readline().strip()
                    size = int(size_line.split(b";")[0], 16)
                    if size == 0:
                        # Trailers (usually none) end with an empty line.
                        while self.rfile.readline().strip():
                            pass
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()  # CRLF after each chunk
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def _reply(self, status: int, body: bytes, ctype: str, extra=()):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802
            if self.path == "/stats":
                self._reply(200, json.dumps(state.snapshot()).encode(), "application/json")
            else:
                self._reply(404, b"not found\n", "text/plain")

        def do_POST(self):  # noqa: N802
            signal_ = {"/v1/traces": "traces", "/v1/metrics": "metrics", "/v1/logs": "logs"}.get(self.path)
            body = self._read_body()
            if signal_ is None:
                self._reply(404, b"unknown path\n", "text/plain")
                return
            gz = self.headers.get("Content-Encoding", "").lower() == "gzip"
            ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
            encoding = "json" if ctype == "application/json" else "proto"
            seq, reject, stall = state.admit()
            if stall:
                time.sleep(stall)
            try:
                raw = gzip.decompress(body) if gz else body
                if encoding == "json":
                    msg = otlpnorm.decode_json(signal_, raw)
                else:
                    msg = otlpnorm.request_class(signal_)()
                    msg.ParseFromString(raw)
                items = otlpnorm.ITEMS[signal_](msg)
            except Exception as e:  # a malformed body is a test failure worth seeing
                state.record(seq, "http", signal_, encoding, gz, [], False, f"decode: {e}")
                self._reply(400, f"decode error: {e}\n".encode(), "text/plain")
                return
            if reject:
                status = state.args.fail_http_status
                state.record(seq, "http", signal_, encoding, gz, items, False, f"http {status}")
                extra = []
                if state.args.retry_after is not None:
                    extra.append(("Retry-After", str(int(state.args.retry_after))))
                self._reply(status, b"injected failure\n", "text/plain", extra)
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.record(seq, "http", signal_, encoding, gz, items, True, headers=headers)
            if encoding == "json":
                self._reply(200, b"{}", "application/json")
            else:
                self._reply(200, RESPONSES[signal_]().SerializeToString(), "application/x-protobuf")

    return Handler


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--grpc-port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--http-port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--out", help="JSON lines file of received requests")
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--fail-code", default="unavailable")
    p.add_argument("--fail-http-status", type=int, default=503)
    p.add_argument("--retry-after", type=float, default=None)
    p.add_argument("--stall-seconds", type=float, default=0.0)
    p.add_argument("--quiet", action="store_true", help="no per-request line on stderr")
    args = p.parse_args()
    grpc_code(args.fail_code)  # validate early

    state = State(args)
    gserver, gport = start_grpc(state, args.host, args.grpc_port)
    httpd = ThreadingHTTPServer((args.host, args.http_port), make_handler(state))
    httpd.daemon_threads = True
    hport = httpd.server_address[1]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()

    done = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: done.set())
    print(f"READY grpc={gport} http={hport}", flush=True)
    done.wait()
    gserver.stop(1)
    httpd.shutdown()
    print("STATS " + json.dumps(state.snapshot(), sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
