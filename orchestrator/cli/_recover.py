"""`orchestrator recover RUN --plan PLAN`: a run whose journal is lost or damaged, rebuilt
from the API so that `orchestrator resume RUN` can continue it.

Recover only lists (DescribeInstances and the like to resolve the targets again,
DescribeInvocations by the run's tag); it never sends a RunCommand. It writes a new
journal (`match_batches` is the proof: every invocation of the run is one of the plan's
batches), and then the ordinary `resume` does the rest, on the one code path every
resume takes: every instance found in an invocation is followed, never sent again; the
rest is sent with the ClientTokens the run would have used. A damaged journal is kept next to
the new one (`journal.sqlite.damaged`, with its -wal and -shm), never deleted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from orchestrator.cli._exit import ExitCode, make_console, run_async
from orchestrator.cli._rollout import plan_digest, target_record
from orchestrator.cli._wiring import Target, connect
from orchestrator.errors import JournalError, PlanError
from orchestrator.journal import (
    RunHeader,
    RunLock,
    WaveRow,
    journal_path,
    match_batches,
    read_journal,
    run_invocations,
    write_recovered,
)
from orchestrator.plan import load_plan
from orchestrator.rollout import order_for, shape_waves
from orchestrator.targets import resolve

if TYPE_CHECKING:
    import argparse

    from rich.console import Console

    from orchestrator.journal import Recovery
    from orchestrator.plan import Plan

DAMAGED_SUFFIX = ".damaged"


def recover(args: argparse.Namespace) -> int:
    """Rebuild the journal of run `args.run` from `args.plan` and the API."""
    console, errors = make_console(), make_console(stderr=True)
    run_id: str = args.run
    if Path(run_id).name != run_id or run_id in {".", ".."}:
        # It names a directory recover creates: never one outside the state dir.
        errors.print(f"[bold red]error:[/] RUN {escape(run_id)!r}: a run id is a plain name")
        return ExitCode.USAGE
    path = journal_path(Path(args.state_dir), run_id)
    if _readable(path, console):
        return _resume_instead(errors, run_id, path)
    try:
        plan = load_plan(Path(args.plan))
        text = Path(args.plan).read_text(encoding="utf-8")
    except PlanError as exc:
        # One problem per line, as `run` prints them (CI annotators read FILE:LINE:).
        for problem in exc.problems or (exc,):
            errors.print(escape(str(problem)), soft_wrap=True)
        return ExitCode.USAGE
    target = Target(region=args.region or plan.region, endpoint=args.endpoint, profile=args.profile)
    plan_path = str(Path(args.plan).resolve())

    async def main() -> int:
        with RunLock.acquire(path.parent, run_id):
            if path.exists() and _readable(path, None):  # rebuilt meanwhile, by another
                return _resume_instead(errors, run_id, path)
            async with connect(target, rates=plan.limits.qps) as conn:
                console.print(
                    f"run {run_id}: recovering plan {plan.name} against {conn.description}",
                    soft_wrap=True,
                )
                resolution = await resolve(plan.targets, plan.command.type, conn.client)
                shaped = shape_waves(plan, resolution.runnable, order_for(plan.order))
                found = match_batches(
                    run_id, plan, shaped, await run_invocations(conn.client, run_id)
                )
                if found.unproven:
                    return _refuse(errors, run_id, found)
                now = datetime.now(UTC)
                header = RunHeader(
                    run_id=run_id,
                    plan_name=plan.name,
                    plan_path=plan_path,
                    plan_text=text,
                    plan_sha256=plan_digest(text),
                    target={
                        **target_record(target, conn.region, ignore_quota=False),
                        "recovered_at": now.isoformat(timespec="seconds"),
                    },
                    created_at=now,
                    instances=resolution.runnable,
                    skipped=resolution.skipped,
                    waves=tuple(
                        WaveRow(w.plan.index, w.plan.name, w.plan.size, len(w.plan.batches))
                        for w in shaped
                    ),
                )
            _set_aside(path, console)
            await write_recovered(path, header, found, at=now)
        _report(console, run_id, plan, found, len(resolution.runnable))
        return ExitCode.OK

    return run_async(main)


def _readable(path: Path, console: Console | None) -> bool:
    """Whether a journal is at `path` and reads; says why not when it is damaged."""
    if not path.exists():
        return False
    try:
        read_journal(path)
    except JournalError as damage:
        if console is not None:
            console.print(f"the journal is damaged: {escape(str(damage))}", soft_wrap=True)
        return False
    return True


def _resume_instead(errors: Console, run_id: str, path: Path) -> int:
    errors.print(
        f"[bold red]error:[/] run {run_id} has a readable journal ({path}): "
        f"`orchestrator resume {run_id}` continues it",
        soft_wrap=True,
    )
    return ExitCode.USAGE


def _refuse(errors: Console, run_id: str, found: Recovery) -> int:
    errors.print(
        f"[bold red]error:[/] cannot recover {run_id}: its invocations cannot be proven "
        "to be this plan's batches over the instances as resolved now, so the ClientTokens "
        "of the rest cannot be either; nothing was written and nothing sent:",
        soft_wrap=True,
    )
    for reason in found.unproven:
        errors.print(f"  {escape(reason)}", soft_wrap=True)
    errors.print(
        "recover with the plan file the run started with, while its targets are as they "
        "were; or stop what runs (`orchestrator instances` lists it) and start a new run",
        soft_wrap=True,
    )
    return ExitCode.USAGE


def _set_aside(path: Path, console: Console) -> None:
    """Move a damaged journal (and any -wal/-shm: a stale WAL must never meet the new
    file) out of the way, under a name not yet taken."""
    names = [path.name, f"{path.name}-wal", f"{path.name}-shm"]
    if not any((path.parent / name).exists() for name in names):
        return
    suffix, number = DAMAGED_SUFFIX, 0
    while any((path.parent / f"{path.name}{suffix}{name[len(path.name) :]}").exists()
              for name in names):  # fmt: skip
        number += 1
        suffix = f"{DAMAGED_SUFFIX}.{number}"
    for name in names:
        source = path.parent / name
        if source.exists():
            source.rename(path.parent / f"{path.name}{suffix}{name[len(path.name) :]}")
    console.print(f"kept the damaged journal as {path}{suffix}")


def _report(console: Console, run_id: str, plan: Plan, found: Recovery, runnable: int) -> None:
    accepted = sum(1 for batch in found.batches if batch.invoke_id)
    sent = len(found.sent_to)
    console.print(
        f"journal rebuilt for plan {plan.name}: {found.listed} invocations of the run "
        f"listed, {accepted} recorded as accepted batches; {sent} of {runnable} instances "
        f"were sent the command (followed, never sent again), {runnable - sent} were not",
        soft_wrap=True,
    )
    if not found.listed:
        console.print(
            "[yellow]no invocation of the run is listed[/]: nothing was sent, or the API "
            "does not list it yet (a resume sends with the run's ClientTokens) or any more "
            "(older than its history window)",
            soft_wrap=True,
        )
    console.print(f"continue it with: orchestrator resume {run_id}")
