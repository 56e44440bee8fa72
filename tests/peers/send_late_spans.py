#!/usr/bin/env python3
"""Send traces whose last span comes late, with the OpenTelemetry Python SDK.

  send_late_spans.py --endpoint 127.0.0.1:4317 --traces 3000 --spans 10 \
      --error-every 10 --late-every 10 --late-delay 1 --manifest m.json

Trace t has a root `late-root-t` and --spans - 1 children `late-child-t-c`.
Every trace whose index is a multiple of --late-every keeps its last child
open: all other spans end and are flushed first (the SDK exports a span when
it ends), then the script prints `EARLY_SENT spans=N` and, after
--late-delay seconds (or, with --wait-stdin, once a line arrives on stdin),
ends the late children, flushes, and prints `SENT spans=N OK|FAILED`.

Traces whose index is a multiple of --error-every have one ERROR span: the
late child, or with --error-early the first child (sent early).

The manifest maps each trace ID (hex) to {"spans": S, "error": bool, "late": bool}.
Exit status is 0 only if every export succeeded and both flushes completed.
"""

from __future__ import annotations

import os
import sys
import time

from opentelemetry.trace import Status, StatusCode, set_span_in_context

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from send_common import Sender, parser  # noqa: E402


def main() -> int:
    p = parser(__doc__, traces=3000, spans=10, seed=29)
    p.add_argument("--error-every", type=int, default=10)
    p.add_argument("--error-early", action="store_true", help="the error span is sent early, not late")
    p.add_argument("--late-every", type=int, default=10)
    p.add_argument("--late-delay", type=float, default=1.0, help="seconds between the early and the late spans")
    p.add_argument("--wait-stdin", action="store_true", help="send the late spans once a line arrives on stdin")
    args = p.parse_args()
    if args.spans < 3:
        p.error("--spans must be at least 3")

    sender = Sender(args.endpoint, "late", args.seed, batch_size=512, queue_size=args.traces * args.spans * 2)
    tracer = sender.tracer("sluice.late")

    manifest = {}
    late = []
    early_spans = 0
    for t in range(args.traces):
        error = t % args.error_every == 0
        is_late = t % args.late_every == 0
        root = tracer.start_span(f"late-root-{t}", attributes={"late.trace": t})
        ctx = set_span_in_context(root)
        kids = [tracer.start_span(f"late-child-{t}-{c}", context=ctx) for c in range(args.spans - 1)]
        if error:
            kids[0 if args.error_early else -1].set_status(Status(StatusCode.ERROR, "failed"))
        held = kids[-1] if is_late else None
        for kid in kids:
            if kid is not held:
                kid.end()
                early_spans += 1
        root.end()
        early_spans += 1
        if held is not None:
            late.append(held)
        manifest[format(root.get_span_context().trace_id, "032x")] = {
            "spans": args.spans,
            "error": error,
            "late": is_late,
        }
    flushed_early = sender.flush()
    print(f"EARLY_SENT spans={early_spans}", flush=True)

    if args.wait_stdin:
        sys.stdin.readline()
    else:
        time.sleep(args.late_delay)
    for span in late:
        span.end()
    flushed_late = sender.flush()
    return sender.finish(args.manifest, manifest, flushed_early and flushed_late, early_spans + len(late))


if __name__ == "__main__":
    sys.exit(main())
