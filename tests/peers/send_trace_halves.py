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

import os
import sys

from opentelemetry.trace import set_span_in_context

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from send_common import Sender, parser  # noqa: E402


def main() -> int:
    p = parser(__doc__, traces=5, spans=6, seed=23)
    p.add_argument("--batch-size", type=int, default=4, help="spans per export")
    args = p.parse_args()
    if args.spans < 3:
        p.error("--spans must be at least 3 (a root and two children, one per half)")

    sender = Sender(
        args.endpoint, "halves", args.seed, batch_size=args.batch_size, queue_size=max(2048, args.traces * args.spans * 2)
    )
    tracer = sender.tracer("sluice.halves")

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
    flushed_first = sender.flush()
    print(f"FIRST_HALF_SENT spans={first * args.traces}", flush=True)

    sys.stdin.readline()
    for root, kids in open_spans:
        for kid in kids[first:]:
            kid.end()
        root.end()
    flushed_second = sender.flush()
    return sender.finish(args.manifest, manifest, flushed_first and flushed_second, args.traces * args.spans)


if __name__ == "__main__":
    sys.exit(main())
