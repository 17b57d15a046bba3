"""The part `run`, `resume` and `stop` share: a journaled rollout under the operator's control.

The rollout's events go to the live display and to the journal; the journal is also its
hooks (each ClientToken is on disk before its RunCommand leaves). Two things can end it
early from outside: signals (the first Ctrl-C or SIGTERM drains: nothing more is sent,
what runs is followed to its end; the second exits at once, leaving a journal
`orchestrator resume` continues from) and the stop marker `orchestrator stop RUN` writes
into the run's directory (checked every second of the run's clock: nothing more is sent
and StopInvocation goes to everything in flight).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final

import anyio

from orchestrator.cli._exit import ExitCode, exit_code_for
from orchestrator.cli._logging import register_secret
from orchestrator.cli._outputs import OutputOptions, RunOutputs
from orchestrator.ecs import codes
from orchestrator.errors import OrchestratorError
from orchestrator.rollout import (
    Outcome,
    RunControl,
    order_for,
    run_rollout,
    single_error,
)

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
    identity: PlanIdentity | None = None  # the plan tags of its RunCommands (the journal's)


def request_stop(run_dir: Path, reason: str) -> Path:
    """Ask the process running the run in `run_dir` to stop it (the marker it watches)."""
    marker = run_dir / STOP_MARKER
    marker.write_text(reason + "\n", encoding="utf-8")
    return marker


async def execute(job: Job, conn: Connection, journal: JournalWriter, console: Console) -> int:
    """Run `job` to its end (or its interruption); print the summary, write the reports;
    the exit code."""
    for secret in conn.secrets:
        register_secret(secret)
    limiter = conn.client.rate_limiter
    outputs = RunOutputs(
        job.outputs,
        console,
        clock=conn.clock,
        api_calls=(lambda: sum(limiter.stats().calls.values())) if limiter else None,
    )
    control = RunControl()
    if job.stop_at_once:
        control.stop("stopped by orchestrator stop (its process was gone)")

    def sink(event: Event) -> None:
        outputs(event)
        journal(event)

    result: RolloutResult | None = None
    try:
        with anyio.CancelScope() as everything:
            async with anyio.create_task_group() as group:
                group.start_soon(_obey_signals, control, everything, console, job.run_id)
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
                    )
                group.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        error = single_error(group)
        if isinstance(error, OrchestratorError):  # e.g. the quota cannot cover the run
            await journal.finish(exit_code_for(error))
        raise error from group
    code = exit_code(result) if result is not None else ExitCode.INTERRUPTED  # 2nd Ctrl-C
    await journal.finish(code)
    outputs.finish(replace(job.facts, exit_code=code), job.skipped)
    partial = outputs.collector.result
    if result is None and partial is not None and partial.in_flight:
        console.print(
            f"\n[yellow]{len(partial.in_flight)} instances were still running[/]: their "
            "invocations go on; nothing more was dispatched"
        )
    halt = result.halt if result is not None else None
    if result is None or (halt is not None and halt.reason in {"interrupted", "unanswered"}):
        console.print(f"continue it with: orchestrator resume {job.run_id}")
    return code


async def _obey_signals(
    control: RunControl, everything: anyio.CancelScope, console: Console, run_id: str
) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            if control.request:
                console.print("[yellow]interrupted again: exiting now[/]")
                everything.cancel()
                return
            console.print(
                "[yellow]interrupted: nothing more is sent; waiting for what runs to finish "
                f"(again to exit now; `orchestrator resume {run_id}` continues)[/]",
                soft_wrap=True,
            )
            control.drain("interrupted: dispatch stopped, what ran was followed to its end")


async def _watch_stop_marker(control: RunControl, clock: Clock, run_dir: Path) -> None:
    marker = run_dir / STOP_MARKER
    while not marker.exists():
        await clock.sleep(CHECK_EVERY)
    reason = marker.read_text(encoding="utf-8").strip() or "stopped by orchestrator stop"
    control.stop(reason)


def halt_exit_code(halt: Halt) -> ExitCode:
    """A gate or an operator halts (3), an interruption is 130; the API refusing the run
    is its own kind of failure."""
    if halt.reason in {"gate", "breach", "denied", "stopped"}:
        return ExitCode.HALTED
    if halt.reason == "interrupted":
        return ExitCode.INTERRUPTED
    kind = codes.kind_of(halt.code, 0) if halt.code else None
    if kind is codes.ErrorKind.QUOTA:
        return ExitCode.QUOTA
    if kind is codes.ErrorKind.AUTH:
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
