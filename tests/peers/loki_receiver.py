#!/usr/bin/env python3
"""A reference Loki push receiver for sluice's `loki` exporter tests.

No Loki server runs on the test machines, so this checks the wire format as
Loki reads it, with code that shares nothing with sluice's:

* POST /loki/api/v1/push with `Content-Type: application/x-protobuf`: the body
  is snappy *block* compressed (decoded by `cramjam`) `logproto.PushRequest`,
  decoded by `google.protobuf` from a descriptor built here at run time from
  the same messages as proto/loki_push.proto (nothing is generated).
* `Content-Type: application/json`: Loki's JSON push format, optionally
  `Content-Encoding: gzip`.
* Answers 204 as Loki does; GET /stats answers counters as JSON.

Each push is written as one JSON line to --out:
  {"seq", "encoding", "gzip", "status", "tenant", "authorization",
   "streams": [{"labels": "{...}", "label_map": {...},
                "entries": [{"ts": ns, "line": "...", "structured_metadata": {...}}]}]}
`label_map` is the label string parsed as Loki's parser reads it (quotes,
backslashes and \\n unescaped); a label string it cannot parse is a 400.

Fault injection: the first --fail-first N pushes are answered --fail-status
(default 429) with --fail-message as the body and, if given, --retry-after.

Prints `READY http=PORT` on stdout once it listens.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cramjam
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2


def push_request_class():
    """logproto.PushRequest from a FileDescriptorProto built here."""
    pool = descriptor_pool.DescriptorPool()
    ts = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(ts)
    pool.Add(ts)
    f = descriptor_pb2.FileDescriptorProto(
        name="loki_push.proto", package="logproto", syntax="proto3", dependency=["google/protobuf/timestamp.proto"]
    )
    T = descriptor_pb2.FieldDescriptorProto
    REP, OPT = T.LABEL_REPEATED, T.LABEL_OPTIONAL

    def msg(name, fields):
        m = f.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            fd = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                fd.type_name = type_name

    msg("PushRequest", [("streams", 1, T.TYPE_MESSAGE, REP, ".logproto.StreamAdapter")])
    msg(
        "StreamAdapter",
        [
            ("labels", 1, T.TYPE_STRING, OPT, None),
            ("entries", 2, T.TYPE_MESSAGE, REP, ".logproto.EntryAdapter"),
            ("hash", 3, T.TYPE_UINT64, OPT, None),
        ],
    )
    msg(
        "EntryAdapter",
        [
            ("timestamp", 1, T.TYPE_MESSAGE, OPT, ".google.protobuf.Timestamp"),
            ("line", 2, T.TYPE_STRING, OPT, None),
            ("structuredMetadata", 3, T.TYPE_MESSAGE, REP, ".logproto.LabelPairAdapter"),
        ],
    )
    msg("LabelPairAdapter", [("name", 1, T.TYPE_STRING, OPT, None), ("value", 2, T.TYPE_STRING, OPT, None)])
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("logproto.PushRequest"))


PushRequest = push_request_class()
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def parse_labels(s: str) -> dict:
    """`{a="x", b="y\\"z"}` as Loki's (Prometheus') parser reads it; ValueError if malformed."""
    if not (s.startswith("{") and s.endswith("}")):
        raise ValueError(f"labels {s!r} are not in braces")
    body, i, out = s[1:-1], 0, {}
    while i < len(body):
        m = LABEL_NAME.match(body, i)
        if not m:
            raise ValueError(f"bad label name at {body[i:]!r}")
        name, i = m.group(0), m.end()
        if body[i : i + 2] != '="':
            raise ValueError(f"expected =\" after {name}")
        i += 2
        val = []
        while True:
            if i >= len(body):
                raise ValueError("unterminated value")
            c = body[i]
            if c == "\\":
                nxt = body[i + 1]
                val.append({"n": "\n", "\\": "\\", '"': '"'}.get(nxt) or ("\\" + nxt))
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                val.append(c)
                i += 1
        if name in out:
            raise ValueError(f"duplicate label {name}")
        out[name] = "".join(val)
        if body[i : i + 2] == ", ":
            i += 2
        elif body[i : i + 1] == ",":
            i += 1
        elif i != len(body):
            raise ValueError(f"unexpected {body[i:]!r}")
    return out


def decode_protobuf(raw: bytes) -> list[dict]:
    req = PushRequest()
    req.ParseFromString(bytes(cramjam.snappy.decompress_raw(raw)))
    streams = []
    for s in req.streams:
        entries = [
            {
                "ts": e.timestamp.seconds * 1_000_000_000 + e.timestamp.nanos,
                "line": e.line,
                "structured_metadata": {p.name: p.value for p in e.structuredMetadata},
            }
            for e in s.entries
        ]
        streams.append({"labels": s.labels, "label_map": parse_labels(s.labels), "entries": entries})
    return streams


def decode_json(raw: bytes) -> list[dict]:
    doc = json.loads(raw)
    streams = []
    for s in doc["streams"]:
        labels = s["stream"]
        for k in labels:
            if not LABEL_NAME.fullmatch(k):
                raise ValueError(f"bad label name {k!r}")
        entries = [
            {"ts": int(v[0]), "line": v[1], "structured_metadata": v[2] if len(v) > 2 else {}} for v in s["values"]
        ]
        rendered = "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
        streams.append({"labels": rendered, "label_map": labels, "entries": entries})
    return streams


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.args = args
        self.requests = 0
        self.accepted = 0
        self.entries = 0
        self.out = open(args.out, "a", buffering=1) if args.out else None

    def stats(self):
        with self.lock:
            return {"requests": self.requests, "requests_accepted": self.accepted, "entries_accepted": self.entries}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: State

    def log_message(self, fmt, *a):
        if not self.state.args.quiet:
            sys.stderr.write("loki_receiver: " + fmt % a + "\n")

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/stats":
            self.answer(200, json.dumps(self.state.stats()).encode(), [("Content-Type", "application/json")])
        else:
            self.answer(404)

    def do_POST(self):
        st = self.state
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/loki/api/v1/push":
            self.answer(404, b"404 page not found")
            return
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        gz = (self.headers.get("Content-Encoding") or "").lower() == "gzip"
        with st.lock:
            st.requests += 1
            seq = st.requests
        record = {
            "seq": seq,
            "encoding": "json" if ctype == "application/json" else "protobuf",
            "gzip": gz,
            "tenant": self.headers.get("X-Scope-OrgID"),
            "authorization": self.headers.get("Authorization"),
        }
        try:
            body = gzip.decompress(raw) if gz else raw
            streams = decode_json(body) if ctype == "application/json" else decode_protobuf(body)
        except Exception as e:  # noqa: BLE001 - any decode failure is the client's fault
            record.update(status=400, error=str(e))
            self.write(record)
            self.answer(400, f"loki_receiver: cannot decode push: {e}".encode())
            return
        record["streams"] = streams
        if seq <= st.args.fail_first:
            record["status"] = st.args.fail_status
            self.write(record)
            headers = [("Retry-After", st.args.retry_after)] if st.args.retry_after else []
            self.answer(st.args.fail_status, st.args.fail_message.encode(), headers)
            return
        record["status"] = 204
        with st.lock:
            st.accepted += 1
            st.entries += sum(len(s["entries"]) for s in streams)
        self.write(record)
        self.answer(204)

    def write(self, record):
        if self.state.out:
            with self.state.lock:
                self.state.out.write(json.dumps(record, sort_keys=True) + "\n")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="JSON lines, one per push")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--fail-status", type=int, default=429)
    p.add_argument("--fail-message", default="Ingestion rate limit exceeded")
    p.add_argument("--retry-after", default="")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args()

    Handler.state = State(args)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"READY http={server.server_address[1]}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
