"""The instances a tag selection matches, listed as several NextToken chains at once.

One chain of DescribeInstances pages takes pages times the round trip, however high the
Describe rate (docs/performance.md, "The tag listing"). Pages of one chain cannot be
asked at once, and PageNumber pages over a changing fleet can skip a live instance silently
(`targets.gather`). So a large selection is split into one chain per zone (`ZoneId` is
a DescribeInstances filter), each a consistent NextToken chain of its own, all in the
air at once under the client's rate limiter.

The rule (`list_tagged`):

1. Ask the first page of the unsplit chain. Its TotalCount is only a hint (the API
   calls it meaningless on a NextToken page: `ecs/_listing.py`), enough to decide.
2. At most `SPLIT_ABOVE_PAGES` pages left (or no next page): go on with the chain.
   Splitting costs DescribeZones, a count and a part-filled page per zone, about what
   the chain's own round trips cost at that size (3 zones, ~35 ms a page, 100/s), so a
   small selection never pays for it and makes exactly the calls it made before.
3. More left: DescribeZones and the count (a PageNumber page of one instance, whose
   TotalCount is the count) side by side, then one chain per listed zone. The first
   page's instances are kept; an instance listed twice is kept once, as last listed.
4. The split is kept only if it provably covers the selection: every zone the first
   page shows is listed, each zone's chain returned only its zone, and the distinct
   instances found equal the count. A zone DescribeZones leaves out (the list can be
   incomplete: a zone closed to new purchases may still hold instances) or a fleet that
   changed while it was listed breaks the equality. Then the selection is listed again
   as one chain from its start (correct, slower) and the reason is logged; so it is
   when DescribeZones itself fails (a RAM policy written before it was needed).

What the check cannot see: a zone left out AND as many instances created elsewhere
while listing, none of the left-out zone's on the first page. That needs two rare
events at once; the single chain it replaces has no check at all across its pages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import anyio
import structlog

from orchestrator import api
from orchestrator.ecs import PATIENT_READS
from orchestrator.errors import ApiError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Mapping

    from orchestrator.ecs import EcsClient, Instance, InstancesPage

_log = structlog.get_logger(__name__)

# Split only when the first page's TotalCount says more pages than this remain (rule 2).
SPLIT_ABOVE_PAGES: Final = 4
# Zone chains in the air at once; the rate limiter paces their pages.
CHAINS_AT_ONCE: Final = 8


async def list_tagged(
    client: EcsClient, tags: Mapping[str, str], offer: Callable[[Instance], None]
) -> list[Instance]:
    """Every instance carrying all of `tags`, each handed to `offer` as it is listed
    (one may be offered twice: by the split, then by the chain it falls back to)."""
    first = await client.first_instances_page(tags, retry=PATIENT_READS)
    for instance in first.items:
        offer(instance)
    if not first.next_token:
        return list(first.items)
    left = (first.total_count or 0) - len(first.items)
    if left <= SPLIT_ABOVE_PAGES * api.DESCRIBE_INSTANCES_MAX_RESULTS:
        rest = client.describe_instances(tags=tags, retry=PATIENT_READS, after=first.next_token)
        return [*first.items, *[i async for i in _offered(rest, offer)]]
    found, why_not = await _split(client, tags, first, offer)
    if not why_not:
        return found
    _log.warning("targets.zone_split_fallback", reason=why_not, found=len(found))
    chain = client.describe_instances(tags=tags, retry=PATIENT_READS)
    return [i async for i in _offered(chain, offer)]


async def _offered(
    listing: AsyncIterator[Instance], offer: Callable[[Instance], None]
) -> AsyncIterator[Instance]:
    async for instance in listing:
        offer(instance)
        yield instance


async def _split(
    client: EcsClient,
    tags: Mapping[str, str],
    first: InstancesPage,
    offer: Callable[[Instance], None],
) -> tuple[list[Instance], str]:
    """The selection listed zone by zone, and why that does not cover it ("" if it does)."""
    count: int | None = None
    chains: dict[str, list[Instance]] = {}

    async def ask_count() -> None:
        nonlocal count
        count = await client.count_instances(tags, retry=PATIENT_READS)

    async def list_zone(zone_id: str, into: list[Instance], slots: anyio.CapacityLimiter) -> None:
        async with slots:
            listing = client.describe_instances(tags=tags, zone_id=zone_id, retry=PATIENT_READS)
            into.extend([i async for i in _offered(listing, offer)])

    async with anyio.create_task_group() as group:
        group.start_soon(ask_count)
        try:
            zones = await client.describe_zones(retry=PATIENT_READS)
        except ApiError as error:
            group.cancel_scope.cancel()
            return list(first.items), f"DescribeZones failed: {error.code}"
        slots = anyio.CapacityLimiter(CHAINS_AT_ONCE)
        for zone_id in dict.fromkeys(z.zone_id for z in zones):
            chains[zone_id] = []
            group.start_soon(list_zone, zone_id, chains[zone_id], slots)
    found = {i.instance_id: i for i in first.items}
    for listed in chains.values():
        found.update((i.instance_id, i) for i in listed)
    return list(found.values()), _uncovered(first.items, chains, len(found), count)


def _uncovered(
    first: Iterable[Instance],
    chains: Mapping[str, list[Instance]],
    distinct: int,
    count: int | None,
) -> str:
    """Why the zone chains do not provably cover the selection (rule 4), or ""."""
    if count is None:
        return "the count of the selection (PageNumber page) carried no TotalCount"
    missing = sorted({i.zone_id for i in first} - chains.keys())
    if missing:
        return f"zone {missing[0]} holds selected instances but DescribeZones does not list it"
    for zone_id, listed in chains.items():
        stray = next((i for i in listed if i.zone_id != zone_id), None)
        if stray is not None:
            return f"the listing of zone {zone_id} returned {stray.instance_id} of {stray.zone_id}"
    if distinct != count:
        return (
            f"the zones' listings found {distinct} instances where the selection counts "
            f"{count}: a zone DescribeZones does not list, or the fleet changed meanwhile"
        )
    return ""
