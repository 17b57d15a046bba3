"""The order instances go out in, which decides which zones each wave and batch touches.

Waves and batches cut the ordered list front to back (`_batches.plan_waves`), so the
order alone decides how a rollout crosses zones. Two orders, both pure and deterministic
(zones sorted by name, instances by ID within a zone, whatever order they came in):

- `spread` (the plan's default, `order: spread`): zones interleaved in proportion to
  their sizes, so any stretch of the list, and therefore every wave and every batch,
  holds each zone's share give or take one instance. Instance k of a zone of n sits at
  position (k + 1/2) / n of the way through the run; sorting on that (exactly, with
  fractions; ties by zone name) is a smooth weighted round-robin: zones of 4, 4 and 2
  go out a b c a b a b c a b, not a b c a b c a b a b.
- `by_zone` (`order: by_zone`): one zone after another, as GCP OS Config's ZONE_BY_ZONE
  rollout does: the smallest zone first (a bad change hurts the least capacity there),
  ties broken alphabetically.
"""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from orchestrator.ecs import Instance


def _zones(instances: Sequence[Instance]) -> dict[str, list[Instance]]:
    """Instances by zone, zones sorted by name, each zone's instances sorted by ID."""
    grouped: defaultdict[str, list[Instance]] = defaultdict(list)
    for instance in instances:
        grouped[instance.zone_id].append(instance)
    return {zone: sorted(grouped[zone], key=lambda i: i.instance_id) for zone in sorted(grouped)}


def spread(instances: Sequence[Instance]) -> list[Instance]:
    """Zones interleaved in proportion to their sizes (see the module docstring)."""
    keyed = [
        (Fraction(2 * k + 1, 2 * len(members)), zone, instance)
        for zone, members in _zones(instances).items()
        for k, instance in enumerate(members)
    ]
    keyed.sort(key=lambda item: (item[0], item[1]))
    return [instance for _, _, instance in keyed]


def by_zone(instances: Sequence[Instance]) -> list[Instance]:
    """One zone after another: the smallest zone first, ties alphabetical."""
    zones = _zones(instances)
    ordered = sorted(zones, key=lambda zone: (len(zones[zone]), zone))
    return [instance for zone in ordered for instance in zones[zone]]


ORDERS: Final[dict[str, Callable[[Sequence[Instance]], list[Instance]]]] = {
    "spread": spread,
    "by_zone": by_zone,
}


def order_for(order: str) -> Callable[[Sequence[Instance]], list[Instance]]:
    """The function for a plan's `order` (`Plan.order`): `spread` or `by_zone`."""
    try:
        return ORDERS[order]
    except KeyError:
        raise ValueError(f"unknown order {order!r}: one of {', '.join(ORDERS)}") from None
