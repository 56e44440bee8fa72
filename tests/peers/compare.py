#!/usr/bin/env python3
"""Compare what a sender meant to send with what the reference receiver got.

  compare.py --expect a.json [--expect b.json ...] --received out.jsonl \
      [--ignore FIELD ...] [--at-least-once] [--signal traces]

Expect files are {"signal", "items"} (send_otlp.py, send_json.mjs); the
received file is the reference receiver's JSON lines, of which only accepted
requests count. Items are compared as multisets (see otlpnorm). Prints a
diff and exits 1 on mismatch, 0 on a match.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import otlpnorm  # noqa: E402

MAX_PROBLEMS = 20


def load_expected(paths, signal=None) -> list[dict]:
    items = []
    for p in paths:
        with open(p) as f:
            doc = json.load(f)
        items += [i for i in doc["items"] if signal is None or i["signal"] == signal]
    return items


def load_received(path, signal=None) -> tuple[list[dict], int, int]:
    """Accepted items, plus the number of accepted and rejected requests."""
    items, accepted, rejected = [], 0, 0
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            req = json.loads(line)
            if signal is not None and req["signal"] != signal:
                continue
            if req["status"] == "accepted":
                accepted += 1
                items += req["items"]
            else:
                rejected += 1
    return items, accepted, rejected


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--expect", action="append", required=True)
    p.add_argument("--received", required=True)
    p.add_argument("--signal", choices=otlpnorm.SIGNALS)
    p.add_argument("--ignore", action="append", default=[], help="top-level item field to leave out")
    p.add_argument("--at-least-once", action="store_true", help="allow duplicates of expected items")
    args = p.parse_args()

    expected = load_expected(args.expect, args.signal)
    received, accepted, rejected = load_received(args.received, args.signal)
    problems = otlpnorm.compare_items(expected, received, args.ignore, args.at_least_once)
    print(
        f"compare: expected={len(expected)} received={len(received)} "
        f"(accepted requests={accepted}, rejected requests={rejected})"
    )
    if not problems:
        print("compare: MATCH")
        return 0
    for pr in problems[:MAX_PROBLEMS]:
        print("  " + pr)
    if len(problems) > MAX_PROBLEMS:
        print(f"  ... and {len(problems) - MAX_PROBLEMS} more")
    print(f"compare: MISMATCH ({len(problems)} distinct differences)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
