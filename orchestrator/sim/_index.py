"""The fleet's instances indexed for DescribeInstances: a filtered query without a scan.

A listing of N instances in pages of 100 used to filter the whole fleet for every page
(O(N) a page, O(N²) a listing). The index is built once, when the simulation starts: each
instance's position in the fleet (the order every answer lists instances in), and the
positions of each zone, status, instance type, tag pair and tag key. A query intersects
the sets of its filters, smallest first, and keeps its sorted result in a small LRU keyed
by the normalised query, so the NextToken / PageNumber pages that follow only slice it.

The fleet is fixed for a simulation's life: `InstanceSpec` is frozen and nothing adds,
removes or replaces an instance (their status included), so the index and the kept
results never go stale. A simulator that models state changes must rebuild both.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from orchestrator.sim._fleet import InstanceSpec

# Queries whose results are kept: a listing's pages repeat one query, and a handful of
# listings may interleave (the targets step, `orchestrator instances`, a test's).
KEPT_QUERIES: Final = 64


@dataclass(frozen=True, slots=True)
class InstanceQuery:
    """A DescribeInstances filter, normalised: equal filters are equal queries.

    `instance_ids`: None when not given (an empty tuple matches nothing). `tags`: sorted
    (key, value) pairs, value None for "any value". `name`: the InstanceName pattern
    (`*` a wildcard), "" when not given.
    """

    instance_ids: tuple[str, ...] | None = None
    status: str = ""
    zone: str = ""
    instance_type: str = ""
    name: str = ""
    tags: tuple[tuple[str, str | None], ...] = ()


class FleetIndex:
    """Positions of the fleet's instances by what DescribeInstances filters on."""

    def __init__(self, instances: Iterable[InstanceSpec]) -> None:
        self._instances: tuple[InstanceSpec, ...] = tuple(instances)
        self._position = {inst.instance_id: n for n, inst in enumerate(self._instances)}
        self._by_zone: dict[str, set[int]] = {}
        self._by_status: dict[str, set[int]] = {}
        self._by_type: dict[str, set[int]] = {}
        self._by_tag: dict[tuple[str, str], set[int]] = {}
        self._by_tag_key: dict[str, set[int]] = {}
        for n, inst in enumerate(self._instances):
            self._by_zone.setdefault(inst.zone, set()).add(n)
            self._by_status.setdefault(inst.status, set()).add(n)
            self._by_type.setdefault(inst.instance_type, set()).add(n)
            for key, value in inst.tags:
                self._by_tag.setdefault((key, value), set()).add(n)
                self._by_tag_key.setdefault(key, set()).add(n)
        self._kept: OrderedDict[InstanceQuery, tuple[InstanceSpec, ...]] = OrderedDict()

    def find(self, query: InstanceQuery) -> Sequence[InstanceSpec]:
        """The instances matching every filter of `query`, in fleet order."""
        kept = self._kept.get(query)
        if kept is None:
            kept = self._find(query)
            self._kept[query] = kept
            if len(self._kept) > KEPT_QUERIES:
                self._kept.popitem(last=False)
        else:
            self._kept.move_to_end(query)
        return kept

    def _find(self, query: InstanceQuery) -> tuple[InstanceSpec, ...]:
        sets = self._sets(query)
        if sets is None:  # no indexed filter: the whole fleet
            positions: Iterable[int] = range(len(self._instances))
        else:
            sets.sort(key=len)
            found = set(sets[0])
            for other in sets[1:]:
                found &= other
            positions = sorted(found)
        chosen = (self._instances[n] for n in positions)
        if query.name:
            pattern = re.compile("^" + ".*".join(map(re.escape, query.name.split("*"))) + "$")
            return tuple(inst for inst in chosen if pattern.match(inst.name))
        return tuple(chosen)

    def _sets(self, query: InstanceQuery) -> list[set[int]] | None:
        """One set of positions per indexed filter of `query`; None when it has none."""
        sets: list[set[int]] = []
        if query.instance_ids is not None:
            sets.append({self._position[i] for i in query.instance_ids if i in self._position})
        for value, index in (
            (query.status, self._by_status),
            (query.zone, self._by_zone),
            (query.instance_type, self._by_type),
        ):
            if value:
                sets.append(index.get(value, set()))
        for key, tag_value in query.tags:
            if tag_value is None:
                sets.append(self._by_tag_key.get(key, set()))
            else:
                sets.append(self._by_tag.get((key, tag_value), set()))
        return sets or None
