"""run_rollout(): from resolved instances to every instance's outcome, wave after wave.

The runner checks the quotas (nothing is sent when they cannot cover the run), shapes
the waves (`_wave.shape_waves`: instances in the plan's order, batches, caps, frozen
thresholds), and runs each wave as one task group in which the dispatcher sends batches
while the tracker follows them and the wave's gate counts every error
(`_wave.WaveRunner`); the next wave starts only when every instance of this one has an
outcome. After a wave: its `verify` (`_verify.py`), the gate's decision (`GateDecided`,
once per wave), `hooks.after_wave`, then, unless it is the last wave, its `pause` on the
injected Clock and its `approval` (the `Approver` answers). Before every RunCommand
`hooks.before_dispatch` is awaited (the journal records the ClientToken there).

Stopping: a halt (a breach, a refusal from RunCommand, a denied approval, a hook) sends
nothing more and marks what was never sent NOT_SENT with the reason ("halted: wave X
breached"); what was already accepted is tracked to its end (and after a breach, with
`on_breach: stop_in_flight`, stopped). Cancellation (Ctrl-C) stops dispatch at once:
the runner emits `RunFinished(result, interrupted=True)` with everything known so far
(instances that may be running are listed in `in_flight`, never given an outcome they did
not reach) and re-raises; nothing is stopped on the instances, a resume picks them up. A
tracking failure (`TrackingAbandoned`: the API kept failing past the commands' deadline,
or refused the credentials) is reported the same way, halt `tracking` with the API's
code, and re-raised.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import anyio

from orchestrator.ecs import error_code_of
from orchestrator.errors import OrchestratorError, TrackingAbandoned
from orchestrator.rollout._approval import Approver, Refuse, ask_approval
from orchestrator.rollout._batches import keep_order
from orchestrator.rollout._capacity import ExecutionSlots
from orchestrator.rollout._control import Request, RunControl
from orchestrator.rollout._dispatcher import Dispatcher
from orchestrator.rollout._events import (
    EventSink,
    GateDecided,
    RunFinished,
    RunStarted,
    Throttled,
    WaveFinished,
    WavePaused,
    WaveStarted,
)
from orchestrator.rollout._gate_rate import rate_rule
from orchestrator.rollout._gate_zones import ZoneBudgets, zone_halt, zone_stopped_reason
from orchestrator.rollout._gates import GateDecision, Verdict, WaveGate
from orchestrator.rollout._guard import PlanIdentity
from orchestrator.rollout._history import NO_HISTORY, RunHistory
from orchestrator.rollout._hooks import NoHooks, RolloutHooks
from orchestrator.rollout._ledger import RunLedger
from orchestrator.rollout._outcome import PERIODIC_MODES, Outcome
from orchestrator.rollout._quota import QuotaNeeds, check_quota
from orchestrator.rollout._results import (
    Halt,
    InstanceResult,
    RolloutResult,
    WaveSummary,
    not_sent_reason,
)
from orchestrator.rollout._tracker import InvocationTracker
from orchestrator.rollout._verify import verify_step
from orchestrator.rollout._wave import (
    STOP_SEND_GRACE,
    ShapedWave,
    WaveRunner,
    shape_waves,
)
from orchestrator.taskgroups import single_error

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from orchestrator.clock import Clock
    from orchestrator.ecs import EcsClient, Instance, RateLimiterStats
    from orchestrator.plan import Plan
    from orchestrator.rollout._batches import WavePlan
    from orchestrator.rollout._gates import ZoneCount


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
    approver: Approver | None = None,
    history: RunHistory = NO_HISTORY,
    control: RunControl | None = None,
    identity: PlanIdentity | None = None,
    calls_since: RateLimiterStats | None = None,
) -> RolloutResult:
    """Run `plan.command` on `instances` (the runnable targets), wave after wave.

    `order` puts the instances in the order waves and batches take them
    (`order_for(plan.order)`); `approver` answers the approvals the gates ask for
    (default: `Refuse`, so a run nobody can approve halts instead of hanging).
    `history` is what an earlier attempt of this run did (a resume: the same plan,
    instances and run id, so the same batches and tokens); `control` ends it early.
    `identity` is the plan's name and digest every RunCommand is tagged with (default:
    `plan.name` and `plan.sha256`); `check_no_live_run` reads those tags.
    The result's `api_calls` count the client's calls since `calls_since` (the rate
    limiter's stats when the run's first call went out, e.g. before its targets step;
    default: now, so the quota check on is counted).
    Raises `QuotaTooSmall` before sending anything when the account's quotas cannot
    cover the run (verify runs included), unless `plan.limits.ignore_quota`. Returns the
    result of the whole run, halted or not; on cancellation or a tracking failure, emits
    `RunFinished` with the partial result and re-raises.
    """
    total = len(instances)
    waves = shape_waves(plan, instances, order)
    limiter = client.rate_limiter
    before = calls_since or (limiter.stats() if limiter is not None else None)
    if total and not plan.limits.ignore_quota and not history.batches:
        batches = sum(len(wave.plan.batches) for wave in waves)
        kept = batches if plan.command.keep_command else 0
        verified = sum(wave.plan.size for wave in waves if wave.config.verify is not None)
        await check_quota(client, QuotaNeeds(invocations=total + verified, kept_commands=kept))
    run = _Rollout(
        plan,
        client,
        instances,
        waves,
        run_id=run_id,
        clock=clock,
        sink=sink,
        hooks=hooks if hooks is not None else NoHooks(),
        approver=approver if approver is not None else Refuse(),
        calls_before=before,
        history=history,
        control=control,
        identity=identity if identity is not None else PlanIdentity.of(plan),
    )
    return await run.run()


class _Rollout:
    """The state of one run between its start and its `RunFinished`."""

    def __init__(
        self,
        plan: Plan,
        client: EcsClient,
        instances: Sequence[Instance],
        waves: Sequence[ShapedWave],
        *,
        run_id: str,
        clock: Clock,
        sink: EventSink,
        hooks: RolloutHooks,
        approver: Approver,
        calls_before: RateLimiterStats | None,
        history: RunHistory,
        control: RunControl | None,
        identity: PlanIdentity,
    ) -> None:
        self._plan = plan
        self._client = client
        self._instances = instances
        self._waves = waves
        self._run_id = run_id
        self._clock = clock
        self._sink = sink
        self._hooks = hooks
        self._approver = approver
        self._history = history
        self._control = control
        self._requested: Halt | None = None  # by `control`
        self._between_scope: anyio.CancelScope | None = None
        self._limiter = client.rate_limiter
        self._ledger = RunLedger(sink)
        command = plan.command
        slots = ExecutionSlots(None)  # each wave sets its own cap
        self._tracker = InvocationTracker(
            client,
            run_id=run_id,
            clock=clock,
            slots=slots,
            ledger=self._ledger,
            periodic=command.repeat_mode in PERIODIC_MODES or command.frequency is not None,
            delivery_timeout=plan.limits.delivery_timeout,
            command_timeout=command.timeout,
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
            history=history,
            plan=identity,
        )
        self._stop_in_flight = plan.on_breach != "finish_in_flight"
        self._wave_runner = WaveRunner(
            dispatcher=self._dispatcher,
            tracker=self._tracker,
            ledger=self._ledger,
            slots=slots,
            sink=sink,
            clock=clock,
            # `rollback` stops what runs first: the rollback run starts after this one.
            stop_in_flight=self._stop_in_flight,
        )
        self._times: dict[int, tuple[datetime, datetime]] = {}
        self._in_flight_at_breach = 0
        # Zones whose `max_errors_per_zone` broke: zone → (the wave, its numbers then).
        self._zone_stops: dict[str, tuple[str, ZoneCount]] = {}
        self._before = calls_before
        self._started = clock.now()

    async def run(self) -> RolloutResult:
        sizes = tuple(wave.plan.size for wave in self._waves)
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
                halt = await self._waves_under_control()
        except anyio.get_cancelled_exc_class():
            result = self._finish(Halt("interrupted", message="the run was cancelled"))
            self._sink(RunFinished(result, interrupted=True))
            raise
        except OrchestratorError as error:
            cause = error.cause if isinstance(error, TrackingAbandoned) else error
            code = error_code_of(cause)
            self._sink(
                RunFinished(self._finish(Halt("tracking", code, str(error))), interrupted=True)
            )
            raise
        result = self._finish(halt)
        self._sink(RunFinished(result))
        return result

    async def _waves_under_control(self) -> Halt | None:
        if self._control is None:
            return await self._waves_in_turn()
        if self._control.request is not Request.NONE:
            self._apply(self._control)  # asked before it started: nothing may go out
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._obey, self._control)
                halt = await self._waves_in_turn()
                group.cancel_scope.cancel()
        except BaseExceptionGroup as error:
            raise single_error(error) from error
        return halt

    async def _obey(self, control: RunControl) -> None:
        """Carry out the control's requests: dispatch stops at once (and the pause or
        the approval being waited for ends); a stop also stops what runs."""
        seen = Request.NONE
        while True:
            seen = await control.changed(seen)
            self._apply(control)
            if seen is Request.STOP:
                with anyio.move_on_after(STOP_SEND_GRACE, shield=True):
                    await self._tracker.stop_all()

    def _asked(self) -> Halt | None:
        """The halt the control asked for, if it did (a method: it changes at any await)."""
        return self._requested

    def _apply(self, control: RunControl) -> None:
        reason = "stopped" if control.request is Request.STOP else "interrupted"
        halt = self._dispatcher.halt
        if halt is None or halt.reason == "interrupted":  # a breach keeps its halt
            self._requested = Halt(reason, message=control.reason)
            self._dispatcher.halt = None
            self._dispatcher.stop(self._requested)
        if self._between_scope is not None:
            self._between_scope.cancel()

    async def _waves_in_turn(self) -> Halt | None:
        for position, wave in enumerate(self._waves):
            if wave.plan.index in self._history.passed_waves:
                self._passed_before(wave)
                continue
            halt = await self._one_wave(wave, last=position == len(self._waves) - 1)
            # What the control asked for wins over what it caused (dispatch halted).
            halt = self._asked() or halt
            if halt is not None:
                return halt
        return None

    def _passed_before(self, wave: ShapedWave) -> None:
        """A wave an earlier attempt of the run finished and passed: its results stand."""
        shape = wave.plan
        now = self._clock.now()
        self._sink(WaveStarted(shape.index, shape.name, shape.size, len(shape.batches), now))
        prior = self._prior(shape)
        budgets = self._budgets(wave)
        for result in prior:
            self._ledger.record(result)
            # The zones it stopped, from the same numbers (thresholds frozen the same way).
            breach = budgets.observe(result.instance_id, result.outcome) if budgets else None
            if breach is not None:
                self._stop_zone(shape.name, breach)
        self._settle_zones(shape)
        self._times[shape.index] = (now, now)
        self._wave_finished(shape)

    def _prior(self, shape: WavePlan) -> list[InstanceResult]:
        """The results an earlier attempt recorded for the instances of `shape`."""
        known = self._history.results
        return [known[i.instance_id] for i in shape.instances if i.instance_id in known]

    async def _one_wave(self, wave: ShapedWave, *, last: bool) -> Halt | None:
        shape, config = wave.plan, wave.config
        started = self._clock.now()
        self._sink(WaveStarted(shape.index, shape.name, shape.size, len(shape.batches), started))
        gate = WaveGate(
            shape.index,
            shape.name,
            shape.size,
            config.max_errors,
            count_undelivered=self._plan.count_undelivered,
            zones=self._budgets(wave),
            halt_on_zone=self._plan.order == "by_zone",
            rate=rate_rule(config),
        )
        run = await self._wave_runner.run(
            wave,
            gate,
            prior=self._prior(shape),
            on_zone_stop=lambda count: self._stop_zone(shape.name, count),
        )
        self._settle_zones(shape)
        halt = self._dispatcher.halt
        if halt is not None:
            self._ledger.settle_not_sent(shape.instances, shape.name, not_sent_reason(halt))
        self._times[shape.index] = (started, self._clock.now())
        if run.breach is not None:
            self._in_flight_at_breach = run.in_flight
            self._sink(GateDecided(run.breach))
        if halt is not None:
            self._wave_finished(shape)
            return halt
        decision = await self._verify(wave, gate)
        self._times[shape.index] = (started, self._clock.now())
        self._sink(GateDecided(decision))
        self._wave_finished(shape)
        if decision.verdict is Verdict.BREACH:
            return Halt("breach", message=decision.summary(), wave=shape.name, decision=decision)
        if self._asked() is not None:  # asked during the verify: no pause, no approval
            return self._asked()
        with anyio.CancelScope() as self._between_scope:
            halt = await self._between(wave, decision, last=last)
        self._between_scope = None
        halt = self._asked() or halt
        if halt is not None:
            return halt
        results = [
            self._ledger.results[i.instance_id]
            for i in shape.instances
            if i.instance_id in self._ledger.results
        ]
        if not await self._hooks.after_wave(shape, results):
            return Halt("gate", message=f"a gate stopped the run after wave {shape.name!r}")
        return None

    def _budgets(self, wave: ShapedWave) -> ZoneBudgets | None:
        """The wave's zone budgets, frozen from its zones' sizes now (None: it has none)."""
        if wave.config.max_errors_per_zone is None:
            return None
        return ZoneBudgets(
            {i.instance_id: i.zone_id for i in wave.plan.instances},
            wave.config.max_errors_per_zone,
            count_undelivered=self._plan.count_undelivered,
            stopped=self._zone_stops,
        )

    def _stop_zone(self, wave: str, count: ZoneCount) -> None:
        """A zone's budget broke in `wave`: nothing more is sent to it, in any wave."""
        if count.zone in self._zone_stops:
            return
        self._zone_stops[count.zone] = (wave, count)
        self._dispatcher.stop_zone(count.zone)
        if self._stop_in_flight:
            self._tracker.stop_zone(count.zone)

    def _settle_zones(self, shape: WavePlan) -> None:
        """The instances of stopped zones that were never sent end NOT_SENT, saying why."""
        for zone, (wave, count) in self._zone_stops.items():
            members = [i for i in shape.instances if i.zone_id == zone]
            self._ledger.settle_not_sent(members, shape.name, zone_stopped_reason(wave, count))

    def _wave_finished(self, shape: WavePlan) -> None:
        counts = self._ledger.counts(shape.instances)
        self._sink(WaveFinished(shape.index, shape.name, counts, self._clock.now()))

    async def _verify(self, wave: ShapedWave, gate: WaveGate) -> GateDecision:
        """The wave's verify, if it has one, and the gate's decision after it."""
        if wave.config.verify is None:
            return gate.final()
        return await verify_step(
            self._client,
            wave.config.verify,
            wave.plan,
            gate,
            self._ledger,
            sink=self._sink,
            run_id=self._run_id,
            clock=self._clock,
            cap=wave.cap,
            limits=self._plan.limits,
            before_dispatch=self._hooks.before_dispatch,
            history=self._history,
            control=self._control,
        )

    async def _between(
        self, wave: ShapedWave, decision: GateDecision, *, last: bool
    ) -> Halt | None:
        """After a wave passed: its pause, then its approval. The last wave has neither
        (nothing follows it), except that an inconclusive verify still asks a person."""
        config, shape = wave.config, wave.plan
        if config.pause > 0 and not last:
            until = self._clock.now() + timedelta(seconds=config.pause)
            self._sink(WavePaused(shape.index, shape.name, config.pause, until))
            await self._clock.sleep(config.pause)
        inconclusive = decision.verdict is Verdict.INCONCLUSIVE
        if not inconclusive and not (config.approval and not last):
            return None
        reason = decision.reason if inconclusive else "the plan asks for approval after this wave"
        approved = await ask_approval(
            self._approver,
            self._run_id,
            shape,
            reason,
            sink=self._sink,
            clock=self._clock,
            hooks=self._hooks,
        )
        if approved:
            return None
        return Halt("denied", message=f"wave {shape.name} was not approved", wave=shape.name)

    def _finish(self, halt: Halt | None) -> RolloutResult:
        ledger = self._ledger
        not_started = tuple(w.plan.name for w in self._waves if w.plan.index not in self._times)
        for wave in self._waves:
            self._settle_zones(wave.plan)
            ledger.settle_not_sent(wave.plan.instances, wave.plan.name, not_sent_reason(halt))
        if halt is not None and halt.reason in {"breach", "denied"}:
            halt = self._numbers(halt, not_started)
        if halt is None and self._zone_stops:
            halt = zone_halt(self._zone_stops)
        after = self._limiter.stats() if self._limiter is not None else None
        calls, throttles = _delta(self._before, after)
        in_flight = ledger.in_flight()
        ids = [instance.instance_id for instance in self._instances]
        summaries = []
        for wave in self._waves:
            shape = wave.plan
            started, finished = self._times.get(shape.index, (None, None))
            counts = ledger.counts(shape.instances)
            summaries.append(
                WaveSummary(shape.index, shape.name, shape.size, counts, started, finished)
            )
        return RolloutResult(
            run_id=self._run_id,
            results=tuple(ledger.results[i] for i in ids if i in ledger.results),
            waves=tuple(summaries),
            api_calls=calls,
            throttles=throttles,
            started_at=self._started,
            finished_at=self._clock.now(),
            halt=halt,
            in_flight=tuple(i for i in ids if i in in_flight),
            stopped_zones=tuple(self._zone_stops),
        )

    def _numbers(self, halt: Halt, not_started: tuple[str, ...]) -> Halt:
        """The halt with what happened to the instances still running at the breach."""
        stopped_ids = self._tracker.breach_stopped
        results = self._ledger.results
        confirmed = sum(
            1
            for i in stopped_ids
            if i in results
            and results[i].outcome is Outcome.STOPPED
            and results[i].status in {"Terminated", "Cancelled"}
        )
        return replace(
            halt,
            in_flight=self._in_flight_at_breach if halt.reason == "breach" else 0,
            stop_requested=len(stopped_ids),
            stopped=confirmed,
            not_started=not_started,
        )


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
