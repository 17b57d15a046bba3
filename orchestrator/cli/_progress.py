"""Live progress of a rollout, as an event sink.

On a terminal: one bar per wave, with its counts by outcome and its gate (counted errors
of the threshold), redrawn in place so a 10,000-instance run never scrolls the screen.
Elsewhere (a CI log): one line when a wave starts and one when it ends; with `verbose`,
also one per batch sent and one per instance finished. Otherwise per-instance events are
only counted, never printed. Gate steps are rare and decisive, so they are
printed in both modes, one line each, with their numbers: the gate's decision, the breach
and the stops it sent, verify, pauses (until when) and approvals (how to give one; the
live display stands aside while a person is asked).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Self

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from orchestrator.rollout import (
    ApprovalDenied,
    ApprovalGranted,
    ApprovalRequested,
    BatchDispatched,
    BreachStopSent,
    Event,
    GateDecided,
    GateEvaluated,
    InstanceFinished,
    Outcome,
    RunFinished,
    Throttled,
    Verdict,
    VerifyFinished,
    VerifyStarted,
    WaveFinished,
    WavePaused,
    WaveStarted,
)

if TYPE_CHECKING:
    from types import TracebackType

    from rich.console import Console
    from rich.progress import TaskID

    from orchestrator.rollout import GateDecision


def _counts_text(counts: Counter[Outcome]) -> str:
    parts = [f"[green]{counts[Outcome.SUCCEEDED]} ok[/]"]
    for outcome, style in (
        (Outcome.FAILED, "red"), (Outcome.UNDELIVERED, "yellow"),
        (Outcome.STOPPED, "yellow"), (Outcome.SKIPPED, "dim"),
    ):  # fmt: skip
        if counts[outcome]:
            parts.append(f"[{style}]{counts[outcome]} {outcome.value}[/]")
    return ", ".join(parts)


class ProgressDisplay:
    """An `EventSink` that shows a rollout as it runs; use it as a context manager."""

    def __init__(self, console: Console, *, verbose: bool = False) -> None:
        self._console = console
        self._live = console.is_terminal
        self._verbose = verbose and not self._live
        self._progress = Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._counts: dict[str, Counter[Outcome]] = {}
        self._gates: dict[str, GateDecision] = {}
        self._asking = False  # the live display stands aside while a person is asked
        self.throttles = 0
        self.finished: RunFinished | None = None

    def __enter__(self) -> Self:
        if self._live:
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live:
            self._progress.stop()

    def __call__(self, event: Event) -> None:
        match event:
            case WaveStarted(name=name, size=size, batches=batches):
                self._counts[name] = Counter()
                self._tasks[name] = self._progress.add_task(name, total=size, counts="")
                if not self._live:
                    self._console.print(f"wave {name}: {size} instances in {batches} batches")
            case BatchDispatched():
                self._detail(event)
            case InstanceFinished(result=result):
                self._count(result.wave, result.outcome)
                self._detail(event)
            case Throttled():
                self.throttles += 1
            case WaveFinished(name=name):
                if not self._live:
                    counts = self._counts.get(name, Counter())
                    self._console.print(f"wave {name} done: {_counts_text(counts)}")
            case GateEvaluated(decision=decision):
                self._gates[decision.name] = decision
                self._refresh(decision.name)
            case RunFinished():
                self.finished = event
            case _:
                self._gate_step(event)

    def _detail(self, event: BatchDispatched | InstanceFinished) -> None:
        """With `verbose`, off a terminal: a line per batch sent and instance finished."""
        if not self._verbose:
            return
        if isinstance(event, BatchDispatched):
            path = f".{event.split_path}" if event.split_path else ""
            self._console.print(
                f"batch {event.wave}/{event.batch}{path}: {len(event.instance_ids)} instances, "
                f"{event.invoke_id}"
            )
        else:
            result = event.result
            code = "" if result.exit_code is None else f" exit {result.exit_code}"
            self._console.print(f"{result.instance_id}: {result.outcome.value}{code}")

    def _gate_step(self, event: Event) -> None:
        """One line per gate step, on a terminal and in a log alike."""
        line = _gate_line(event)
        if isinstance(event, ApprovalRequested) and self._live and not self._asking:
            self._asking = True
            self._progress.stop()  # a prompt under a live display would be redrawn over
        if line:
            self._console.print(line, soft_wrap=True)
        if isinstance(event, ApprovalGranted | ApprovalDenied) and self._asking:
            self._asking = False
            self._progress.start()

    def _count(self, wave: str, outcome: Outcome) -> None:
        counts = self._counts.setdefault(wave, Counter())
        counts[outcome] += 1
        task = self._tasks.get(wave)
        if task is not None:
            self._progress.update(task, advance=1)
        self._refresh(wave)

    def _refresh(self, wave: str) -> None:
        task = self._tasks.get(wave)
        if task is None:
            return
        text = _counts_text(self._counts.get(wave, Counter()))
        gate = self._gates.get(wave)
        if gate is not None:
            style = "red" if gate.verdict is Verdict.BREACH else "dim"
            text += f" [{style}]gate {gate.errors}/{gate.limit_text}[/]"
        self._progress.update(task, counts=text)


def _decision_line(decision: GateDecision) -> str:
    if decision.verdict is Verdict.BREACH:
        return f"[bold red]gate {decision.name}: breach[/] — {escape(decision.summary())}"
    if decision.verdict is Verdict.INCONCLUSIVE:
        return f"[yellow]gate {decision.name}: inconclusive[/] — {escape(decision.reason)}"
    errors = "error" if decision.errors == 1 else "errors"
    return (
        f"[green]gate {decision.name}: pass[/] ({decision.errors} {errors}, "
        f"max_errors {decision.limit_text})"
    )


def _gate_line(event: Event) -> str:
    """The line a gate step prints ("" for events that print nothing here)."""
    match event:
        case GateDecided(decision=decision):
            return _decision_line(decision)
        case BreachStopSent(name=name, invocations=invocations, instances=instances):
            return (
                f"[yellow]wave {name}: StopInvocation sent to {instances} running instances "
                f"({invocations} invocations): stop requested[/]"
            )
        case VerifyStarted(name=name, instances=instances):
            return f"verify {name}: on {instances} succeeded instances"
        case VerifyFinished(name=name, passed=passed, failed=failed, inconclusive=unsure):
            problem = f"; {escape(event.problem)}" if event.problem else ""
            return (
                f"verify {name}: {passed} passed, {failed} failed, {unsure} inconclusive{problem}"
            )
        case WavePaused(name=name, seconds=seconds, until=until):
            return f"pause after wave {name}: {seconds:g} s, until {until:%H:%M:%S}Z"
        case ApprovalRequested(name=name, reason=reason, how=how):
            return (
                f"[bold]waiting for approval of wave {escape(name)}[/] ({escape(reason)}): "
                f"{escape(how)}"
            )
        case ApprovalGranted(name=name):
            return f"[green]wave {escape(name)} approved[/]"
        case ApprovalDenied(name=name):
            return f"[red]wave {escape(name)} not approved[/]"
        case _:
            return ""
