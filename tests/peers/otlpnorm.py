"""Normalization of OTLP export requests into comparable "items".

Both sides of an end-to-end test use this module: the sender (send_otlp.py)
normalizes what the SDK encoded, the reference receiver normalizes what it
decoded off the wire, and compare.py diffs the two as multisets.

One item is one span, one metric data point or one log record, flattened
together with the resource and scope it was under. Flattening makes the
comparison independent of how a pipeline regroups data (a batch processor may
merge or split ResourceSpans / ScopeSpans freely); what must survive is each
item with its own resource, scope, identity and attributes.

Values keep their OTLP type (`{"int": 1}` vs `{"double": 1.0}`) so a pipeline
that turns an int into a double is caught.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Iterable

SIGNALS = ("traces", "metrics", "logs")


# ---------------------------------------------------------------------------
# Values


def any_value(v) -> Any:
    """An OTLP AnyValue as a one-key dict naming its type; None when unset."""
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "string_value":
        return {"string": v.string_value}
    if kind == "int_value":
        return {"int": int(v.int_value)}
    if kind == "double_value":
        return {"double": float(v.double_value)}
    if kind == "bool_value":
        return {"bool": bool(v.bool_value)}
    if kind == "bytes_value":
        return {"bytes": v.bytes_value.hex()}
    if kind == "array_value":
        return {"array": [any_value(x) for x in v.array_value.values]}
    if kind == "kvlist_value":
        return {"kvlist": attributes(v.kvlist_value.values)}
    raise ValueError(f"unknown AnyValue kind {kind}")


def attributes(kvs) -> dict:
    """Repeated KeyValue as a dict sorted by key (JSON dumps it sorted too)."""
    return {kv.key: any_value(kv.value) for kv in sorted(kvs, key=lambda kv: kv.key)}


def hex_id(b: bytes) -> str:
    return b.hex() if b else ""


def _resource(r) -> dict:
    return {"attributes": attributes(r.attributes)}


def _scope(s) -> dict:
    return {"name": s.name, "version": s.version, "attributes": attributes(s.attributes)}


# ---------------------------------------------------------------------------
# Requests → items


def trace_items(req) -> list[dict]:
    """ExportTraceServiceRequest → one item per span."""
    out = []
    for rs in req.resource_spans:
        res = _resource(rs.resource)
        for ss in rs.scope_spans:
            scope = _scope(ss.scope)
            for sp in ss.spans:
                out.append(
                    {
                        "signal": "traces",
                        "resource": res,
                        "scope": scope,
                        "name": sp.name,
                        "kind": int(sp.kind),
                        "trace_id": hex_id(sp.trace_id),
                        "span_id": hex_id(sp.span_id),
                        "parent_span_id": hex_id(sp.parent_span_id),
                        "trace_state": sp.trace_state,
                        "start_time_unix_nano": int(sp.start_time_unix_nano),
                        "end_time_unix_nano": int(sp.end_time_unix_nano),
                        "attributes": attributes(sp.attributes),
                        "events": [
                            {
                                "name": e.name,
                                "time_unix_nano": int(e.time_unix_nano),
                                "attributes": attributes(e.attributes),
                            }
                            for e in sp.events
                        ],
                        "links": [
                            {
                                "trace_id": hex_id(l.trace_id),
                                "span_id": hex_id(l.span_id),
                                "attributes": attributes(l.attributes),
                            }
                            for l in sp.links
                        ],
                        "status": {"code": int(sp.status.code), "message": sp.status.message},
                    }
                )
    return out


def _number_point(p) -> dict:
    kind = p.WhichOneof("value")
    value = {"int": int(p.as_int)} if kind == "as_int" else {"double": float(p.as_double)}
    return {"value": value}


def metric_items(req) -> list[dict]:
    """ExportMetricsServiceRequest → one item per data point (exemplars are ignored)."""
    out = []
    for rm in req.resource_metrics:
        res = _resource(rm.resource)
        for sm in rm.scope_metrics:
            scope = _scope(sm.scope)
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                data = getattr(m, kind)
                base = {
                    "signal": "metrics",
                    "resource": res,
                    "scope": scope,
                    "name": m.name,
                    "description": m.description,
                    "unit": m.unit,
                    "type": kind,
                }
                if kind == "sum":
                    base["monotonic"] = bool(data.is_monotonic)
                if kind in ("sum", "histogram", "exponential_histogram"):
                    base["temporality"] = int(data.aggregation_temporality)
                for p in data.data_points:
                    item = dict(base)
                    item["attributes"] = attributes(p.attributes)
                    item["start_time_unix_nano"] = int(p.start_time_unix_nano)
                    item["time_unix_nano"] = int(p.time_unix_nano)
                    if kind in ("sum", "gauge"):
                        item.update(_number_point(p))
                    elif kind == "histogram":
                        item["count"] = int(p.count)
                        item["sum"] = float(p.sum) if p.HasField("sum") else None
                        item["bucket_counts"] = [int(c) for c in p.bucket_counts]
                        item["explicit_bounds"] = [float(b) for b in p.explicit_bounds]
                        item["min"] = float(p.min) if p.HasField("min") else None
                        item["max"] = float(p.max) if p.HasField("max") else None
                    elif kind == "exponential_histogram":
                        item["count"] = int(p.count)
                        item["sum"] = float(p.sum) if p.HasField("sum") else None
                        item["scale"] = int(p.scale)
                        item["zero_count"] = int(p.zero_count)
                        item["positive"] = [int(p.positive.offset), [int(c) for c in p.positive.bucket_counts]]
                        item["negative"] = [int(p.negative.offset), [int(c) for c in p.negative.bucket_counts]]
                    elif kind == "summary":
                        item["count"] = int(p.count)
                        item["sum"] = float(p.sum)
                        item["quantiles"] = [[q.quantile, q.value] for q in p.quantile_values]
                    out.append(item)
    return out


def log_items(req) -> list[dict]:
    """ExportLogsServiceRequest → one item per log record."""
    out = []
    for rl in req.resource_logs:
        res = _resource(rl.resource)
        for sl in rl.scope_logs:
            scope = _scope(sl.scope)
            for lr in sl.log_records:
                out.append(
                    {
                        "signal": "logs",
                        "resource": res,
                        "scope": scope,
                        "time_unix_nano": int(lr.time_unix_nano),
                        "observed_time_unix_nano": int(lr.observed_time_unix_nano),
                        "severity_number": int(lr.severity_number),
                        "severity_text": lr.severity_text,
                        "body": any_value(lr.body),
                        "attributes": attributes(lr.attributes),
                        "trace_id": hex_id(lr.trace_id),
                        "span_id": hex_id(lr.span_id),
                        "flags": int(lr.flags),
                        "event_name": getattr(lr, "event_name", ""),
                    }
                )
    return out


ITEMS = {"traces": trace_items, "metrics": metric_items, "logs": log_items}


# ---------------------------------------------------------------------------
# Wire decoding (shared by the receiver and tests)


def request_class(signal: str):
    """The protobuf Export*ServiceRequest class for a signal."""
    if signal == "traces":
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        return ExportTraceServiceRequest
    if signal == "metrics":
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

        return ExportMetricsServiceRequest
    if signal == "logs":
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

        return ExportLogsServiceRequest
    raise ValueError(signal)


# Fields that OTLP/JSON writes as hex strings where proto3 JSON would use base64.
_HEX_ID_FIELDS = {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}


def _hex_ids_to_base64(obj):
    """OTLP/JSON encodes trace and span IDs as hex (spec), protobuf's JSON
    mapping expects base64: rewrite them in place before ParseDict."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in _HEX_ID_FIELDS and isinstance(v, str):
                obj[k] = base64.b64encode(bytes.fromhex(v)).decode()
            else:
                _hex_ids_to_base64(v)
    elif isinstance(obj, list):
        for v in obj:
            _hex_ids_to_base64(v)
    return obj


