"""A new run from a finished run: its recorded plan, on some of its instances (retry, rollback).

`orchestrator retry RUN` runs the parent's plan again on the instances that did not
succeed; `orchestrator rollback RUN` runs another command on the instances the parent
changed. Both are a new run of the parent's plan as its journal recorded it
(`recorded_plan`: its text, with the parent's own `--param` values), its targets
replaced by exactly the chosen instance ids, resolved again (an instance stopped since
is skipped with a reason, like in any run), and started through `start_run`, the path
every run takes: the same plan lock and live-run guards, a journal, reports.

The child's journal keeps the parent's plan text and path and an origin naming the
parent (`RunOrigin(kind, parent=…, params=…)`), so `recorded_plan` derives the same plan
on a resume: the parent's plan, with the journal's instances as its targets (and, for a
rollback, its own branch). A parent must be finished: a running one may still change the
outcomes the instances were chosen by, an interrupted one is resumed, not repeated. A
parent against the embedded simulator (`--sim`) cannot have a child: its instances ended
with that process. Where the calls go is the parent's (its endpoint, region, profile),
unless `--endpoint`, `--region` or `--profile` say otherwise.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from orchestrator.cli._exit import ExitCode, make_console
from orchestrator.cli._recorded import child_plan
from orchestrator.cli._rollout import Start, start_run
from orchestrator.journal import RunOrigin, lock_holder
from orchestrator.plan import PlanError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from orchestrator.journal import JournalRecord


def parent_problem(args: argparse.Namespace, parent: JournalRecord, kind: str) -> str:
    """Why `parent` cannot have a `kind` run now ("" when it can): it runs, it is
    interrupted, or it ran against the embedded simulator."""
    run_id = parent.header.run_id
    cannot = f"cannot start a {kind} of run {run_id}"
    if parent.header.origin.kind == "rollback":
        # Its journal records the plan it rolled back: a child of it would be derived from
        # that plan, not from the rollback it ran.
        return (
            f"{cannot}: it is itself the rollback of run {parent.header.origin.parent}; a "
            "rollback is neither rolled back nor retried"
        )
    if parent.header.target.get("sim") is not None:
        return (
            f"{cannot}: it ran against the embedded simulator (--sim), which ended with its "
            "process, and its instances with it"
        )
    holder = lock_holder(Path(args.state_dir) / "runs" / run_id)
    if holder is not None:
        return (
            f"{cannot}: it is running (pid {holder.pid} on {holder.host}); wait for it or "
            f"stop it (orchestrator stop {run_id})"
        )
    if parent.state != "finished":
        return f"{cannot}: it is interrupted; resume it (orchestrator resume {run_id})"
    return ""


def _where(args: argparse.Namespace, parent: JournalRecord) -> argparse.Namespace:
    """`args` with where the parent's calls went filling what the flags leave open, and
    the parent's script directories (its plan's scripts are read again from there)."""
    recorded = parent.header.target
    dirs = recorded.get("script_dirs")
    return argparse.Namespace(
        **{
            **vars(args),
            "endpoint": args.endpoint or recorded.get("endpoint"),
            "region": args.region or recorded.get("region"),
            "profile": args.profile or recorded.get("profile"),
            "sim": None,
            "script_dir": dirs.split(os.pathsep) if dirs else [],
        }
    )


def start_child_run(
    args: argparse.Namespace,
    parent: JournalRecord,
    kind: str,
    instance_ids: Sequence[str],
    *,
    only: tuple[str, ...] = (),
) -> int:
    """Start a new `kind` run ("retry", "rollback") of `parent`'s recorded plan on exactly
    `instance_ids` (in that order, none of them twice), through `start_run`.

    The plan is `child_plan`'s (a rollback's swaps the command), the one `recorded_plan`
    derives again from the child's journal, so its resume sends the same. `only`: the
    outcomes a retry chose the instances by (kept in the journal's origin). `args` are `run`'s (the
    output, approval, state-dir and concurrency options) with `--endpoint`, `--region`
    and `--profile` defaulting to the parent's. Exit 2, nothing sent, for a parent that
    cannot have a child (`parent_problem`), no instances, or a plan this version refuses.
    """
    errors = make_console(stderr=True)
    problem = parent_problem(args, parent, kind)
    ids = tuple(dict.fromkeys(instance_ids))
    if not problem and not ids:
        problem = f"a {kind} of run {parent.header.run_id} needs at least one instance"
    if problem:
        errors.print(f"[bold red]error:[/] {escape(problem)}", soft_wrap=True)
        return ExitCode.USAGE
    header = parent.header
    try:
        plan = child_plan(header, kind, ids)
    except PlanError as exc:
        errors.print(
            f"[bold red]error:[/] the recorded plan of run {header.run_id}: {escape(str(exc))}",
            soft_wrap=True,
        )
        return ExitCode.USAGE
    origin = RunOrigin(kind=kind, parent=header.run_id, params=header.origin.params, only=only)
    start = Start(plan, header.plan_text, plan_path=header.plan_path, origin=origin)
    return start_run(_where(args, parent), start)
