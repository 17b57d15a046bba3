"""`orchestrator rollback RUN`: run a finished run's `rollback:` on the instances it touched.

The instances: those where the run's command began (`touched_instances`: succeeded,
failed, stopped), in the run's order; never those it did not reach. The new run is a
child run (`_child.start_child_run`, origin kind `rollback`): the parent's recorded plan
on exactly those instances, its command swapped for the rollback (`rollback_plan`), so
it is journaled, resumable and stoppable like any run, and a resume derives the same
plan (`recorded_plan`). Refused (exit 2, nothing sent): a parent that runs, is
interrupted, ran on the embedded simulator, is itself a rollback, has no `rollback:`,
or was rolled back already (a rollback runs once: the script must not run twice on an
instance; an interrupted one is resumed). A parent that touched nothing: exit 0, no run.
`on_breach: rollback` does the same in the process of the run that breached
(`_rollout.roll_back_after_breach`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from orchestrator.cli._child import parent_problem, start_child_run
from orchestrator.cli._exit import ExitCode, make_console
from orchestrator.cli._recorded import recorded_plan
from orchestrator.errors import JournalError
from orchestrator.journal import journal_path, list_runs, read_journal, touched_instances
from orchestrator.plan import PlanError

if TYPE_CHECKING:
    import argparse

    from orchestrator.journal import JournalRecord


def earlier_rollback(state_dir: Path, parent: JournalRecord) -> JournalRecord | None:
    """The rollback run of `parent` in `state_dir`, if there is one."""
    run_id = parent.header.run_id
    for listing in list_runs(state_dir):
        if listing.plan_name != parent.header.plan_name or listing.run_id == run_id:
            continue
        try:
            record = read_journal(listing.path)
        except JournalError:  # unreadable: `orchestrator runs` says so
            continue
        if record.header.origin.kind == "rollback" and record.header.origin.parent == run_id:
            return record
    return None


def rollback_problem(args: argparse.Namespace, parent: JournalRecord) -> str:
    """Why `parent` cannot be rolled back ("" when it can)."""
    run_id = parent.header.run_id
    cannot = f"cannot roll back run {run_id}"
    problem = parent_problem(args, parent, "rollback")
    if problem:
        return problem
    try:
        plan = recorded_plan(parent.header)
    except PlanError as exc:
        return f"{cannot}: its recorded plan: {exc}"
    if plan.rollback is None:
        return (
            f"{cannot}: its plan {plan.name} has no rollback: section (the script that "
            "undoes the command; docs/plan-reference.md, rollback)"
        )
    earlier = earlier_rollback(Path(args.state_dir), parent)
    if earlier is not None:
        other = earlier.header.run_id
        if earlier.state != "finished":
            return (
                f"{cannot}: run {other} rolls it back already and is {earlier.state}; "
                f"continue that one (orchestrator resume {other})"
            )
        return (
            f"{cannot}: run {other} rolled it back already (exit {earlier.exit_code}); a "
            f"rollback runs once. `orchestrator status {other}` shows how it went"
        )
    return ""


def rollback(args: argparse.Namespace) -> int:
    """Start a rollback run of RUN on the instances it touched."""
    console, errors = make_console(), make_console(stderr=True)
    try:
        parent = read_journal(journal_path(Path(args.state_dir), args.run))
    except JournalError as exc:
        errors.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return ExitCode.USAGE
    problem = rollback_problem(args, parent)
    if problem:
        errors.print(f"[bold red]error:[/] {escape(problem)}", soft_wrap=True)
        return ExitCode.USAGE
    run_id = parent.header.run_id
    ids = tuple(instance.instance_id for instance in touched_instances(parent))
    if not ids:
        console.print(
            f"run {run_id} touched no instance (none succeeded, failed or was stopped): "
            "nothing to roll back"
        )
        return ExitCode.OK
    console.print(f"rollback of {run_id}: the {len(ids)} instances it touched")
    return start_child_run(args, parent, "rollback", ids)
