"""The guards `run` and `resume` pass before they send anything: one live run per plan.

A second run of a plan that is running already runs its script a second time on every
instance. Three guards keep it away (docs/journal.md, "Concurrent runs"):

- the plan's lock in the state dir (`plan_lock`), held for the whole run: of two runs of
  one plan started at the same moment with one state dir, the kernel lets one through;
- the API guard (`orchestrator.rollout.check_no_live_run`), for runs this state dir
  cannot see (another CI job, another machine): the region's invocations tagged with
  the plan that are still going, on instances this run targets;
- the last run of the plan in this state dir left interrupted (`refuse_interrupted`):
  starting over it is how duplicates happen in practice; resume it, or say `--new`.

`--allow-concurrent` skips the first two (dangerous: the script can run twice on an
instance). All three refuse with `ConcurrentRun` (exit 7) and send nothing.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

from rich.markup import escape

from orchestrator.cli._exit import make_console
from orchestrator.errors import ConcurrentRun, JournalError, OrchestratorError
from orchestrator.journal import PlanLock, list_runs, lock_holder, read_journal
from orchestrator.rollout import check_no_live_run

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from pathlib import Path

    from orchestrator.ecs import EcsClient, Instance
    from orchestrator.rollout import PlanIdentity


def plan_lock(
    args: argparse.Namespace, state_dir: Path, plan_name: str, run_id: str
) -> AbstractContextManager[object]:
    """The plan's lock for `run_id` (raises PlanLocked when a live run holds it), or
    nothing with --allow-concurrent."""
    if args.allow_concurrent:
        return nullcontext()
    return PlanLock.acquire(state_dir, plan_name, run_id)


async def check_live_runs(
    args: argparse.Namespace,
    client: EcsClient,
    identity: PlanIdentity,
    instances: Sequence[Instance],
    *,
    run_id: str,
) -> None:
    """The API guard, unless --allow-concurrent. An error of its own (the API could not
    be asked) refuses the run too: a guard that cannot look must not let it through."""
    if args.allow_concurrent:
        return
    try:
        await check_no_live_run(client, identity, instances, run_id=run_id)
    except ConcurrentRun:
        raise
    except OrchestratorError:
        make_console(stderr=True).print(
            f"could not look for another live run of plan {escape(identity.name)} "
            "(DescribeInvocations): nothing was sent",
            soft_wrap=True,
        )
        raise


def interrupted_run(state_dir: Path, plan_name: str) -> str | None:
    """The id of the newest run of the plan in `state_dir` if it is not finished and no
    process runs it; None otherwise. A run against the embedded simulator never counts:
    it cannot be resumed (its simulator ended with its process)."""
    newest = next(
        (r for r in list_runs(state_dir) if r.plan_name == plan_name and r.created_at), None
    )
    if newest is None or newest.state == "finished":
        return None
    if lock_holder(newest.path.parent) is not None:  # live (a run --allow-concurrent)
        return None
    try:
        target = read_journal(newest.path).header.target
    except JournalError:  # gone or garbled since it was listed: nothing to resume
        return None
    return None if target.get("sim") is not None else newest.run_id


def refuse_interrupted(state_dir: Path, plan_name: str) -> None:
    """Raise ConcurrentRun if the plan's last run here is interrupted (`interrupted_run`)."""
    run_id = interrupted_run(state_dir, plan_name)
    if run_id is not None:
        raise ConcurrentRun(
            f"run {run_id} of this plan is interrupted: resume it (orchestrator resume "
            f"{run_id}), or start a new run with --new",
            other_run=run_id,
        )
