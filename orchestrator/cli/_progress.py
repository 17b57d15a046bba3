"""Live progress of a rollout, as an event sink.

On a terminal: one bar per wave, with its counts by outcome, redrawn in place so a
10,000-instance run never scrolls the screen. Elsewhere (a CI log): one line when a wave
starts and one when it ends. Per-instance events are only counted, never printed.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Self

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from orchestrator.rollout import (
    Event,
    InstanceFinished,
    InstanceRejected,
    Outcome,
    RunFinished,
    Throttled,
    WaveFinished,
    WaveStarted,
)

if TYPE_CHECKING:
    from types import TracebackType

    from rich.console import Console
    from rich.progress import TaskID


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

    def __init__(self, console: Console) -> None:
        self._console = console
        self._live = console.is_terminal
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
            case InstanceFinished(result=result):
                self._count(result.wave, result.outcome)
            case InstanceRejected(instance_id=_, code=_):
                pass  # it arrives again as an InstanceFinished with outcome SKIPPED
            case Throttled():
                self.throttles += 1
            case WaveFinished(name=name):
                if not self._live:
                    counts = self._counts.get(name, Counter())
                    self._console.print(f"wave {name} done: {_counts_text(counts)}")
            case RunFinished():
                self.finished = event
            case _:
                pass

    def _count(self, wave: str, outcome: Outcome) -> None:
        counts = self._counts.setdefault(wave, Counter())
        counts[outcome] += 1
        task = self._tasks.get(wave)
        if task is not None:
            self._progress.update(task, advance=1, counts=_counts_text(counts))