def decode_json(signal: str, body: bytes):
    """An OTLP/JSON body → the Export*ServiceRequest message."""
    from google.protobuf import json_format

    obj = _hex_ids_to_base64(json.loads(body))
    return json_format.ParseDict(obj, request_class(signal)(), ignore_unknown_fields=True)


# ---------------------------------------------------------------------------
# Comparison


def canonical(item: dict, ignore: Iterable[str] = ()) -> str:
    """A stable string key of an item, with the named top-level fields removed."""
    ignore = set(ignore)
    return json.dumps({k: v for k, v in item.items() if k not in ignore}, sort_keys=True, separators=(",", ":"))


def compare_items(expected: list[dict], received: list[dict], ignore=(), at_least_once=False) -> list[str]:
    """Multiset comparison. Returns human-readable problems; empty means equal.

    With at_least_once, duplicates of expected items are allowed (a retry
    after a timeout may deliver twice) but every expected item must be there
    and nothing unexpected may be.
    """
    from collections import Counter

    exp = Counter(canonical(i, ignore) for i in expected)
    got = Counter(canonical(i, ignore) for i in received)
    problems = []
    missing = exp - got
    extra = got - exp
    if at_least_once:
        extra = Counter({k: n for k, n in extra.items() if k not in exp})
    # Explaining a difference scans the other side, so only the first few get it.
    for i, (key, n) in enumerate(sorted(missing.items())):
        problems.append(f"MISSING x{n}: {_short(key, received if i < 5 else [], ignore)}")
    for i, (key, n) in enumerate(sorted(extra.items())):
        problems.append(f"UNEXPECTED x{n}: {_short(key, expected if i < 5 else [], ignore)}")
    return problems


def _short(key: str, others: list[dict], ignore) -> str:
    """The item, plus the fields that differ from the closest item on the other side."""
    item = json.loads(key)
    best, best_diff = None, None
    for o in others:
        o = {k: v for k, v in o.items() if k not in set(ignore)}
        diff = [k for k in set(item) | set(o) if item.get(k) != o.get(k)]
        if best_diff is None or len(diff) < len(best_diff):
            best, best_diff = o, diff
            if len(diff) <= 1:
                break
    text = key if len(key) < 300 else key[:300] + "…"
    if best is not None and best_diff:
        parts = [
            f"{k}: this={json.dumps(item.get(k), sort_keys=True)[:160]} closest={json.dumps(best.get(k), sort_keys=True)[:160]}"
            for k in sorted(best_diff)
        ]
        text += "\n      differs from closest in " + "; ".join(parts)
    return text
