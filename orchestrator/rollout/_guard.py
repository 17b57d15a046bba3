"""The API guard: before its first RunCommand, a run looks for live runs of its plan.

Two CI jobs with fresh state dirs share no file, so no local lock can keep them apart;
the API can, because every RunCommand carries the plan's identity as tags (`PlanIdentity`:
`orchestrator-plan` = its name, `orchestrator-plan-sha256` = its digest, next to the
run's own `orchestrator-run`). Before sending, `check_no_live_run` lists the region's
invocations tagged with the plan's name that are still going (DescribeInvocations with
`InvokeStatus` Running, Pending, then Stopping: the API takes one status a call), and
`find_conflicts` keeps those of OTHER runs with an instance of ours not yet in a final
state. Any such run refuses this one (`LiveRunElsewhere`, exit 7): its run tag, how many
of our instances it holds, whether it runs an edited plan (same name, other digest: the
same rollout, changed between the jobs). A resume's own invocations carry its own run
tag and never count against it.

What the guard cannot see (docs/journal.md, "Concurrent runs"):
- a RunCommand accepted a moment ago may not be listed yet (the service's lists are
  eventually consistent; how long the lag is, is not documented): two jobs that start
  within that moment both pass. The guard narrows the window; only the plan lock of a
  shared state dir closes it;
- a renamed plan is another plan; so is a run by an orchestrator too old to tag the plan;
- a periodic invocation waiting for its next time (overall `Scheduled`) is not looked
  for: the filter is Running, Pending, Stopping (a choice: the issue asks about live runs,
  and a schedule would refuse every later run of its plan until it is stopped).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from orchestrator import api
from orchestrator.ecs import PATIENT_READS
from orchestrator.errors import ConcurrentRun
from orchestrator.rollout._tags import PLAN_DIGEST_TAG_KEY, PLAN_TAG_KEY, RUN_TAG_KEY

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from orchestrator.ecs import EcsClient, Instance, Invocation
    from orchestrator.plan import Plan

# The overall InvokeStatus values of an invocation that may still run something.
LIVE_STATUSES: Final = ("Running", "Pending", "Stopping")
_URL_MARKERS: Final = ("http://", "https://")


def plan_tag_value(name: str) -> str:
    """The plan's name as a tag value; a name the API would refuse as one (over 128
    characters, or holding a URL) becomes `sha256:` and its digest, always the same."""
    if len(name) <= api.TAG_VALUE_MAX and not any(m in name.lower() for m in _URL_MARKERS):
        return name
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PlanIdentity:
    """What makes two runs the same rollout: the plan's name, and which version of it.

    `sha256` must stay the same for every attempt of one run (run, then resume): the
    tags are part of each RunCommand, and a ClientToken sent again with other tags is an
    IdempotentParameterMismatch. The CLI passes the digest its journal recorded.
    """

    name: str
    sha256: str = ""

    @classmethod
    def of(cls, plan: Plan) -> PlanIdentity:
        return cls(plan.name, plan.sha256)

    def tags(self) -> dict[str, str]:
        """The tags every RunCommand of the run carries (besides the run's own)."""
        tags = {PLAN_TAG_KEY: plan_tag_value(self.name)}
        if self.sha256:
            tags[PLAN_DIGEST_TAG_KEY] = self.sha256
        return tags


@dataclass(frozen=True, slots=True)
class Conflict:
    """Another run of the plan, live on `instances` of ours."""

    run_id: str  # its `orchestrator-run` tag ("" if it had none)
    instances: frozenset[str]
    sha256: str  # the digest it ran with ("" if untagged)
    edited: bool  # same name, another digest


def find_conflicts(
    invocations: Iterable[Invocation],
    *,
    identity: PlanIdentity,
    run_id: str,
    targets: Iterable[str],
) -> tuple[Conflict, ...]:
    """The other runs of the plan with an instance of `targets` not yet in a final state,
    most instances first. Our own run's invocations (a resume's) never conflict."""
    ours = set(targets)
    wanted = plan_tag_value(identity.name)
    live: dict[str, set[str]] = defaultdict(set)
    digests: dict[str, str] = {}
    for invocation in invocations:
        tags = invocation.tags
        if tags.get(PLAN_TAG_KEY) != wanted:  # the filter asked for it; checked all the same
            continue
        other = tags.get(RUN_TAG_KEY, "")
        if other == run_id:
            continue
        held = {i.instance_id for i in invocation.instances if not i.status.terminal} & ours
        if held:
            live[other] |= held
            digests.setdefault(other, tags.get(PLAN_DIGEST_TAG_KEY, ""))
    conflicts = (
        Conflict(
            run_id=other,
            instances=frozenset(held),
            sha256=digests[other],
            edited=bool(identity.sha256 and digests[other] and digests[other] != identity.sha256),
        )
        for other, held in live.items()
    )
    return tuple(sorted(conflicts, key=lambda c: (-len(c.instances), c.run_id)))


class LiveRunElsewhere(ConcurrentRun):
    """Another run of the plan is live in the region on instances this run targets."""

    def __init__(
        self, conflicts: Sequence[Conflict], *, plan: str, region: str, targets: int
    ) -> None:
        first = conflicts[0]
        who = f"run {first.run_id}" if first.run_id else "a run without a run tag"
        edited = (
            f" It runs an edited version of this plan (sha256 {first.sha256[:12]}…): the same "
            "rollout, changed since it started."
            if first.edited
            else ""
        )
        others = f" ({len(conflicts) - 1} more runs of it are live too.)" if conflicts[1:] else ""
        follow = (
            f"Follow it with `orchestrator status {first.run_id}` where it runs"
            if first.run_id
            else "Find who sent it"
        )
        super().__init__(
            f"plan {plan} is already running in {region}: {who} has {len(first.instances)} "
            f"of this run's {targets} instances still pending or running: nothing was sent."
            f"{edited}{others} {follow}, or wait for it to end; --allow-concurrent starts "
            "anyway (dangerous: the script can run twice on an instance)",
            other_run=first.run_id,
        )
        self.conflicts = tuple(conflicts)


async def check_no_live_run(
    client: EcsClient,
    identity: PlanIdentity,
    instances: Sequence[Instance],
    *,
    run_id: str,
) -> None:
    """Raise `LiveRunElsewhere` if another run of the plan is live on any of `instances`;
    nothing is sent either way."""
    if not instances:
        return
    found: list[Invocation] = []
    tag = {PLAN_TAG_KEY: plan_tag_value(identity.name)}
    for status in LIVE_STATUSES:
        # Read-only and safe to repeat: a burst of throttling must not end a run unstarted.
        listing = client.describe_invocations(invoke_status=status, tags=tag, retry=PATIENT_READS)
        found += [invocation async for invocation in listing]
    conflicts = find_conflicts(
        found,
        identity=identity,
        run_id=run_id,
        targets=(i.instance_id for i in instances),
    )
    if conflicts:
        raise LiveRunElsewhere(
            conflicts, plan=identity.name, region=client.region_id, targets=len(instances)
        )
