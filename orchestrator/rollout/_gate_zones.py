"""Pure zone budgets: `max_errors_per_zone` counted per zone, and when a zone breaches.

A zone's threshold is `max_errors_per_zone` of the zone's instances IN THIS WAVE (a count,
or a percentage floored with `Amount.floor_of`, as `max_errors` is), computed once when
the wave starts and never recomputed. What counts is exactly what counts against
`max_errors` (`_gates.counts_against`); a zone breaches at its (T+1)-th counted error.
`ZoneBudgets` keeps one wave's counts; the run keeps the set of zones stopped so far:
a zone stopped in an earlier wave is listed with the verdict `stopped` and nothing of it
is sent (its size in the wave is still shown, so the numbers add up). Nothing here does
I/O or awaits.

What a breach does is the runner's: with `order: spread` the zone stops (no more of its
instances are sent, in this wave or later ones; with `on_breach: stop_in_flight` its
running instances are sent StopInvocation) and the other zones go on; with `order:
by_zone` the breach is the wave's (the rollout halts), GCP's disruption budget.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING

from orchestrator.rollout._gates import (
    ZoneCount,
    ZoneVerdict,
    breaches,
    counts_against,
    threshold_of,
)
from orchestrator.rollout._outcome import Outcome
from orchestrator.rollout._results import Halt

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from orchestrator.plan._model import Amount


def zone_sizes(zones: Iterable[str]) -> dict[str, int]:
    """Instances per zone, zones sorted by name (the order every report shows)."""
    counted = Counter(zones)
    return {zone: counted[zone] for zone in sorted(counted)}


class ZoneBudgets:
    """One wave's counted errors per zone; tells the moment a zone breaches.

    `zone_of` maps every instance of the wave to its zone; `stopped` are the zones an
    earlier wave stopped (never counted again, never breaching again). Each instance is
    counted once, the first time its outcome is known, as `WaveGate` counts it.
    """

    def __init__(
        self,
        zone_of: Mapping[str, str],
        max_errors: Amount | None,
        *,
        count_undelivered: bool,
        stopped: Iterable[str] = (),
    ) -> None:
        self._zone_of = dict(zone_of)
        self.max_errors = max_errors
        self.sizes = zone_sizes(self._zone_of.values())
        # Frozen now, from each zone's share of the wave, never recomputed.
        self.thresholds = {zone: threshold_of(max_errors, n) for zone, n in self.sizes.items()}
        self._count_undelivered = count_undelivered
        self.stopped_before = frozenset(stopped)
        self._failed: Counter[str] = Counter()
        self._undelivered: Counter[str] = Counter()
        self._seen: set[str] = set()
        self.breached: dict[str, ZoneCount] = {}  # zone → its numbers at the breach

    def zone(self, instance_id: str) -> str:
        """The zone of one instance of the wave ("" if it is not one)."""
        return self._zone_of.get(instance_id, "")

    def errors(self, zone: str) -> int:
        """Counted errors of `zone` so far."""
        undelivered = self._undelivered[zone] if self._count_undelivered else 0
        return self._failed[zone] + undelivered

    def observe(self, instance_id: str, outcome: Outcome) -> ZoneCount | None:
        """Count one instance's outcome; returns the zone's numbers when this outcome
        breaches its zone (the first time only), else None."""
        zone = self._zone_of.get(instance_id)
        if zone is None or zone in self.stopped_before or instance_id in self._seen:
            return None
        self._seen.add(instance_id)
        if outcome is Outcome.FAILED:
            self._failed[zone] += 1
        elif outcome is Outcome.UNDELIVERED:
            self._undelivered[zone] += 1
        if not counts_against(outcome, count_undelivered=self._count_undelivered):
            return None
        if zone in self.breached or not breaches(self.errors(zone), self.thresholds[zone]):
            return None
        self.breached[zone] = replace(self.count(zone), verdict=ZoneVerdict.BREACH)
        return self.breached[zone]

    def count(self, zone: str) -> ZoneCount:
        """`zone`'s numbers as they stand (its breach, once it breached)."""
        if zone in self.breached:
            return self.breached[zone]
        verdict = ZoneVerdict.STOPPED if zone in self.stopped_before else ZoneVerdict.PASS
        return ZoneCount(
            zone=zone,
            size=self.sizes[zone],
            max_errors=self.max_errors,
            threshold=self.thresholds[zone],
            errors=self.errors(zone),
            verdict=verdict,
            failed=self._failed[zone],
            undelivered=self._undelivered[zone],
        )

    def counts(self) -> tuple[ZoneCount, ...]:
        """Every zone of the wave, by name."""
        return tuple(self.count(zone) for zone in self.sizes)

    def stopped(self) -> frozenset[str]:
        """Zones stopped so far: before this wave, and by it."""
        return self.stopped_before | frozenset(self.breached)


def zone_stopped_reason(wave: str, count: ZoneCount) -> str:
    """Why an instance of a stopped zone was never sent (its NOT_SENT result)."""
    return f"not sent: zone {count.zone} stopped in wave {wave} ({count.summary()})"


def zone_halt(stops: Mapping[str, tuple[str, ZoneCount]]) -> Halt:
    """The halt of a run whose waves all ran but some zones stopped (`order: spread`):
    not a success (exit code 3, as a breach), and the message names every zone."""
    parts = [f"{count.summary()} in wave {wave}" for wave, count in stops.values()]
    first = next(iter(stops.values()))[0]
    noun = "zone" if len(stops) == 1 else "zones"
    message = f"{noun} {', '.join(stops)} stopped: " + "; ".join(parts)
    return Halt("zone_breach", message=message, wave=first)
