"""A plan's selectors → the concrete instances that can run its command.

Explicit IDs and tag selectors are expanded through DescribeInstances (paged; tag pairs
AND-ed by the API), narrowed to the plan's zones, minus its exclusions. What is left and
cannot run the command is *skipped with a reason* — unknown ID, not Running, script type
that does not fit the OS, Cloud Assistant agent missing or offline — and reported, never
silently dropped. The API reaches instances only through `EcsClient`. These calls are
read-only and a run cannot start without them, so they wait out a burst of throttling
(`PATIENT_READS`) rather than end the run before it began.

The step is bound by the Describe rate: (listing pages + status calls) / Describe QPS.
So the calls overlap (`gather`): the explicit-ID chunks are listed at once, and a status
call for each 100 fit instances starts while the listing goes on, all under the
client's rate limiter. What is asked is decided per instance as it is listed; the
`Resolution` is then worked out exactly as if the calls had run one after another.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import anyio

from orchestrator import api
from orchestrator.ecs import PATIENT_READS
from orchestrator.tag_listing import list_tagged
from orchestrator.taskgroups import single_error

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping
    from collections.abc import Set as AbstractSet

    from anyio.abc import TaskGroup

    from orchestrator.ecs import CloudAssistantStatus, EcsClient, Instance
    from orchestrator.plan import Targets

# Explicit-ID listings (100 IDs each) in the air at once; the rate limiter paces them.
LISTINGS_AT_ONCE: Final = 8


class SkipReason(enum.StrEnum):
    """Why a selected instance will not receive the command."""

    NOT_FOUND = "not_found"
    NOT_RUNNING = "not_running"
    OS_MISMATCH = "os_mismatch"
    AGENT_MISSING = "agent_missing"
    AGENT_OFFLINE = "agent_offline"


@dataclass(frozen=True, slots=True)
class Skipped:
    """A selected instance that will not run the command, and why."""

    instance_id: str
    reason: SkipReason
    detail: str
    zone_id: str = ""


@dataclass(frozen=True, slots=True)
class Resolution:
    """The outcome of expanding a plan's targets.

    `runnable`: instances that can run the command, ordered by (zone, ID) so waves and
    batches are the same on every run. `skipped`: selected but unable to run it.
    `excluded`: selected, then removed by the plan's `exclude` or `zones`.
    """

    runnable: tuple[Instance, ...]
    skipped: tuple[Skipped, ...]
    excluded: tuple[str, ...]

    @property
    def selected(self) -> int:
        """Instances the selectors matched, before exclusions: each one is runnable,
        skipped or excluded, so an operator can check that none went missing."""
        return len(self.runnable) + len(self.skipped) + len(self.excluded)


def os_fits(command_type: str, os_type: str) -> bool:
    """Shell scripts run on Linux, Bat and PowerShell scripts on Windows."""
    wants_windows = command_type in api.WINDOWS_COMMAND_TYPES
    return (os_type.lower() == "windows") == wants_windows


async def resolve(targets: Targets, command_type: str, client: EcsClient) -> Resolution:
    """Expand `targets` and sort out what can run a `command_type` script."""
    gathered = await gather(targets, command_type, client)
    found = gathered.found
    exclude, zones = frozenset(targets.exclude), frozenset(targets.zones)
    skipped = [
        Skipped(i, SkipReason.NOT_FOUND, "DescribeInstances does not know this instance")
        for i in dict.fromkeys(targets.instances)
        if i not in found and i not in exclude
    ]
    excluded = sorted(i.instance_id for i in found.values() if _left_out(i, exclude, zones))
    kept_out = set(excluded)
    candidates = sorted(
        (i for i in found.values() if i.instance_id not in kept_out),
        key=lambda i: (i.zone_id, i.instance_id),
    )
    eligible: list[Instance] = []
    for instance in candidates:
        problem = _unfit(instance, command_type)
        if problem is None:
            eligible.append(instance)
        else:
            skipped.append(Skipped(instance.instance_id, *problem, instance.zone_id))
    statuses = dict(gathered.statuses)
    # Only when an instance changed between two listings of it (unfit in the one seen
    # first, fit in the one kept) was its status not asked on the way.
    late = [i.instance_id for i in eligible if i.instance_id not in gathered.asked]
    if late:
        for status in await client.describe_cloud_assistant_status(late, retry=PATIENT_READS):
            statuses[status.instance_id] = status
    runnable = _with_agent_online(eligible, statuses, skipped)
    return Resolution(tuple(runnable), tuple(skipped), tuple(excluded))


@dataclass(frozen=True, slots=True)
class Gathered:
    """What the listings found and the agent statuses asked on the way.

    `found`: every instance the selectors matched, by ID, a tag match kept over an
    explicit one of the same ID (the same pick the listings made one after another).
    `asked`: the IDs whose status was asked; `statuses`: the answers.
    """

    found: Mapping[str, Instance]
    statuses: Mapping[str, CloudAssistantStatus]
    asked: frozenset[str]


async def gather(targets: Targets, command_type: str, client: EcsClient) -> Gathered:
    """List what `targets` select and ask the agent status of what can run the command,
    each status call started as soon as a chunk of fit instances has been listed.

    The tag listing pages with NextToken: never PageNumber pages fetched at once. Offset
    paging over a fleet that changes between pages can skip a live instance, and no
    cheap check tells: one instance gone from a page already read and one added at the
    end shift an instance onto the read page, while every TotalCount and the count of
    distinct IDs still agree. A skipped instance would be silently dropped. A large
    selection is instead split into one NextToken chain per zone, listed at once and
    checked against the selection's count, else listed again as one chain
    (`tag_listing.py` has the rule). The status calls (one per 100 fit instances) fill
    the limiter while pages are in the air; the explicit-ID chunks are listed at once.
    """
    ids = list(dict.fromkeys(targets.instances))
    id_chunks = [
        ids[start : start + api.DESCRIBE_INSTANCES_MAX_IDS]
        for start in range(0, len(ids), api.DESCRIBE_INSTANCES_MAX_IDS)
    ]
    tagged: list[Instance] = []
    explicit: list[list[Instance]] = [[] for _ in id_chunks]
    exclude, zones = frozenset(targets.exclude), frozenset(targets.zones)

    def fits(instance: Instance) -> bool:
        """Whether `resolve` would ask this instance's agent status, as listed."""
        return not _left_out(instance, exclude, zones) and _unfit(instance, command_type) is None

    try:
        async with anyio.create_task_group() as group:
            asker = _StatusAsker(group, client, fits)
            async with anyio.create_task_group() as listings:
                slots = anyio.CapacityLimiter(LISTINGS_AT_ONCE)
                if targets.tags:
                    listings.start_soon(_take_tagged, client, targets.tags, tagged, asker)
                for chunk, into in zip(id_chunks, explicit, strict=True):
                    listing = client.describe_instances(instance_ids=chunk, retry=PATIENT_READS)
                    listings.start_soon(_take, listing, into, asker, slots)
            asker.flush()
    except BaseExceptionGroup as errors:
        raise single_error(errors) from errors
    found: dict[str, Instance] = {}
    for instance in tagged:
        found[instance.instance_id] = instance
    for chunk_found in explicit:
        for instance in chunk_found:
            found.setdefault(instance.instance_id, instance)
    return Gathered(found, asker.statuses, frozenset(asker.asked))


