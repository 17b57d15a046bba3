"""The part `run`, `resume` and `stop` share: a journaled rollout under the operator's control.

The rollout's events go to the live display and to the journal; the journal is also its
hooks (each ClientToken is on disk before its RunCommand leaves). Two things can end it
early from outside: signals (the first Ctrl-C or SIGTERM drains: nothing more is sent,
what runs is followed to its end; the second exits at once, leaving a journal
`orchestrator resume` continues from) and the stop marker `orchestrator stop RUN` writes
into the run's directory (checked every second of the run's clock: nothing more is sent
and StopInvocation goes to everything in flight). The marker stays: it is the run's
recorded stop intent, which a later `resume` obeys too.

Every early end is an interrupted end, whatever ended it (a signal, tracking given up
on an outage or on refused credentials): the journal says `interrupted` (the runner's
`RunFinished`), the summary is printed and every report written, stderr says in one line
why it ended, and the last line on stdout is the command that continues the run (or,
against the embedded simulator, that it cannot be continued and how to run a demo
that can). Only an error before the
run began (the quota cannot cover it) has nothing to summarise and is raised as it is.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final

import anyio
from rich.markup import escape

from orchestrator import api
from orchestrator.cli._exit import ExitCode, exit_code_for, make_console
from orchestrator.cli._heap import frozen_heap
from orchestrator.cli._logging import register_secret
from orchestrator.cli._outputs import OutputOptions, RunOutputs
from orchestrator.ecs import RateLimiterStats
from orchestrator.errors import OrchestratorError
from orchestrator.rollout import (
    Outcome,
    RunControl,
    order_for,
    run_rollout,
)
from orchestrator.taskgroups import single_error

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from rich.console import Console

    from orchestrator.cli._wiring import Connection
    from orchestrator.clock import Clock
    from orchestrator.ecs import Instance
    from orchestrator.journal import JournalWriter
    from orchestrator.plan import Plan
    from orchestrator.report import RunFacts
    from orchestrator.rollout import (
        Approver,
        Event,
        Halt,
        PlanIdentity,
        RolloutResult,
        RunHistory,
    )
    from orchestrator.targets import Skipped

STOP_MARKER: Final = "stop"
CHECK_EVERY: Final = 1.0  # seconds of the run's clock between looks at the stop marker


@dataclass(frozen=True, slots=True)
class Job:
    """One attempt at a run: what to run, on what, what an earlier attempt did, and what
    to show and write (`outputs`, `facts`: the reports' plan and target)."""

    run_id: str
    run_dir: Path
    plan: Plan
    instances: Sequence[Instance]
    skipped: Sequence[Skipped]
    history: RunHistory
    approver: Approver
    facts: RunFacts
    outputs: OutputOptions = field(default_factory=OutputOptions)
    stop_at_once: bool = False  # `orchestrator stop` of a run whose process is gone
    resumable: bool = True  # False against the embedded simulator: it ends with us
    identity: PlanIdentity | None = None  # the plan tags of its RunCommands (the journal's)
    # The client's call counts when this attempt began: its report counts what came
    # after (a rollback that follows a run on its connection counts its own calls only).
    calls_since: RateLimiterStats = field(default_factory=RateLimiterStats)


def not_resumable(run_id: str) -> str:
    """What an interrupted `--sim` run says instead of a resume command: why none works,
    and how to run a demo that can be resumed."""
    return (
        f"run {run_id} ran against the embedded simulator: it cannot be resumed (the "
        "simulator's state ended with this process). For a demo you can resume, start "
        "`orchestrator sim` in another shell and run with `--endpoint URL` (the URL and "
        "the access key it prints)"
    )


def request_stop(run_dir: Path, reason: str) -> Path:
    """Record that the run in `run_dir` is to stop: the marker its live process watches,
    and that a later `resume` obeys (it sends nothing new). On disk when this returns
    (the file and its directory entry synced): a stop killed right after still sticks."""
    marker = run_dir / STOP_MARKER
    partial = marker.with_name(f".{STOP_MARKER}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, (reason + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    partial.replace(marker)  # whole or absent: a reader never sees half a reason
    directory = os.open(run_dir, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return marker


def recorded_stop(run_dir: Path) -> str | None:
    """The reason of the stop recorded for the run in `run_dir`, if one was."""
    try:
        text = (run_dir / STOP_MARKER).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return text or "stopped by orchestrator stop"


async def execute(job: Job, conn: Connection, journal: JournalWriter, console: Console) -> int:
    """Run `job` to its end (or its interruption); print the summary, write the reports;
    the exit code. What the targets step and the journal header built stays out of the
    garbage collector's full scans until the reports are written (`_heap`)."""
    with frozen_heap():
        return await _execute(job, conn, journal, console)


async def _execute(job: Job, conn: Connection, journal: JournalWriter, console: Console) -> int:
    for secret in conn.secrets:
        register_secret(secret)
    limiter = conn.client.rate_limiter
    outputs = RunOutputs(
        job.outputs,
        console,
        clock=conn.clock,
        api_calls=(lambda: sum(limiter.stats().calls.values())) if limiter else None,
        skipped_before_dispatch=len(job.skipped),
    )
    control = RunControl()
    if job.stop_at_once:
        control.stop(recorded_stop(job.run_dir) or "stopped by orchestrator stop")

    def sink(event: Event) -> None:
        outputs(event)
        journal(event)

    result: RolloutResult | None = None
    ended_by: OrchestratorError | None = None  # what ended the run early, if anything
    signals: list[signal.Signals] = []
    try:
        with anyio.CancelScope() as everything:
            async with anyio.create_task_group() as group:
                resume = (
                    f"`orchestrator resume {job.run_id}` continues"
                    if job.resumable
                    else "the embedded simulator's run cannot be resumed"
                )
                group.start_soon(_obey_signals, control, everything, console, resume, signals)
                group.start_soon(_watch_stop_marker, control, conn.clock, job.run_dir)
                with outputs:
                    result = await run_rollout(
                        job.plan,
                        conn.client,
                        job.instances,
                        run_id=job.run_id,
                        clock=conn.clock,
                        sink=sink,
                        hooks=journal,
                        order=order_for(job.plan.order),
                        approver=job.approver,
                        history=job.history,
                        control=control,
                        identity=job.identity,
                        # Everything the client called since the attempt began (the
                        # targets step and the guards too) is the run's.
                        calls_since=job.calls_since,
                    )
                group.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        error = single_error(group)
        if not isinstance(error, OrchestratorError) or outputs.collector.result is None:
            # Before the run began (e.g. the quota cannot cover it): nothing to summarise.
            if isinstance(error, OrchestratorError):
                await journal.finish(exit_code_for(error))
                if error.retryable:
                    # An outage before the first send: nothing went out, and the same
                    # run can start again where it stands (unless its simulator died).
                    console.print(
                        f"nothing was sent; continue it with: orchestrator resume {job.run_id}"
                        if job.resumable
                        else f"nothing was sent; {not_resumable(job.run_id)}",
                        soft_wrap=True,
                    )
            raise error from group
        ended_by = error  # the run reported what it knew (RunFinished) before it ended
    if ended_by is not None:
        code = exit_code_for(ended_by)
    else:
        code = exit_code(result) if result is not None else ExitCode.INTERRUPTED  # 2nd signal
    await journal.finish(code)
    outputs.finish(replace(job.facts, exit_code=code), job.skipped)
    _tell_how_it_ended(
        job,
        console,
        partial=outputs.collector.result,
        result=result,
        error=ended_by,
        signals=signals,
    )
    return code


def _tell_how_it_ended(
    job: Job,
    console: Console,
    *,
    partial: RolloutResult | None,
    result: RolloutResult | None,
    error: OrchestratorError | None,
    signals: Sequence[signal.Signals],
) -> None:
    """After the summary: what still runs, why it ended (stderr), and, last on stdout,
    how to continue it."""
    running = len(partial.in_flight) if result is None and partial is not None else 0
    if running:
        console.print(
            f"\n[yellow]{running} instances were still running[/]: their "
            "invocations go on; nothing more was dispatched"
        )
    why = _why_it_ended(error, signals, result, running)
    if why:
        make_console(stderr=True).print(why, soft_wrap=True)
    halt = result.halt if result is not None else None
    if result is None or (halt is not None and halt.reason in {"interrupted", "unanswered"}):
        # The last line on stdout, whatever ended the run: scripts and people read it.
        if job.resumable:
            console.print(f"continue it with: orchestrator resume {job.run_id}", soft_wrap=True)
        else:
            console.print(not_resumable(job.run_id), soft_wrap=True)


def _why_it_ended(
    error: OrchestratorError | None,
    signals: Sequence[signal.Signals],
    result: RolloutResult | None,
    running: int,
) -> str:
    """The one line on stderr that says why an interrupted run ended ("" otherwise)."""
    if error is not None:
        return f"[bold red]error:[/] {escape(str(error))}"
    if not signals:
        return ""
    name = signals[-1].name
    if result is None:
        return (
            f"[yellow]interrupted[/] by {name} twice: exited at once, {running} instances "
            "still running"
        )
    return f"[yellow]interrupted[/] by {name}: nothing more was sent, what ran was followed"


async def _obey_signals(
    control: RunControl,
    everything: anyio.CancelScope,
    console: Console,
    resume: str,
    received: list[signal.Signals],
) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            received.append(signal.Signals(signum))
            if control.request:
                console.print("[yellow]interrupted again: exiting now[/]")
                everything.cancel()
                return
            console.print(
                "[yellow]interrupted: nothing more is sent; waiting for what runs to finish "
                f"(again to exit now{'; ' + resume if resume else ''})[/]",
                soft_wrap=True,
            )
            control.drain("interrupted: dispatch stopped, what ran was followed to its end")


async def _watch_stop_marker(control: RunControl, clock: Clock, run_dir: Path) -> None:
    while (reason := recorded_stop(run_dir)) is None:
        await clock.sleep(CHECK_EVERY)
    control.stop(reason)


def halt_exit_code(halt: Halt) -> ExitCode:
    """A gate or an operator halts (3), an interruption is 130; the API refusing the run
    is its own kind of failure."""
    if halt.reason in {"gate", "breach", "denied", "stopped", "zone_breach"}:
        return ExitCode.HALTED
    if halt.reason == "interrupted":
        return ExitCode.INTERRUPTED
    kind = api.kind_of(halt.code, 0) if halt.code else None
    if kind is api.ErrorKind.QUOTA:
        return ExitCode.QUOTA
    if kind is api.ErrorKind.AUTH:
        return ExitCode.AUTH
    return ExitCode.API_ERROR


def exit_code(result: RolloutResult) -> ExitCode:
    """The exit code of a whole run."""
    counts = result.counts()
    if result.halt is not None:
        return halt_exit_code(result.halt)
    ran = counts[Outcome.SUCCEEDED] + counts[Outcome.FAILED]
    # Skipped instances (before dispatch, or refused by RunCommand) are reported but do
    # not fail the run; a run in which nothing ran at all does.
    bad = (
        counts[Outcome.FAILED] + counts[Outcome.UNDELIVERED] + counts[Outcome.STOPPED]
        + counts[Outcome.NOT_SENT]
    )  # fmt: skip
    if bad or not ran:
        return ExitCode.FAILED
    return ExitCode.OK
