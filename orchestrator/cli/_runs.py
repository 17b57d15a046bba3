"""`orchestrator resume` and `stop`: take a run over from its journal, from any shell.

`resume RUN` continues an interrupted run as recorded (the plan text and the instances
in the journal, the same waves, batches and ClientTokens); a finished run only prints its
summary. A changed plan file is refused unless `--force`, and even then the recorded plan
runs: a resume never sends other commands than the run started with. A run against the
embedded simulator cannot be resumed: the simulator's state ended with its process.
A resume holds the plan's lock and passes the API guard as `run` does (`_concurrency`),
its own invocations aside.
`stop RUN` asks the live process to stop (the stop
marker) and waits for it; when that process is gone, it records the stop (the same
marker, synced) and then does the stopping itself: it takes the run over and follows
every invocation the journal knows to its end, sending StopInvocation to what still
runs. A recorded stop holds: a `resume` of the run sends nothing new, it only follows and
stops (a stop killed half-way is finished that way).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Final

from rich.markup import escape

from orchestrator.cli._approve import build_approver
from orchestrator.cli._concurrency import check_live_runs, plan_lock
from orchestrator.cli._execute import Job, execute, not_resumable, recorded_stop, request_stop
from orchestrator.cli._exit import ExitCode, make_console, run_async
from orchestrator.cli._outputs import OutputOptions
from orchestrator.cli._overrides import reported_origin
from orchestrator.cli._recorded import recorded_plan
from orchestrator.cli._rollout import plan_digest, roll_back_after_breach
from orchestrator.cli._status import read_record, state_text
from orchestrator.cli._summary import print_summary
from orchestrator.cli._wiring import Target, connect
from orchestrator.journal import (
    JournalRecord,
    RunLock,
    find_lost_sends,
    journal_path,
    lock_holder,
    read_journal,
    reopen_journal,
)
from orchestrator.plan import PlanError, check_credentials_in_use
from orchestrator.report import RunFacts
from orchestrator.rollout import (
    BatchState,
    PlanIdentity,
    Refuse,
    order_for,
    shape_waves,
)
from orchestrator.rollout import client_token as token_of

if TYPE_CHECKING:
    import argparse

    from rich.console import Console

    from orchestrator.plan import Plan
    from orchestrator.rollout import RunHistory

STOP_WAIT: Final = 0.2  # real seconds between looks at a stopping run's lock


def _recorded_plan(record: JournalRecord, errors: Console) -> Plan | None:
    try:
        return recorded_plan(record.header)
    except PlanError as exc:  # only a plan this version no longer accepts
        errors.print(f"[bold red]error:[/] the recorded plan: {escape(str(exc))}", soft_wrap=True)
        return None


def _plan_changed(record: JournalRecord) -> str:
    """Why the plan file is not the one the run started with ("" when it is)."""
    path = Path(record.header.plan_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return f"the plan file {path} is gone"
    if plan_digest(text) != record.header.plan_sha256:
        return f"the plan file {path} changed since the run started"
    return ""


def _target_of(record: JournalRecord) -> Target:
    target = record.header.target
    return Target(
        region=target.get("region"),
        endpoint=target.get("endpoint"),
        sim=target.get("sim"),
        profile=target.get("profile"),
    )


def _check_batches(plan: Plan, record: JournalRecord) -> str:
    """Whether the batches cut again match the recorded ones (the tokens depend on it)."""
    run_id = record.header.run_id
    shaped = shape_waves(plan, record.header.instances, order_for(plan.order))
    expected = {
        token_of(run_id, batch.wave, batch.index, ""): batch.instance_ids
        for wave in shaped
        for batch in wave.plan.batches
    }
    for row in record.batches:
        if row.purpose != "run" or row.split_path:
            continue
        if expected.get(row.client_token) != tuple(row.instance_ids):
            return f"batch {row.wave}/{row.batch} of the journal is not the batch cut again"
    return ""


def resume(args: argparse.Namespace) -> int:
    """Continue an interrupted run from its journal."""
    console, errors = make_console(), make_console(stderr=True)
    record = read_record(args, errors)
    if record is None:
        return ExitCode.USAGE
    run_id = record.header.run_id
    if record.state == "finished":
        console.print(f"run {run_id} is finished; nothing to resume")
        waves = [wave.name for wave in record.header.waves]
        print_summary(console, tuple(record.results.values()), record.header.skipped, waves)
        if record.halt is not None:
            console.print(f"\nhalted ({record.halt.reason}): {escape(record.halt_text)}")
        return record.exit_code if record.exit_code is not None else ExitCode.OK
    plan = _resumable_plan(args, record, errors)
    if plan is None:
        return ExitCode.USAGE
    stopping = recorded_stop(Path(args.state_dir) / "runs" / run_id)
    if stopping is not None:
        # A stop was asked and may not have been carried out to its end (its process
        # was killed): it still holds. Nothing new is sent, what runs is stopped.
        console.print(
            f"a stop of this run was recorded ({escape(stopping)}): nothing new is sent; "
            "what was sent is followed to its end and stopped",
            soft_wrap=True,
        )
    return _continue(args, record, plan, console, stop=stopping is not None)


def _resumable_plan(
    args: argparse.Namespace, record: JournalRecord, errors: Console
) -> Plan | None:
    run_id = record.header.run_id
    if record.header.target.get("sim") is not None:
        errors.print(f"[bold red]error:[/] {escape(not_resumable(run_id))}", soft_wrap=True)
        return None
    # Only a plan file's run has a file to compare: an ad-hoc run's plan, or a retry's
    # (its parent's, as recorded), lives in the journal alone.
    changed = _plan_changed(record) if record.header.origin.from_plan_file else ""
    if changed and not args.force:
        errors.print(
            f"[bold red]error:[/] {escape(changed)} (sha256 {record.header.plan_sha256[:12]}… "
            "recorded). A resume runs the plan as recorded in the journal: pass --force to "
            "go on with it anyway, or start a new run with the new plan",
            soft_wrap=True,
        )
        return None
    plan = _recorded_plan(record, errors)
    if plan is None:
        return None
    if record.header.target.get("ignore_quota"):
        plan = replace(plan, limits=replace(plan.limits, ignore_quota=True))
    mismatch = _check_batches(plan, record)
    if mismatch:
        errors.print(f"[bold red]error:[/] cannot resume {run_id}: {mismatch}", soft_wrap=True)
        return None
    return plan


def _continue(
    args: argparse.Namespace, record: JournalRecord, plan: Plan, console: Console, *, stop: bool
) -> int:
    header = record.header
    state_dir = Path(args.state_dir)
    run_dir = state_dir / "runs" / header.run_id

    identity = PlanIdentity(plan.name, header.plan_sha256)  # as the run's tags say
    # A stop sends no RunCommand: it may stop an old run while a newer one of the plan runs.
    guarded = not stop and not args.allow_concurrent

    async def main() -> int:
        with (
            RunLock.acquire(run_dir, header.run_id) as lock,
            plan_lock(args, state_dir, plan.name, header.run_id) if guarded else nullcontext(),
        ):
            if lock.took_over is not None:
                console.print(
                    f"[dim]took over the lock of pid {lock.took_over.pid} on "
                    f"{lock.took_over.host}: that process is gone[/]"
                )
            latest = read_journal(journal_path(state_dir, header.run_id))  # under the lock
            async with connect(_target_of(latest), rates=plan.limits.qps) as conn:
                if not stop:  # a stop sends no RunCommand: it only ends what was sent
                    # The credentials may differ from the first attempt's.
                    check_credentials_in_use(plan, conn.credentials_in_use)
                verb = "stopping" if stop else "resuming"
                console.print(
                    f"run {header.run_id}: {verb} plan {plan.name} against {conn.description}"
                )
                history = await find_lost_sends(conn.client, latest)
                _print_history(console, latest, history)
                if guarded:
                    left = [i for i in header.instances if i.instance_id not in latest.results]
                    await check_live_runs(args, conn.client, identity, left, run_id=header.run_id)
                job = Job(
                    run_id=header.run_id,
                    run_dir=run_dir,
                    plan=plan,
                    instances=header.instances,
                    skipped=header.skipped,
                    history=history,
                    # A stop asks nobody: it only follows what was sent to its end.
                    approver=Refuse() if stop else build_approver(args, conn.clock, console),
                    facts=RunFacts(
                        run_id=header.run_id,
                        plan=plan,
                        plan_path=header.plan_path,
                        plan_sha256=header.plan_sha256,
                        region=conn.region,
                        endpoint=conn.endpoint,
                        resolution=None,
                        exit_code=0,
                        origin=reported_origin(header.origin),
                    ),
                    outputs=OutputOptions.of(args),
                    stop_at_once=stop,
                    identity=identity,
                )
                async with reopen_journal(journal_path(state_dir, header.run_id)) as journal:
                    code = await execute(job, conn, journal, console)
                if plan.on_breach == "rollback" and code == ExitCode.HALTED:  # as `run` does
                    await roll_back_after_breach(args, header.run_id, conn, console)
                return code

    return run_async(main)


def _print_history(console: Console, record: JournalRecord, history: RunHistory) -> None:
    states = Counter(row.state for row in record.batches)
    lost = states[BatchState.SENDING]
    found = lost - sum(b.state is BatchState.SENDING for b in history.batches.values())
    line = (
        f"journal: {len(record.results)} of {len(record.header.instances)} instances have "
        f"a result; {states[BatchState.ACCEPTED] + found} invocations to follow"
    )
    if lost:
        line += f"; {lost} sends had no recorded answer, {found} of them found by lookup"
    console.print(line)


def stop(args: argparse.Namespace) -> int:
    """Stop a run: ask its live process, or, when it is gone, stop what it sent."""
    console, errors = make_console(), make_console(stderr=True)
    record = read_record(args, errors)
    if record is None:
        return ExitCode.USAGE
    run_id = record.header.run_id
    run_dir = Path(args.state_dir) / "runs" / run_id
    holder = lock_holder(run_dir)
    if holder is not None:
        request_stop(run_dir, f"stopped by orchestrator stop (pid {os.getpid()})")
        console.print(
            f"asked pid {holder.pid} on {holder.host} to stop run {run_id}: nothing more is "
            "sent and StopInvocation goes to what runs; waiting for it to end"
        )
        deadline = time.monotonic() + args.wait
        while lock_holder(run_dir) is not None:
            if time.monotonic() > deadline:
                errors.print(
                    f"run {run_id} is still stopping after {args.wait:g} s; "
                    f"`orchestrator status {run_id}` shows where it is"
                )
                return ExitCode.API_ERROR
            time.sleep(STOP_WAIT)  # another process's lock: nothing to wait on but time
        final = read_record(args, errors)
        if final is not None:
            console.print(f"run {run_id}: {state_text(final, run_dir)}")
        return ExitCode.OK
    if record.state == "finished":
        console.print(f"run {run_id} is finished; nothing to stop")
        return ExitCode.OK
    if record.header.target.get("sim") is not None:
        console.print(
            f"run {run_id} ran against the embedded simulator, which ended with its "
            "process: nothing of it is running"
        )
        return ExitCode.OK
    plan = _recorded_plan(record, errors)
    if plan is None:
        return ExitCode.USAGE
    # The intent first, durably: a stop killed half-way still holds, and a later resume
    # sends nothing new.
    marker = request_stop(run_dir, "stopped by orchestrator stop (its process was gone)")
    console.print(f"run {run_id}: stop recorded in {marker}; stopping what it sent")
    code = _continue(args, record, plan, console, stop=True)
    # The run ends halted ("stopped"): that is this command's success.
    return ExitCode.OK if code in {ExitCode.HALTED, ExitCode.OK, ExitCode.FAILED} else code
