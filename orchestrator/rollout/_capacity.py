"""The caps on instances executing at once: `limits.max_concurrency` (or a wave's own),
and a wave's `max_concurrency_per_zone`.

An instance holds a slot from the moment its batch is about to be sent until the tracker
sees it done (or gives up on it); a batch waits until enough slots are free, in the
whole run and in each zone it touches. Slots are taken and given back per instance, so
each zone's count is exact whatever zones a batch mixes. Waiting is event-driven: every
release wakes the one waiter, which re-checks; nothing polls.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from orchestrator.ecs import Instance


def _check(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise ValueError("the concurrency cap must be >= 1")


class ExecutionSlots:
    """`limit` slots (None: no cap), and `zone_limits` per zone (a zone not named there
    has only the overall cap). `peak` is the most ever held at once, `zone_peak` the
    same per zone."""

    def __init__(self, limit: int | None, zone_limits: Mapping[str, int] | None = None) -> None:
        _check(limit)
        self.limit = limit
        self.zone_limits: dict[str, int] = dict(zone_limits or {})
        self.in_use = 0
        self.peak = 0
        self.zone_in_use: Counter[str] = Counter()
        self.zone_peak: Counter[str] = Counter()
        self._released = anyio.Event()

    def __repr__(self) -> str:
        return f"<ExecutionSlots {self.in_use}/{self.limit if self.limit is not None else '-'}>"

    def resize(self, limit: int | None, zone_limits: Mapping[str, int] | None = None) -> None:
        """New caps, between waves (a wave's `max_concurrency` overrides the plan's; its
        `max_concurrency_per_zone` is its own)."""
        _check(limit)
        for zone_limit in (zone_limits or {}).values():
            _check(zone_limit)
        self.limit = limit
        self.zone_limits = dict(zone_limits or {})
        self._wake()  # a waiter re-checks against the new caps

    def _fits(self, count: int, zones: Counter[str]) -> bool:
        if self.limit is not None and self.in_use + count > self.limit:
            return False
        return all(
            self.zone_in_use[zone] + n <= self.zone_limits[zone]
            for zone, n in zones.items()
            if zone in self.zone_limits
        )

    async def acquire(self, instances: Sequence[Instance]) -> None:
        """Wait until `instances` may execute, then take their slots."""
        zones = Counter(instance.zone_id for instance in instances)
        if self.limit is not None and len(instances) > self.limit:
            raise ValueError(f"a batch of {len(instances)} cannot fit under a cap of {self.limit}")
        for zone, n in zones.items():
            if zone in self.zone_limits and n > self.zone_limits[zone]:
                raise ValueError(
                    f"a batch of {n} in zone {zone} cannot fit under its cap of "
                    f"{self.zone_limits[zone]}"
                )
        if not self.limit and not self.zone_limits:
            await anyio.lowlevel.checkpoint()
        while not self._fits(len(instances), zones):
            released = self._released
            await released.wait()
        self._hold(zones)

    def take(self, instances: Sequence[Instance]) -> None:
        """Take the slots of `instances` at once, over the caps if need be: for instances
        already executing (an earlier attempt of the run sent them), which do hold
        capacity."""
        self._hold(Counter(instance.zone_id for instance in instances))

    def _hold(self, zones: Counter[str]) -> None:
        self.in_use += zones.total()
        self.peak = max(self.peak, self.in_use)
        for zone, n in zones.items():
            self.zone_in_use[zone] += n
            self.zone_peak[zone] = max(self.zone_peak[zone], self.zone_in_use[zone])

    def release(self, instances: Sequence[Instance]) -> None:
        """Give the slots of `instances` back (done, refused, or never sent)."""
        if len(instances) > self.in_use:
            raise ValueError("released more slots than were taken")
        self.in_use -= len(instances)
        for instance in instances:
            self.zone_in_use[instance.zone_id] -= 1
        self._wake()

    def _wake(self) -> None:
        released, self._released = self._released, anyio.Event()
        released.set()
