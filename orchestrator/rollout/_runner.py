"""run_rollout(): from resolved instances to every instance's outcome, wave after wave.

The runner checks the quotas (nothing is sent when they cannot cover the run), cuts the
instances into waves and batches, and runs each wave as one task group in which the
dispatcher sends batches while the tracker follows them; the next wave starts only when
every instance of this one has an outcome. Between waves `hooks.after_wave` decides
whether to go on (gates plug in there); before every RunCommand `hooks.before_dispatch`
is awaited (the journal records the ClientToken there).

Stopping: a halt (a refusal from RunCommand, or a gate) sends nothing more and marks what
was never sent NOT_SENT; what was already accepted is tracked to its end. Cancellation
(Ctrl-C) stops dispatch at once: the runner emits `RunFinished(result, interrupted=True)`
with everything known so far (instances that may be running are listed in `in_flight`,
never given an outcome they did not reach) and re-raises; nothing is stopped on the
instances, a resume picks them up. A tracking failure is reported the same way and
re-raised.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING, Protocol

import anyio

from orchestrator.errors import OrchestratorError
from orchestrator.rollout._batches import keep_order, plan_waves
from orchestrator.rollout._capacity import ExecutionSlots
from orchestrator.rollout._dispatcher import BatchAttempt, Dispatcher
from orchestrator.rollout._events import (
    EventSink,
    RunFinished,
    RunStarted,
    Throttled,
    WaveFinished,
    WaveStarted,
)
from orchestrator.rollout._ledger import RunLedger
from orchestrator.rollout._outcome import PERIODIC_MODES
from orchestrator.rollout._quota import QuotaNeeds, check_quota
from orchestrator.rollout._results import (
    Halt,
    InstanceResult,
    Outcome,
    RolloutResult,
    WaveSummary,
)
from orchestrator.rollout._tracker import InvocationTracker

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from orchestrator.clock import Clock
    from orchestrator.ecs import EcsClient, Instance, RateLimiterStats
    from orchestrator.plan._model import Plan
    from orchestrator.rollout._batches import WavePlan


class RolloutHooks(Protocol):
    """Where journals and gates plug into a run."""

    async def before_dispatch(self, attempt: BatchAttempt) -> None:
        """Awaited before each RunCommand is sent (once per ClientToken)."""
        ...

    async def after_wave(self, wave: WavePlan, results: Sequence[InstanceResult]) -> bool:
        """Awaited after each wave; False stops the run (a gate said no)."""
        ...


class NoHooks:
    """Hooks that record nothing and always go on."""

    async def before_dispatch(self, attempt: BatchAttempt) -> None:
        del attempt

    async def after_wave(self, wave: WavePlan, results: Sequence[InstanceResult]) -> bool:
        del wave, results
        return True


async def run_rollout(
    plan: Plan,
    client: EcsClient,
    instances: Sequence[Instance],
    *,
    run_id: str,
    clock: Clock,
    sink: EventSink,
    hooks: RolloutHooks | None = None,
    order: Callable[[Sequence[Instance]], Sequence[Instance]] = keep_order,
) -> RolloutResult:
    """Run `plan.command` on `instances` (the runnable targets), wave after wave.

    Raises `QuotaTooSmall` before sending anything when the account's quotas cannot cover
    the run (unless `plan.limits.ignore_quota`). Returns the result of the whole run,
    halted or not; on cancellation or a tracking failure, emits `RunFinished` with the
    partial result and re-raises.
    """
    limits = plan.limits
    total = len(instances)
    cap = limits.max_concurrency.of(total) if limits.max_concurrency is not None else None
    if cap == 0 and total:
        raise ValueError("max_concurrency must allow at least one instance")
    # A batch can never be larger than what may execute at once.
    batch_size = min(limits.batch_size, cap) if cap else limits.batch_size
    waves = plan_waves(plan.waves, instances, batch_size=batch_size, order=order)
    limiter = client.rate_limiter
    before = limiter.stats() if limiter is not None else None  # the quota check counts too
    if total and not limits.ignore_quota:
        batches = sum(len(wave.batches) for wave in waves)
        kept = batches if plan.command.keep_command else 0
        await check_quota(client, QuotaNeeds(invocations=total, kept_commands=kept))
    run = _Rollout(
        plan,
        client,
        instances,
        waves,
        run_id=run_id,
        clock=clock,
        sink=sink,
        hooks=hooks if hooks is not None else NoHooks(),
        slots=ExecutionSlots(cap),
        calls_before=before,
    )
    return await run.run()


class _Rollout:
    """The state of one run between its start and its `RunFinished`."""

    def __init__(
        self,
        plan: Plan,
        client: EcsClient,
        instances: Sequence[Instance],
        waves: Sequence[WavePlan],
        *,
        run_id: str,
        clock: Clock,
        sink: EventSink,
        hooks: RolloutHooks,
        slots: ExecutionSlots,
        calls_before: RateLimiterStats | None,
    ) -> None:
        self._plan = plan
        self._instances = instances
        self._waves = waves
        self._run_id = run_id
        self._clock = clock
        self._sink = sink
        self._hooks = hooks
        self._limiter = client.rate_limiter
        self._ledger = RunLedger(sink)
        command = plan.command
        self._tracker = InvocationTracker(
            client,
            run_id=run_id,
            clock=clock,
            slots=slots,
            ledger=self._ledger,
            periodic=command.repeat_mode in PERIODIC_MODES or command.frequency is not None,
            delivery_timeout=plan.limits.delivery_timeout,
        )
        self._dispatcher = Dispatcher(
            client,
            command,
            run_id=run_id,
            clock=clock,
            slots=slots,
            tracker=self._tracker,
            ledger=self._ledger,
            sink=sink,
            before_dispatch=hooks.before_dispatch,
        )
        self._summaries: dict[int, WaveSummary] = {}
        self._before = calls_before
        self._started = clock.now()

    async def run(self) -> RolloutResult:
        sizes = tuple(wave.size for wave in self._waves)
        self._sink(
            RunStarted(self._run_id, self._plan.name, len(self._instances), sizes, self._started)
        )
        listening = (
            self._limiter.listening(lambda n: self._sink(Throttled(n.action, n.rate)))
            if self._limiter is not None
            else nullcontext()
        )
        try:
            with listening:
                halt = await self._waves_in_turn()
        except anyio.get_cancelled_exc_class():
            result = self._finish(Halt("interrupted", message="the run was cancelled"))
            self._sink(RunFinished(result, interrupted=True))
            raise
        except OrchestratorError as error:
            code = str(getattr(error, "code", type(error).__name__))
            self._sink(
                RunFinished(self._finish(Halt("tracking", code, str(error))), interrupted=True)
            )
            raise
        result = self._finish(halt)
        self._sink(RunFinished(result))
        return result

    async def _waves_in_turn(self) -> Halt | None:
        ledger = self._ledger
        for wave in self._waves:
            started = self._clock.now()
            self._sink(WaveStarted(wave.index, wave.name, wave.size, len(wave.batches), started))
            self._tracker.begin_wave()
            await _run_wave(self._dispatcher, self._tracker, wave)
            halt = self._dispatcher.halt
            if halt is not None:
                ledger.settle_not_sent(wave.instances, wave.name, _not_sent_reason(halt))
            counts = _count(ledger, wave)
            self._summaries[wave.index] = WaveSummary(
                wave.index, wave.name, wave.size, counts, started, self._clock.now()
            )
            self._sink(WaveFinished(wave.index, wave.name, counts, self._clock.now()))
            if halt is not None:
                return halt
            results = [
                ledger.results[i.instance_id]
                for i in wave.instances
                if i.instance_id in ledger.results
            ]
            if not await self._hooks.after_wave(wave, results):
                return Halt("gate", message=f"a gate stopped the run after wave {wave.name!r}")
        return None

    def _finish(self, halt: Halt | None) -> RolloutResult:
        ledger = self._ledger
        for wave in self._waves:
            ledger.settle_not_sent(wave.instances, wave.name, _not_sent_reason(halt))
            if wave.index not in self._summaries:
                self._summaries[wave.index] = WaveSummary(
                    wave.index, wave.name, wave.size, _count(ledger, wave)
                )
        after = self._limiter.stats() if self._limiter is not None else None
        calls, throttles = _delta(self._before, after)
        in_flight = ledger.in_flight()
        ids = [instance.instance_id for instance in self._instances]
        return RolloutResult(
            run_id=self._run_id,
            results=tuple(ledger.results[i] for i in ids if i in ledger.results),
            waves=tuple(self._summaries[index] for index in sorted(self._summaries)),
            api_calls=calls,
            throttles=throttles,
            started_at=self._started,
            finished_at=self._clock.now(),
            halt=halt,
            in_flight=tuple(i for i in ids if i in in_flight),
        )


async def _run_wave(dispatcher: Dispatcher, tracker: InvocationTracker, wave: WavePlan) -> None:
    """Dispatch and track one wave in one task group; a tracking failure is re-raised."""
    failures: list[OrchestratorError] = []
    try:
        async with anyio.create_task_group() as group:

            async def track() -> None:
                try:
                    await tracker.track()
                except OrchestratorError as error:
                    failures.append(error)
                    group.cancel_scope.cancel()

            group.start_soon(track)
            await dispatcher.dispatch(wave)
            tracker.dispatch_finished()
    except BaseExceptionGroup as group_error:
        raise _single(group_error) from group_error
    if failures:
        raise failures[0]


def _single(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one real error inside nested task-group errors (cancellations aside)."""
    leaves: list[BaseException] = []

    def collect(error: BaseException) -> None:
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                collect(inner)
        elif not isinstance(error, anyio.get_cancelled_exc_class()):
            leaves.append(error)

    collect(group)
    return leaves[0] if len(leaves) == 1 else group


def _count(ledger: RunLedger, wave: WavePlan) -> dict[Outcome, int]:
    counts = dict.fromkeys(Outcome, 0)
    for instance in wave.instances:
        result = ledger.results.get(instance.instance_id)
        if result is not None:
            counts[result.outcome] += 1
    return counts


def _not_sent_reason(halt: Halt | None) -> str:
    if halt is None:
        return "not sent"
    detail = f": {halt.code}" if halt.code else ""
    return f"not sent: the run stopped ({halt.reason}{detail})"


def _delta(
    before: RateLimiterStats | None, after: RateLimiterStats | None
) -> tuple[dict[str, int], int]:
    """API attempts per action and throttles during the run."""
    if before is None or after is None:
        return {}, 0
    calls = {
        action: count - before.calls.get(action, 0)
        for action, count in after.calls.items()
        if count - before.calls.get(action, 0)
    }
    return calls, after.total_throttles - before.total_throttles
