"""Request throttling as the real endpoint applies it: a token bucket per (action, access
key id), refilled on the injected `Clock`, so a test that advances its clock by hand sees
exact, repeatable answers. A request that finds its bucket empty is refused with the
ECS code `Throttling` (HTTP 400).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.sim._protocol import SimApiError

if TYPE_CHECKING:
    from orchestrator.clock import Clock
    from orchestrator.sim._spec import ThrottleSpec


@dataclass(slots=True)
class _Bucket:
    rate: float
    capacity: float
    tokens: float
    updated: float


class Throttle:
    """Token buckets per (action, access key id), from a `ThrottleSpec`."""

    def __init__(self, spec: ThrottleSpec, clock: Clock) -> None:
        self._clock = clock
        self._spec = spec
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    @property
    def spec(self) -> ThrottleSpec:
        """The limits in force."""
        return self._spec

    def set(self, spec: ThrottleSpec) -> None:
        """Apply new limits from now on; every bucket starts full again."""
        self._spec = spec
        self._buckets.clear()

    def admit(self, action: str, access_key_id: str) -> bool:
        """Take one token for this call; False when the bucket is empty."""
        rate = self._spec.per_action.get(action, self._spec.qps)
        if rate <= 0:
            return True
        now = self._clock.monotonic()
        bucket = self._buckets.get((action, access_key_id))
        if bucket is None or bucket.rate != rate:
            capacity = self._spec.burst if self._spec.burst > 0 else max(rate, 1.0)
            bucket = _Bucket(rate=rate, capacity=capacity, tokens=capacity, updated=now)
            self._buckets[action, access_key_id] = bucket
        elapsed = max(now - bucket.updated, 0.0)
        bucket.tokens = min(bucket.capacity, bucket.tokens + elapsed * bucket.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        return False

    def check(self, action: str, access_key_id: str) -> None:
        """Take one token, or refuse the call as the real service does."""
        if not self.admit(action, access_key_id):
            raise SimApiError("Throttling")
