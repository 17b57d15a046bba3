"""One wave: its shape, and dispatch + tracking under its gate.

`shape_waves` is pure: the plan's waves with their instances, their batches, their
execution cap (a wave's `max_concurrency`, a percentage of the wave, overrides the plan's,
a percentage of the whole target set; batches never exceed the cap) and their threshold,
frozen from the wave's size when it starts. `WaveRunner.run` runs one wave as one task
group: the dispatcher sends, the tracker follows, and the wave's `WaveGate` hears every
outcome as soon as it is known. At the (T+1)-th counted error it stops dispatch at once
and, with `on_breach: stop_in_flight`, sends StopInvocation for everything of the run
still running inside `move_on_after(STOP_SEND_GRACE, shield=True)`: the stops go out even
when the run is being cancelled, within a deadline of their own (style.md, item 9).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final

import anyio

from orchestrator.errors import OrchestratorError
from orchestrator.rollout._batches import plan_waves, split_batches
from orchestrator.rollout._events import BreachStopSent, GateEvaluated
from orchestrator.rollout._gates import Verdict, threshold_of
from orchestrator.rollout._results import Halt
from orchestrator.rollout._zone_batches import split_by_zone, zone_caps
from orchestrator.taskgroups import single_error

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from orchestrator.clock import Clock
    from orchestrator.ecs import Instance
    from orchestrator.plan._model import Plan, Wave
    from orchestrator.rollout._batches import WavePlan
    from orchestrator.rollout._capacity import ExecutionSlots
    from orchestrator.rollout._dispatcher import Dispatcher
    from orchestrator.rollout._events import EventSink
    from orchestrator.rollout._gates import GateDecision, WaveGate, ZoneCount
    from orchestrator.rollout._ledger import RunLedger
    from orchestrator.rollout._outcome import Outcome
    from orchestrator.rollout._results import InstanceResult
    from orchestrator.rollout._tracker import InvocationTracker

# Real seconds the StopInvocation calls after a breach may take: an I/O deadline, so an
# anyio scope, not the policy Clock.
STOP_SEND_GRACE: Final = 30.0


@dataclass(frozen=True, slots=True)
class ShapedWave:
    """A wave as it will run: instances and batches, its config, cap and threshold."""

    plan: WavePlan
    config: Wave
    cap: int | None  # instances executing at once (None: only the rate limits)
    threshold: int | None  # counted errors tolerated (None: no limit)
    zone_caps: Mapping[str, int] = field(default_factory=dict)  # max_concurrency_per_zone


def shape_waves(
    plan: Plan,
    instances: Sequence[Instance],
    order: Callable[[Sequence[Instance]], Sequence[Instance]],
) -> tuple[ShapedWave, ...]:
    """Every wave of `plan` over `instances`, deterministically (ClientTokens derive
    from the batch numbers, so a resume must cut the same batches)."""
    limits = plan.limits
    total = len(instances)
    base = limits.max_concurrency.of(total) if limits.max_concurrency is not None else None
    if base == 0 and total:
        raise ValueError("max_concurrency must allow at least one instance")
    # One zone per batch as soon as any wave has a zone budget (`_zone_batches.py`).
    per_zone = any(
        w.max_errors_per_zone is not None or w.max_concurrency_per_zone is not None
        for w in plan.waves
    )
    shaped = []
    waves = plan_waves(plan.waves, instances, batch_size=limits.batch_size, order=order)
    for wave, config in zip(waves, plan.waves, strict=True):
        own = config.max_concurrency
        cap = own.of(wave.size) if own is not None and wave.size else base
        if cap == 0:
            raise ValueError(f"wave {wave.name}: max_concurrency must allow one instance")
        # A batch can never be larger than what may execute at once.
        size = min(limits.batch_size, cap) if cap else limits.batch_size
        caps = zone_caps(config.max_concurrency_per_zone, wave.instances)
        if per_zone:
            batches = split_by_zone(wave.index, wave.instances, size, caps)
        else:
            batches = split_batches(wave.index, wave.instances, size)
        threshold = threshold_of(config.max_errors, wave.size)
        shaped.append(ShapedWave(replace(wave, batches=batches), config, cap, threshold, caps))
    return tuple(shaped)


@dataclass(slots=True)
class WaveRun:
    """What happened in one wave's dispatch: the breach, if any, and how much was still
    running (or being sent) at that moment."""

    breach: GateDecision | None = None
    in_flight: int = 0


class WaveRunner:
    """Runs waves one at a time with the run's dispatcher, tracker and ledger."""

    def __init__(
        self,
        *,
        dispatcher: Dispatcher,
        tracker: InvocationTracker,
        ledger: RunLedger,
        slots: ExecutionSlots,
        sink: EventSink,
        clock: Clock,
        stop_in_flight: bool,
    ) -> None:
        self._dispatcher = dispatcher
        self._tracker = tracker
        self._ledger = ledger
        self._slots = slots
        self._sink = sink
        self._clock = clock
        self._stop_in_flight = stop_in_flight

    async def run(
        self,
        wave: ShapedWave,
        gate: WaveGate,
        *,
        prior: Sequence[InstanceResult] = (),
        on_zone_stop: Callable[[ZoneCount], None] | None = None,
    ) -> WaveRun:
        """Dispatch and track `wave` until every instance of it has an outcome. `prior`:
        the results an earlier attempt of the run recorded; the gate counts them first.
        A zone whose `max_errors_per_zone` breaks (and does not halt the wave) stops at
        once: nothing more of it is sent, its running instances are stopped with
        `stop_in_flight`, and `on_zone_stop` hears of it."""
        self._slots.resize(wave.cap, wave.zone_caps)
        outcome = WaveRun()
        breached = anyio.Event()

        def observe(instance_id: str, result: Outcome) -> None:
            judge(gate.observe(instance_id, result))

        def judge(decision: GateDecision | None) -> None:
            if decision is None or outcome.breach is not None:
                return
            self._sink(GateEvaluated(decision))
            if decision.zone_breach is not None and decision.verdict is Verdict.PASS:
                zone = decision.zone_breach.zone
                self._dispatcher.stop_zone(zone)
                if self._stop_in_flight:
                    self._tracker.stop_zone(zone)
                if on_zone_stop is not None:
                    on_zone_stop(decision.zone_breach)
            if decision.verdict is Verdict.BREACH:
                outcome.breach = decision
                # Running, or in a RunCommand still waiting for its answer.
                outcome.in_flight = self._tracker.running() + self._ledger.sending_count()
                self._dispatcher.stop(
                    Halt(
                        "breach", message=decision.summary(), wave=wave.plan.name, decision=decision
                    )
                )
                breached.set()

        def stops_sent(invocations: int, instances: int) -> None:
            event = BreachStopSent(
                wave.plan.index, wave.plan.name, invocations, instances, self._clock.now()
            )
            self._sink(event)

        self._ledger.observe(observe)
        self._tracker.on_breach_stop = stops_sent
        try:
            self._replay(gate, prior, judge)
            await dispatch_and_track(
                self._dispatcher,
                self._tracker,
                wave.plan,
                breached=breached if self._stop_in_flight else None,
            )
        finally:
            self._ledger.observe(None)
            self._tracker.on_breach_stop = None
        return outcome

    def _replay(
        self,
        gate: WaveGate,
        prior: Sequence[InstanceResult],
        judge: Callable[[GateDecision | None], None],
    ) -> None:
        """Record an earlier attempt's results. They arrive in wave order, not as they
        completed: judged as one block, the gate decides on the numbers the original run
        had."""
        gate.hold()
        for result in prior:
            self._ledger.record(result)
        for decision in gate.release():
            judge(decision)


async def dispatch_and_track(
    dispatcher: Dispatcher,
    tracker: InvocationTracker,
    wave: WavePlan,
    *,
    breached: anyio.Event | None = None,
) -> None:
    """Dispatch and track one wave in one task group; a tracking failure is re-raised.
    Once `breached` is set, everything still running is stopped (StopInvocation)."""
    failures: list[OrchestratorError] = []
    tracker.begin_wave()
    try:
        async with anyio.create_task_group() as group:
            watcher = anyio.CancelScope()

            async def track() -> None:
                try:
                    await tracker.track()
                except OrchestratorError as error:
                    failures.append(error)
                    group.cancel_scope.cancel()
                finally:
                    watcher.cancel()  # nothing is left to stop

            async def stop_after_breach(event: anyio.Event) -> None:
                with watcher:
                    await event.wait()
                if event.is_set():
                    with anyio.move_on_after(STOP_SEND_GRACE, shield=True):
                        await tracker.stop_all()

            group.start_soon(track)
            if breached is not None:
                group.start_soon(stop_after_breach, breached)
            await dispatcher.dispatch(wave)
            tracker.dispatch_finished()
    except BaseExceptionGroup as group_error:
        raise single_error(group_error) from group_error
    if failures:
        raise failures[0]
