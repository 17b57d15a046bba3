"""A lost or damaged journal rebuilt from the API, so that a resume sends nothing twice.

Every RunCommand of a run carries the run's tag (`orchestrator-run` = run id), so the
API lists what the run sent even when its journal is gone. The batches are cut again
from the plan and the instances (`shape_waves`, as the run did), and each listed
invocation is matched to the batch that names exactly its instances (a verify command
by its name, to the verify batches of its wave). A batch with no invocation of its own
but whose instances some invocation names was split: its halves are matched in turn,
as the dispatcher cut them. Each match is recorded as an accepted batch under the
ClientToken the run used for it, so a resume follows that InvokeId and derives the same
tokens for the batches not sent yet.

The match is the proof that the batches are the run's: every listed invocation must be
one of them. If one is not (another plan, another batch size, instances that changed
since), the tokens of the rest cannot be trusted either and nothing is recorded: the
safe path, since a resume built on a wrong cut could send to an instance that already
ran. What the API does not list cannot be matched: a send so recent that the listing
does not show it yet (the API is eventually consistent; a resume sends that batch again
with the same ClientToken, which the service answers with the original invocation), or
one older than the service's history window (30 days, at most 10,000 records: recover
within it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.api import InstanceInvocationStatus
from orchestrator.ecs import PATIENT_READS
from orchestrator.journal._writer import create_journal
from orchestrator.rollout import (
    RUN_TAG_KEY,
    VERIFY_COMMAND_NAME,
    BatchAttempt,
    BatchDispatched,
    BatchRefused,
    BatchState,
    client_token,
    split_batches,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime
    from pathlib import Path

    from orchestrator.ecs import EcsClient, Invocation
    from orchestrator.journal._header import RunHeader
    from orchestrator.plan import Plan
    from orchestrator.rollout import ShapedWave

_Pool = dict[frozenset[str], "Invocation"]


@dataclass(frozen=True, slots=True)
class FoundBatch:
    """A batch the run sent, as the API shows it: accepted (with its InvokeId) or split
    (its halves were sent)."""

    attempt: BatchAttempt
    state: BatchState
    invoke_id: str = ""


@dataclass(frozen=True, slots=True)
class Recovery:
    """The run's batches found among its invocations; `unproven` says why the listed
    invocations are not the batches of this plan over these instances (empty: they are)."""

    batches: tuple[FoundBatch, ...]
    unproven: tuple[str, ...]
    listed: int  # invocations of the run the API listed

    @property
    def sent_to(self) -> frozenset[str]:
        """The instances of the run's (non-verify) invocations."""
        return frozenset(
            instance
            for found in self.batches
            if found.state is BatchState.ACCEPTED and found.attempt.purpose == "run"
            for instance in found.attempt.instance_ids
        )


async def run_invocations(client: EcsClient, run_id: str) -> list[Invocation]:
    """Every invocation tagged with the run (all pages)."""
    return [
        inv
        async for inv in client.describe_invocations(
            tags={RUN_TAG_KEY: run_id}, retry=PATIENT_READS
        )
    ]


def match_batches(
    run_id: str, plan: Plan, shaped: Sequence[ShapedWave], invocations: Sequence[Invocation]
) -> Recovery:
    """The batches of `shaped` (the plan's waves over the instances) that `invocations`
    (the run's, as listed) show were sent."""
    unproven: list[str] = []
    pools: dict[str, _Pool] = {"run": {}, "verify": {}}
    for inv in invocations:
        purpose = "verify" if inv.command_name == VERIFY_COMMAND_NAME else "run"
        instances = frozenset(item.instance_id for item in inv.instances)
        if instances in pools[purpose]:
            unproven.append(f"invocations {pools[purpose][instances].invoke_id} and "
                            f"{inv.invoke_id} name the same instances")  # fmt: skip
        pools[purpose][instances] = inv
    succeeded = {
        item.instance_id
        for inv in pools["run"].values()
        for item in inv.instances
        if item.status is InstanceInvocationStatus.SUCCESS
    }
    found: list[FoundBatch] = []
    runs = _Matcher(pools["run"], run_id, run_id, "run", found)
    verifies = _Matcher(pools["verify"], f"{run_id}/verify", run_id, "verify", found)
    for wave in shaped:
        for batch in wave.plan.batches:
            runs.match(batch.wave, batch.index, batch.instance_ids)
        if wave.config.verify is None:
            continue
        # The verify batches, cut as the verify step cuts them: the wave's succeeded ones.
        targets = tuple(i for i in wave.plan.instances if i.instance_id in succeeded)
        size = min(plan.limits.batch_size, wave.cap) if wave.cap else plan.limits.batch_size
        for batch in split_batches(wave.plan.index, targets, size):
            verifies.match(batch.wave, batch.index, batch.instance_ids)
    for purpose, pool in pools.items():
        unproven += [
            f"{purpose} invocation {inv.invoke_id} ({_names(instances)}) is no batch of "
            "this plan over these instances"
            for instances, inv in pool.items()
        ]
    return Recovery(tuple(found), tuple(unproven), len(invocations))


@dataclass(slots=True)
class _Matcher:
    """Matches the batches of one purpose to the invocations left in `pool`."""

    pool: _Pool
    token_key: str  # what the tokens derive from: the run id, or "<run id>/verify"
    run_id: str
    purpose: str
    found: list[FoundBatch]

    def match(self, wave: int, index: int, ids: tuple[str, ...], path: str = "") -> None:
        token = client_token(self.token_key, wave, index, path)
        attempt = BatchAttempt(self.run_id, wave, index, path, token, ids, self.purpose)
        invocation = self.pool.pop(frozenset(ids), None)
        if invocation is not None:
            self.found.append(FoundBatch(attempt, BatchState.ACCEPTED, invocation.invoke_id))
            return
        if len(ids) < 2 or not any(instances & set(ids) for instances in self.pool):  # noqa: PLR2004
            return  # never sent (or a lone instance RunCommand refused): a resume sends it
        # Refused because of one of its instances, then sent in halves, as the dispatcher
        # cuts them.
        self.found.append(FoundBatch(attempt, BatchState.SPLIT))
        middle = len(ids) // 2
        self.match(wave, index, ids[:middle], path + "0")
        self.match(wave, index, ids[middle:], path + "1")


def _names(instances: frozenset[str]) -> str:
    shown = sorted(instances)
    more = f" and {len(shown) - 3} more" if len(shown) > 3 else ""  # noqa: PLR2004
    return ", ".join(shown[:3]) + more


async def write_recovered(
    path: Path, header: RunHeader, recovery: Recovery, *, at: datetime
) -> None:
    """A new journal at `path`: `header`, then every found batch with its answer."""
    async with create_journal(path, header) as journal:
        for found in recovery.batches:
            attempt = found.attempt
            await journal.before_dispatch(attempt)
            where = (attempt.wave, attempt.batch, attempt.split_path, attempt.client_token)
            if found.state is BatchState.ACCEPTED:
                journal(BatchDispatched(*where, found.invoke_id, attempt.instance_ids, at))
            else:
                journal(BatchRefused(*where, found.state, "Recovered", "split, as the API shows"))
        await journal.checkpoint()
