"""A plan's selectors → the concrete instances that can run its command.

Explicit IDs and tag selectors are expanded through DescribeInstances (paged; tag pairs
AND-ed by the API), narrowed to the plan's zones, minus its exclusions. What is left and
cannot run the command is *skipped with a reason* — unknown ID, not Running, script type
that does not fit the OS, Cloud Assistant agent missing or offline — and reported, never
silently dropped. The API reaches instances only through `EcsClient`. These calls are
read-only and a run cannot start without them, so they wait out a burst of throttling
(`PATIENT_READS`) rather than end the run before it began.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator import api
from orchestrator.ecs import PATIENT_READS

if TYPE_CHECKING:
    from orchestrator.ecs import EcsClient, Instance
    from orchestrator.plan import Targets


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
    found = await _expand(targets, client)
    skipped = [
        Skipped(i, SkipReason.NOT_FOUND, "DescribeInstances does not know this instance")
        for i in dict.fromkeys(targets.instances)
        if i not in found and i not in targets.exclude
    ]
    excluded = sorted(
        i.instance_id
        for i in found.values()
        if i.instance_id in targets.exclude or (targets.zones and i.zone_id not in targets.zones)
    )
    candidates = sorted(
        (i for i in found.values() if i.instance_id not in excluded),
        key=lambda i: (i.zone_id, i.instance_id),
    )
    eligible: list[Instance] = []
    for instance in candidates:
        problem = _unfit(instance, command_type)
        if problem is None:
            eligible.append(instance)
        else:
            skipped.append(Skipped(instance.instance_id, *problem, instance.zone_id))
    runnable = await _with_agent_online(eligible, client, skipped)
    return Resolution(tuple(runnable), tuple(skipped), tuple(excluded))


async def _expand(targets: Targets, client: EcsClient) -> dict[str, Instance]:
    """Every instance the selectors match: tag matches, then explicit IDs."""
    found: dict[str, Instance] = {}
    if targets.tags:
        # Zones are narrowed by the caller, not in the query, so every instance the
        # selectors matched is accounted for: run, skipped, or excluded.
        async for instance in client.describe_instances(tags=targets.tags, retry=PATIENT_READS):
            found[instance.instance_id] = instance
    if targets.instances:
        explicit = client.describe_instances(instance_ids=targets.instances, retry=PATIENT_READS)
        async for instance in explicit:
            found.setdefault(instance.instance_id, instance)
    return found


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


async def _with_agent_online(
    instances: list[Instance], client: EcsClient, skipped: list[Skipped]
) -> list[Instance]:
    """The instances whose Cloud Assistant agent is online; the rest go to `skipped`."""
    statuses = {
        s.instance_id: s
        for s in await client.describe_cloud_assistant_status(
            [i.instance_id for i in instances], retry=PATIENT_READS
        )
    }
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
