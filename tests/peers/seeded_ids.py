"""Deterministic trace and span IDs for the SDK senders (the SDK's own
generator is random), so a run can be repeated and its spans recognised."""

from __future__ import annotations

import random

from opentelemetry.sdk.trace.id_generator import IdGenerator


class SeededIds(IdGenerator):
    """IDs drawn from a `random.Random(seed)`; never 0 (an invalid ID)."""

    def __init__(self, seed):
        self.rng = random.Random(seed)

    def is_trace_id_random(self) -> bool:
        return True

    def generate_span_id(self):
        return self.rng.getrandbits(64) or 1

    def generate_trace_id(self):
        return self.rng.getrandbits(128) or 1
