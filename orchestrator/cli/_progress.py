"""Live progress of a rollout, as an event sink.

On a terminal: one bar per wave, with its counts by outcome and its gate (counted errors
of the threshold), and under the bars the pace of the run (instances dispatched and API
calls per second over the last ~10 s, throttles seen, when the current wave should end at
its completion rate) and its latest failures, each with its last output line. It is
redrawn in place at a fixed height (every line cut, never wrapped; the failure table
always has its five rows), so a 10,000-instance run never scrolls the screen.
Off a terminal the structured `EventLog` speaks by default; this display is used there
only when plain text is asked for (`--log-format console`), and then prints one line when
a wave starts and one when it ends; with `verbose`, also one per batch sent and one per
instance finished. Otherwise per-instance events are only counted, never printed. Gate
steps are rare and decisive, so they are printed on a terminal and in plain text alike,
one line each, with their numbers: the gate's decision, the breach and the stops it sent,
verify, pauses (until when) and approvals (how to give one; the live display stands aside
while a person is asked).
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import TYPE_CHECKING, Final, Self

from rich.console import Group
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from rich.text import Text

from orchestrator.clock import SystemClock, clock_info
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
    ZoneVerdict,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from rich.console import Console
    from rich.progress import TaskID

    from orchestrator.clock import Clock, ClockInfo
    from orchestrator.rollout import GateDecision, InstanceResult

RATE_WINDOW: Final = 10.0  # seconds of the run's clock a rate is measured over
LATEST_FAILURES: Final = 5
_FAILURES: Final = frozenset({Outcome.FAILED, Outcome.UNDELIVERED})


def _counts_text(counts: Counter[Outcome]) -> str:
    parts = [f"[green]{counts[Outcome.SUCCEEDED]} ok[/]"]
    for outcome, style in (
        (Outcome.FAILED, "red"), (Outcome.UNDELIVERED, "yellow"),
        (Outcome.STOPPED, "yellow"), (Outcome.SKIPPED, "dim"),
    ):  # fmt: skip
        if counts[outcome]:
            parts.append(f"[{style}]{counts[outcome]} {outcome.value}[/]")
    return ", ".join(parts)


class _Rate:
    """How fast a running total grew over the last `window` seconds.

    It keeps one sample at or before the window's start, so the rate covers the whole
    window (or everything since the first sample, early on).
    """

    def __init__(self, now: float, total: int, window: float = RATE_WINDOW) -> None:
        self._window = window
        self._samples: deque[tuple[float, int]] = deque([(now, total)])

    def observe(self, now: float, total: int) -> None:
        if len(self._samples) > 1 and self._samples[-1][0] == now:
            self._samples.pop()
        self._samples.append((now, total))
        while len(self._samples) > 1 and self._samples[1][0] <= now - self._window:
            self._samples.popleft()

    def per_second(self) -> float | None:
        (first, before), (last, after) = self._samples[0], self._samples[-1]
        if last <= first:
            return None
        return (after - before) / (last - first)


class ProgressDisplay:
    """An `EventSink` that shows a rollout as it runs; use it as a context manager.

    `clock` is the run's clock (rates are per second of it; elapsed times and the ETA
    are real, converted when it is the simulator's scaled clock);
    `api_calls`, when given, returns the API call attempts made so far: the display
    calls it from its refresh thread too, so it must only read.
    """

    def __init__(
        self,
        console: Console,
        *,
        verbose: bool = False,
        clock: Clock | None = None,
        api_calls: Callable[[], int] | None = None,
    ) -> None:
        self._console = console
        self._clock: Clock = clock if clock is not None else SystemClock()
        # People read elapsed times and ETAs as their own time: on the simulator's
        # scaled clock they are converted. Rates stay per second of the run's clock.
        self._real = clock_info(self._clock)
        self._live = console.is_terminal
        self._verbose = verbose and not self._live
        # Every text column is cut, never wrapped: a wrapped line would change the height.
        self._progress = Progress(
            TextColumn("{task.description:<12}", table_column=_cut(max_width=16)),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            # The counts take what the other columns leave, and are cut to it.
            TextColumn("{task.fields[counts]}", table_column=_cut(ratio=1)),
            TimeElapsedColumn(),
            console=console,
            get_time=self._real_now,
            expand=True,
        )
        self._tasks: dict[str, TaskID] = {}
        self._counts: dict[str, Counter[Outcome]] = {}
        self._sizes: dict[str, int] = {}
        self._gates: dict[str, GateDecision] = {}
        self._asking = False  # the live display stands aside while a person is asked
        # The refresh thread renders while the rollout's thread changes what is shown.
        self._lock = threading.Lock()
        self._api_calls = api_calls
        now = self._clock.monotonic()
        self._dispatched = 0
        self._dispatch_rate = _Rate(now, 0)
        self._api_rate = _Rate(now, api_calls() if api_calls is not None else 0)
        self._current = ""  # the wave under way, whose end the ETA forecasts
        self._wave_rate = _Rate(now, 0)
        self._failures: deque[InstanceResult] = deque(maxlen=LATEST_FAILURES)
        self.throttles = 0
        self.finished: RunFinished | None = None
        # Last: Live renders once as it is made.
        self._screen = Live(console=console, get_renderable=self.__rich__, transient=False)

    def _real_now(self) -> float:
        """Real seconds on a clock that never goes back (the bars' elapsed times)."""
        return self._real.real_seconds(self._clock.monotonic())

    def __enter__(self) -> Self:
        if self._live:
            self._screen.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live:
            self._screen.stop()

    def __call__(self, event: Event) -> None:
        match event:
            case WaveStarted(name=name, size=size, batches=batches):
                with self._lock:
                    self._counts[name] = Counter()
                    self._sizes[name] = size
                    self._current = name
                    self._wave_rate = _Rate(self._clock.monotonic(), 0)
                self._tasks[name] = self._progress.add_task(name, total=size, counts="")
                if not self._live:
                    self._console.print(f"wave {name}: {size} instances in {batches} batches")
            case BatchDispatched(instance_ids=instance_ids):
                with self._lock:
                    self._dispatched += len(instance_ids)
                self._detail(event)
            case InstanceFinished(result=result):
                self._count(result)
                self._detail(event)
            case Throttled():
                with self._lock:
                    self.throttles += 1
            case WaveFinished(name=name):
                if not self._live:
                    counts = self._counts.get(name, Counter())
                    self._console.print(f"wave {name} done: {_counts_text(counts)}")
            case GateEvaluated(decision=decision):
                self._gates[decision.name] = decision
                self._refresh(decision.name)
                self._zone_stop(decision)
            case RunFinished():
                self.finished = event
            case _:
                self._gate_step(event)

    def __rich__(self) -> Group:
        """What the live display shows now: the bars, the pace, the latest failures."""
        now = self._clock.monotonic()
        with self._lock:
            pace = self._pace(now)
            failures = _failure_table(self._failures)
        return Group(self._progress, pace, failures)

    def _pace(self, now: float) -> Text:
        self._dispatch_rate.observe(now, self._dispatched)
        parts = [f"dispatch {_per_second(self._dispatch_rate.per_second())}"]
        if self._api_calls is not None:
            calls = self._api_calls()
            self._api_rate.observe(now, calls)
            parts.append(f"API {_per_second(self._api_rate.per_second())} ({calls} calls)")
        parts.append(f"throttled {self.throttles}")
        if self._current:
            done = sum(self._counts[self._current].values())
            self._wave_rate.observe(now, done)
            eta = _eta(self._sizes[self._current] - done, self._wave_rate.per_second(), self._real)
            parts.append(f"ETA {self._current} {eta}")
        return Text("   ".join(parts), no_wrap=True, overflow="ellipsis")

    def _detail(self, event: BatchDispatched | InstanceFinished) -> None:
        """With `verbose`, in plain text: a line per batch sent and instance finished."""
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

    def _zone_stop(self, decision: GateDecision) -> None:
        """A zone stops while its wave goes on: say so at once, with its numbers."""
        zone = decision.zone_breach
        if zone is not None and decision.verdict is Verdict.PASS:
            self._console.print(
                f"[bold red]zone {escape(zone.zone)} stopped[/] in wave "
                f"{escape(decision.name)} — {escape(zone.summary())}"
            )

    def _gate_step(self, event: Event) -> None:
        """One line per gate step, on a terminal and in plain text alike."""
        line = _gate_line(event)
        if isinstance(event, WavePaused) and self._real.kind == "scaled":
            # Its `until` is on the simulator's clock, ahead of the person's: say instead
            # how long the pause really is.
            real = self._real.real_seconds(event.seconds)
            line = (
                f"pause after wave {event.name}: {event.seconds:g} s of the simulator's clock "
                f"({real:g} s real time)"
            )
        if isinstance(event, ApprovalRequested) and self._live and not self._asking:
            self._asking = True
            self._screen.stop()  # a prompt under a live display would be redrawn over
        if line:
            self._console.print(line, soft_wrap=True)
        if isinstance(event, ApprovalGranted | ApprovalDenied) and self._asking:
            self._asking = False
            self._screen.start()

    def _count(self, result: InstanceResult) -> None:
        with self._lock:
            counts = self._counts.setdefault(result.wave, Counter())
            counts[result.outcome] += 1
            if result.outcome in _FAILURES:
                self._failures.append(result)
        task = self._tasks.get(result.wave)
        if task is not None:
            self._progress.update(task, advance=1)
        self._refresh(result.wave)

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


def _cut(*, max_width: int | None = None, ratio: int | None = None) -> Column:
    return Column(no_wrap=True, overflow="ellipsis", max_width=max_width, ratio=ratio)


def _per_second(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.1f}/s"


def _eta(remaining: int, rate: float | None, clock: ClockInfo) -> str:
    """When `remaining` instances are done at `rate` per second of `clock`, in real time."""
    if remaining <= 0:
        return "done"
    if not rate or rate <= 0:
        return "—"
    seconds = round(clock.real_seconds(remaining / rate))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def _last_line(result: InstanceResult) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    return lines[-1].strip() if lines else result.error_info


def _failure_table(failures: deque[InstanceResult]) -> Table:
    """The latest failures, always `LATEST_FAILURES` rows (blank ones until they come)."""
    table = Table(
        Column("latest failures", no_wrap=True, overflow="ellipsis", min_width=19),
        Column("exit", justify="right", no_wrap=True),
        Column("error", no_wrap=True, overflow="ellipsis", max_width=24),
        Column("last output", no_wrap=True, overflow="ellipsis", ratio=1),
        box=None,
        padding=(0, 1),
        pad_edge=False,
        header_style="dim",
        expand=True,
    )
    for result in failures:
        code = "" if result.exit_code is None else str(result.exit_code)
        table.add_row(
            Text(result.instance_id, style="red"),
            code,
            Text(result.error_code or result.outcome.value),
            Text(_last_line(result)),
        )
    for _ in range(LATEST_FAILURES - len(failures)):
        table.add_row("", "", "", "")
    return table


def _decision_line(decision: GateDecision) -> str:
    if decision.verdict is Verdict.BREACH:
        return f"[bold red]gate {decision.name}: breach[/] — {escape(decision.summary())}"
    if decision.verdict is Verdict.INCONCLUSIVE:
        return f"[yellow]gate {decision.name}: inconclusive[/] — {escape(decision.reason)}"
    errors = "error" if decision.errors == 1 else "errors"
    stopped = [z.zone for z in decision.zones if z.verdict is not ZoneVerdict.PASS]
    zones = f"; zones stopped: {escape(', '.join(stopped))}" if stopped else ""
    rate = f"; {escape(decision.rate_text())}" if decision.rate is not None else ""
    return (
        f"[green]gate {decision.name}: pass[/] ({decision.errors} {errors}, "
        f"max_errors {decision.limit_text}{rate}{zones})"
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