async def _take_tagged(
    client: EcsClient, tags: Mapping[str, str], into: list[Instance], asker: _StatusAsker
) -> None:
    # The plan's zones are narrowed by the caller, not in the query (the zone chains
    # cover every zone DescribeZones lists), so every matched instance is accounted for.
    into.extend(await list_tagged(client, tags, asker.offer))


async def _take(
    listing: AsyncIterator[Instance],
    into: list[Instance],
    asker: _StatusAsker,
    slots: anyio.CapacityLimiter,
) -> None:
    async with slots:
        async for instance in listing:
            into.append(instance)
            asker.offer(instance)


class _StatusAsker:
    """Collects the IDs of fit instances as they are listed and starts one status call
    (in `group`) for every full chunk; `flush` asks for the rest. An ID is asked once."""

    def __init__(
        self, group: TaskGroup, client: EcsClient, fits: Callable[[Instance], bool]
    ) -> None:
        self._group = group
        self._client = client
        self._fits = fits
        self._pending: list[str] = []
        self.asked: set[str] = set()
        self.statuses: dict[str, CloudAssistantStatus] = {}

    def offer(self, instance: Instance) -> None:
        if instance.instance_id in self.asked or not self._fits(instance):
            return
        self.asked.add(instance.instance_id)
        self._pending.append(instance.instance_id)
        if len(self._pending) >= self._client.assistant_status_ids:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._group.start_soon(self._ask, self._pending)
            self._pending = []

    async def _ask(self, ids: list[str]) -> None:
        for status in await self._client.describe_cloud_assistant_status(ids, retry=PATIENT_READS):
            self.statuses[status.instance_id] = status


def _left_out(instance: Instance, exclude: AbstractSet[str], zones: AbstractSet[str]) -> bool:
    """Removed by the plan's `exclude` or `zones` (sets: checked for every instance)."""
    return instance.instance_id in exclude or bool(zones and instance.zone_id not in zones)


def _unfit(instance: Instance, command_type: str) -> tuple[SkipReason, str] | None:
    """Why the instance itself cannot run the command, if it cannot."""
    if instance.status != "Running":
        return SkipReason.NOT_RUNNING, f"instance is {instance.status}"
    if not os_fits(command_type, instance.os_type):
        return (
            SkipReason.OS_MISMATCH,
            f"{command_type} does not run on {instance.os_type or 'unknown OS'}",
        )
    return None


def _with_agent_online(
    instances: list[Instance], statuses: Mapping[str, CloudAssistantStatus], skipped: list[Skipped]
) -> list[Instance]:
    """The instances whose Cloud Assistant agent is online; the rest go to `skipped`."""
    runnable: list[Instance] = []
    for instance in instances:
        status = statuses.get(instance.instance_id)
        if status is None or (not status.online and not status.version):
            reason, detail = SkipReason.AGENT_MISSING, "Cloud Assistant agent is not installed"
        elif not status.online:
            reason = SkipReason.AGENT_OFFLINE
            detail = "Cloud Assistant agent sent no heartbeat in the last 2 minutes"
        else:
            runnable.append(instance)
            continue
        skipped.append(Skipped(instance.instance_id, reason, detail, instance.zone_id))
    return runnable
