"""A rollout's events as structured log lines, for CI logs and log pipelines.

Off a terminal nobody watches a progress bar: a log is read after the fact, or by a
machine. So each meaningful event becomes one structlog line with a stable name and flat
fields (ids, counts, numbers; of an instance's output only its last 200 characters),
and the names are documented in docs/logging.md. Per-instance lines are where a
10,000-instance run would drown its log, so they are rate limited: at most `burst` lines
of a kind per `window` seconds of the run's clock, then one `<name>.suppressed` line with
the count of what was held back once the window rolls over (and at the end of each wave,
so no count is lost). Successes are debug lines (`-v`); the wave's running numbers come
as `wave.progress` at most once per window instead. Every line goes through the processors
of `configure_logging`, secret redaction included.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING, Final

import structlog

from orchestrator.clock import clock_info
from orchestrator.rollout import (
    ApprovalDenied,
    ApprovalGranted,
    ApprovalRequested,
    BatchDispatched,
    BatchRefused,
    BreachStopSent,
    GateDecided,
    GateEvaluated,
    InstanceFinished,
    InstanceRejected,
    Outcome,
    RunFinished,
    RunStarted,
    Throttled,
    Verdict,
    VerifyFinished,
    VerifyStarted,
    WaveFinished,
    WavePaused,
    WaveStarted,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from structlog.typing import FilteringBoundLogger

    from orchestrator.clock import Clock
    from orchestrator.rollout import Event, GateDecision, InstanceResult, RolloutResult

TAIL: Final = 200  # characters of an output (or a message) a line may carry
BURST: Final = 20
WINDOW: Final = 10.0  # seconds of the run's clock

# Outcomes worth a line at info level; the rest are debug lines.
_NOTABLE: Final = frozenset({Outcome.FAILED, Outcome.UNDELIVERED, Outcome.STOPPED})


class _Limit:
    """At most `burst` lines per `window` seconds; counts (by kind) what it holds back."""

    def __init__(self, name: str, level: int, burst: int, window: float) -> None:
        self.name = name  # of the line that reports the held-back count
        self.level = level
        self.burst = burst
        self.window = window
        self.started = float("-inf")
        self.sent = 0
        self.held: Counter[str] = Counter()

    def rolls_over(self, now: float) -> bool:
        return now - self.started >= self.window

    def restart(self, now: float) -> None:
        self.started = now
        self.sent = 0

    def admit(self, kind: str) -> bool:
        """Whether one more line fits in this window; if not, it is counted as held."""
        if self.sent < self.burst:
            self.sent += 1
            return True
        self.held[kind] += 1
        return False


class EventLog:
    """An `EventSink` that logs a rollout through structlog (see docs/logging.md)."""

    def __init__(
        self,
        *,
        clock: Clock,
        burst: int = BURST,
        window: float = WINDOW,
        logger: FilteringBoundLogger | None = None,
        skipped_before_dispatch: int = 0,
    ) -> None:
        self._clock = clock
        self._time = clock_info(clock)  # which clock `duration_s` is on
        # The run's result holds only the instances it dispatched or settled; those
        # skipped before dispatch are known to the caller alone, and run.finished
        # counts them too, so its `skipped` is the summary's.
        self._skipped_before = skipped_before_dispatch
        self._window = window
        self._log: FilteringBoundLogger = (
            logger if logger is not None else structlog.get_logger("orchestrator.events")
        )
        self._finished = _Limit("instance.finished.suppressed", logging.INFO, burst, window)
        self._rejected = _Limit("instance.rejected.suppressed", logging.WARNING, burst, window)
        self._throttled = _Limit("throttled.suppressed", logging.WARNING, burst, window)
        self._run_id = ""
        self._names: dict[int, str] = {}  # wave index → name
        self._sizes: dict[str, int] = {}
        self._counts: dict[str, Counter[Outcome]] = {}
        self._errors: dict[str, int] = {}  # the gate's running count, per wave
        self._reported: dict[str, float] = {}  # when wave.progress was last logged

    def __call__(self, event: Event) -> None:
        match event:
            case RunStarted():
                self._run_id = event.run_id
                self._emit(
                    logging.INFO,
                    "run.started",
                    plan=event.plan_name,
                    instances=event.instances,
                    waves=len(event.wave_sizes),
                    wave_sizes=list(event.wave_sizes),
                )
            case WaveStarted():
                self._wave_started(event)
            case BatchDispatched():
                self._emit(
                    logging.DEBUG,
                    "batch.dispatched",
                    wave=self._name(event.wave),
                    wave_index=event.wave,
                    batch=event.batch,
                    split=event.split_path,
                    invoke_id=event.invoke_id,
                    instances=len(event.instance_ids),
                )
            case BatchRefused():
                self._emit(
                    logging.WARNING,
                    "batch.refused",
                    wave=self._name(event.wave),
                    wave_index=event.wave,
                    batch=event.batch,
                    split=event.split_path,
                    state=event.state.value,
                    code=event.code,
                    message=_clip(event.message),
                )
            case InstanceRejected():
                self._limited(
                    self._rejected,
                    "instance.rejected",
                    "",
                    wave=self._name(event.wave),
                    instance_id=event.instance_id,
                    code=event.code,
                    message=_clip(event.message),
                )
            case InstanceFinished(result=result):
                self._instance_finished(result)
            case Throttled():
                self._limited(
                    self._throttled, "throttled", "", action=event.action, rate=event.rate
                )
            case GateEvaluated(decision=decision):
                self._errors[decision.name] = decision.errors
                self._emit(logging.DEBUG, "gate.evaluated", **_decision_fields(decision))
            case GateDecided(decision=decision):
                level = logging.INFO if decision.verdict is Verdict.PASS else logging.WARNING
                self._emit(level, "gate.decided", **_decision_fields(decision))
            case _:
                self._step(event)

    def _step(self, event: Event) -> None:
        """The rarer events of a wave's end and of the run's end."""
        match event:
            case BreachStopSent():
                self._emit(
                    logging.WARNING,
                    "breach.stop_sent",
                    wave=event.name,
                    wave_index=event.wave,
                    invocations=event.invocations,
                    instances=event.instances,
                )
            case VerifyStarted():
                self._emit(
                    logging.INFO,
                    "verify.started",
                    wave=event.name,
                    wave_index=event.wave,
                    instances=event.instances,
                )
            case VerifyFinished():
                clean = not (event.failed or event.inconclusive or event.problem)
                self._emit(
                    logging.INFO if clean else logging.WARNING,
                    "verify.finished",
                    wave=event.name,
                    wave_index=event.wave,
                    passed=event.passed,
                    failed=event.failed,
                    inconclusive=event.inconclusive,
                    problem=_clip(event.problem),
                )
            case WaveFinished():
                self._flush_all()
                self._emit(
                    logging.INFO,
                    "wave.finished",
                    wave=event.name,
                    wave_index=event.index,
                    size=self._sizes.get(event.name, sum(event.counts.values())),
                    **_count_fields(event.counts),
                )
            case WavePaused():
                self._emit(
                    logging.INFO,
                    "wave.paused",
                    wave=event.name,
                    wave_index=event.wave,
                    seconds=event.seconds,
                    until=event.until.isoformat(),
                )
            case ApprovalRequested():
                # A run that waits for a person is worth a line even with -q.
                self._emit(
                    logging.WARNING,
                    "approval.requested",
                    wave=event.name,
                    wave_index=event.wave,
                    reason=event.reason,
                    how=event.how,
                )
            case ApprovalGranted():
                self._emit(logging.INFO, "approval.granted", wave=event.name, wave_index=event.wave)
            case ApprovalDenied():
                self._emit(
                    logging.WARNING, "approval.denied", wave=event.name, wave_index=event.wave
                )
            case RunFinished():
                self._flush_all()
                self._run_finished(event.result, interrupted=event.interrupted)
            case _:
                # InstanceOutput: whole outputs never go to a log (`--output-dir` keeps them).
                return

    def _wave_started(self, event: WaveStarted) -> None:
        self._names[event.index] = event.name
        self._sizes[event.name] = event.size
        self._counts[event.name] = Counter()
        self._reported[event.name] = self._clock.monotonic()
        self._emit(
            logging.INFO,
            "wave.started",
            wave=event.name,
            wave_index=event.index,
            size=event.size,
            batches=event.batches,
        )

    def _instance_finished(self, result: InstanceResult) -> None:
        counts = self._counts.setdefault(result.wave, Counter())
        counts[result.outcome] += 1
        fields = _instance_fields(result)
        if result.outcome in _NOTABLE:
            self._limited(self._finished, "instance.finished", result.outcome.value, **fields)
        else:
            self._emit(logging.DEBUG, "instance.finished", **fields)
        now = self._clock.monotonic()
        if now - self._reported.get(result.wave, now) >= self._window:
            self._reported[result.wave] = now
            self._emit(
                logging.INFO,
                "wave.progress",
                wave=result.wave,
                done=sum(counts.values()),
                size=self._sizes.get(result.wave, 0),
                errors=self._errors.get(result.wave, 0),
                **_count_fields(counts),
            )

    def _run_finished(self, result: RolloutResult, *, interrupted: bool) -> None:
        halt = result.halt
        duration = (
            (result.finished_at - result.started_at).total_seconds()
            if result.started_at is not None and result.finished_at is not None
            else None
        )
        counts = _count_fields(result.counts())
        counts[Outcome.SKIPPED.value] += self._skipped_before
        self._emit(
            logging.WARNING if halt is not None or interrupted else logging.INFO,
            "run.finished",
            instances=len(result.results) + self._skipped_before,
            **counts,
            skipped_before_dispatch=self._skipped_before,
            halt_reason=halt.reason if halt is not None else None,
            # null, not "", for "none": one convention whether or not the run halted.
            halt_code=(halt.code or None) if halt is not None else None,
            halt_wave=(halt.wave or None) if halt is not None else None,
            halt_text=_clip(halt.describe()) if halt is not None else None,
            interrupted=interrupted,
            in_flight=len(result.in_flight),
            api_calls=sum(result.api_calls.values()),
            describe_calls=result.describe_calls(),
            throttles=result.throttles,
            duration_s=duration,
            real_duration_s=self._time.real_seconds(duration) if duration is not None else None,
            clock=self._time.kind,
            time_scale=self._time.time_scale,
        )

    def _limited(self, limit: _Limit, name: str, kind: str, **fields: object) -> None:
        now = self._clock.monotonic()
        if limit.rolls_over(now):
            self._flush(limit)
            limit.restart(now)
        if limit.admit(kind):
            self._emit(limit.level, name, **fields)

    def _flush(self, limit: _Limit) -> None:
        """Report what `limit` held back, if anything, and start counting afresh."""
        if not limit.held:
            return
        kinds = {kind: n for kind, n in sorted(limit.held.items()) if kind}
        self._emit(
            limit.level,
            limit.name,
            suppressed=limit.held.total(),
            window_s=limit.window,
            **kinds,
        )
        limit.held.clear()

    def _flush_all(self) -> None:
        for limit in (self._finished, self._rejected, self._throttled):
            self._flush(limit)

    def _name(self, index: int) -> str:
        return self._names.get(index, str(index))

    def _emit(self, level: int, name: str, **fields: object) -> None:
        self._log.log(level, name, run_id=self._run_id, **fields)


def _instance_fields(result: InstanceResult) -> dict[str, object]:
    return {
        "wave": result.wave,
        "instance_id": result.instance_id,
        "outcome": result.outcome.value,
        "status": result.status,
        "exit_code": result.exit_code,
        "error_code": result.error_code,
        "error_info": _clip(result.error_info),
        "invoke_id": result.invoke_id,
        "zone_id": result.zone_id,
        "output_tail": _tail(result.output),
    }


def _decision_fields(decision: GateDecision) -> dict[str, object]:
    return {
        "wave": decision.name,
        "wave_index": decision.wave,
        "verdict": decision.verdict.value,
        "errors": decision.errors,
        "threshold": decision.threshold,
        "limit": decision.limit_text,
        "size": decision.size,
        "failed": decision.failed,
        "undelivered": decision.undelivered,
        "verify_failed": decision.verify_failed,
        "summary": decision.summary(),
    }


def _count_fields(counts: Mapping[Outcome, int]) -> dict[str, int]:
    return {outcome.value: counts.get(outcome, 0) for outcome in Outcome}


def _tail(text: str) -> str:
    return text.rstrip()[-TAIL:]


def _clip(text: str) -> str:
    return text if len(text) <= TAIL else text[: TAIL - 1] + "…"
