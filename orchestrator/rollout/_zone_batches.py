"""Pure: a wave's batches cut zone by zone, and its per-zone execution caps.

When a plan has a zone budget (`max_errors_per_zone` or `max_concurrency_per_zone` in
any wave), every batch of the run holds the instances of ONE zone: a zone that stops
then stops whole batches (no RunCommand ever changes its InstanceId list, so a batch's
ClientToken always names the same request, on a retry and on a resume), its in-flight
instances are exactly those of its batches, and a batch never holds more of a zone than
the zone may run at once. The batches keep the wave's order: each zone's instances, in
the order the wave has them, cut into runs of at most the batch size and the zone's
cap; the batches are numbered by where their first instance stands in the wave, so
under `order: spread` the zones still take turns batch by batch. Nothing here does I/O.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from orchestrator.rollout._batches import Batch

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from orchestrator.ecs import Instance
    from orchestrator.plan._model import Amount


def zone_caps(amount: Amount | None, instances: Sequence[Instance]) -> dict[str, int]:
    """Each zone's cap in a wave (`max_concurrency_per_zone`: a count, or a percentage of
    the zone's instances in the wave, rounded up, at least 1); {} when there is none."""
    if amount is None:
        return {}
    sizes: defaultdict[str, int] = defaultdict(int)
    for instance in instances:
        sizes[instance.zone_id] += 1
    return {zone: max(1, amount.of(size)) for zone, size in sorted(sizes.items())}


def split_by_zone(
    wave: int, instances: Sequence[Instance], batch_size: int, caps: Mapping[str, int]
) -> tuple[Batch, ...]:
    """`instances` cut into batches of one zone each, at most `batch_size` per batch and
    no more than the zone's cap (`caps`, when it has one), in the order of each batch's
    first instance in `instances`."""
    by_zone: defaultdict[str, list[tuple[int, Instance]]] = defaultdict(list)
    for position, instance in enumerate(instances):
        by_zone[instance.zone_id].append((position, instance))
    runs: list[tuple[int, tuple[Instance, ...]]] = []
    for zone, members in by_zone.items():
        size = min(batch_size, caps.get(zone, batch_size))
        if size < 1:
            raise ValueError("batch_size must be >= 1")
        for start in range(0, len(members), size):
            chunk = members[start : start + size]
            runs.append((chunk[0][0], tuple(instance for _, instance in chunk)))
    runs.sort(key=lambda run: run[0])
    return tuple(Batch(wave, number, chunk) for number, (_, chunk) in enumerate(runs))
