"""The preflight quota check: will the account's Cloud Assistant quotas cover this run?

Before the first RunCommand, DescribeAccountAttributes gives `max-axt-invocation-daily`
and `max-axt-command-count`. The API reports each quota, not how much of it today's
earlier runs used, so this check can only refuse a run that could never fit; a run that
fits may still meet `Invocation.ExceedQuota` part-way (the dispatcher then halts with that
code). An attribute the account does not report is not checked. The call waits out a
burst of throttling (`PATIENT_READS`): it is read-only, and a run must not end on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator import api
from orchestrator.ecs import PATIENT_READS
from orchestrator.errors import QuotaTooSmall

if TYPE_CHECKING:
    from orchestrator.ecs import EcsClient


@dataclass(frozen=True, slots=True)
class QuotaNeeds:
    """What a run will consume: invocations counted per instance, kept commands per batch."""

    # Whether the daily quota counts RunCommand calls or instance runs is unconfirmed;
    # counting one per instance is the conservative reading (the simulator does the same).
    invocations: int
    # With KeepCommand every RunCommand (one per batch, splits included) keeps a command.
    kept_commands: int


async def check_quota(client: EcsClient, needs: QuotaNeeds) -> None:
    """Raise `QuotaTooSmall` when a quota is smaller than what the run needs."""
    attributes = await client.describe_account_attributes(
        [api.ATTRIBUTE_INVOCATION_QUOTA, api.ATTRIBUTE_COMMAND_QUOTA], retry=PATIENT_READS
    )
    daily = attributes.daily_invocation_quota
    if daily is not None and needs.invocations > daily:
        raise QuotaTooSmall(
            f"the run needs {needs.invocations} invocations (one per instance) but the "
            f"daily quota {api.ATTRIBUTE_INVOCATION_QUOTA} is {daily}; split the run over "
            "several days, raise the quota, or set limits.ignore_quota",
            attribute=api.ATTRIBUTE_INVOCATION_QUOTA,
            needed=needs.invocations,
            available=daily,
        )
    kept = attributes.command_quota
    if kept is not None and needs.kept_commands > kept:
        raise QuotaTooSmall(
            f"the run keeps {needs.kept_commands} commands (keep_command: one per batch) but "
            f"the quota {api.ATTRIBUTE_COMMAND_QUOTA} is {kept}; drop keep_command or "
            "raise the quota",
            attribute=api.ATTRIBUTE_COMMAND_QUOTA,
            needed=needs.kept_commands,
            available=kept,
        )
