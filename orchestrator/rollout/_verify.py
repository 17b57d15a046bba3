"""The verify step: a wave's `verify` command on its SUCCEEDED instances, after the wave.

It goes through the same machinery as the rollout (a dispatcher and a tracker of its own,
its own ledger and execution slots under the wave's cap), with ClientTokens derived from
the run id and "verify", the wave and the batch, so a resume sends the same ones. Three
outcomes per instance (design.md, semantics 9): passed; failed (the instance's result
turns FAILED with error_code `VerifyFailed`, keeping every field of the original run and
the verify result under `verify`; it counts against the gate); inconclusive (verify could
not run there). Verify that cannot run at all (RunCommand refused, tracking failed)
makes the wave inconclusive: the rollout waits for a person, it never passes silently.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

import anyio
import structlog

from orchestrator.errors import OrchestratorError, TrackingAbandoned
from orchestrator.plan import Command
from orchestrator.rollout._batches import WavePlan, split_batches
from orchestrator.rollout._capacity import ExecutionSlots
from orchestrator.rollout._control import Request
from orchestrator.rollout._dispatcher import Dispatcher
from orchestrator.rollout._events import VerifyFinished, VerifyStarted, discard
from orchestrator.rollout._gates import VerifyOutcome, verify_outcome
from orchestrator.rollout._history import NO_HISTORY
from orchestrator.rollout._ledger import RunLedger
from orchestrator.rollout._outcome import Outcome
from orchestrator.rollout._results import Halt, InstanceResult
from orchestrator.rollout._tracker import InvocationTracker
from orchestrator.rollout._wave import STOP_SEND_GRACE, dispatch_and_track
from orchestrator.taskgroups import single_error

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator.clock import Clock
    from orchestrator.ecs import EcsClient
    from orchestrator.plan import Limits, Verify
    from orchestrator.rollout._control import RunControl
    from orchestrator.rollout._dispatcher import BeforeDispatch
    from orchestrator.rollout._events import EventSink
    from orchestrator.rollout._gates import GateDecision, WaveGate
    from orchestrator.rollout._history import RunHistory

# The RunCommand `Name` of verify commands: a resume tells them from the run's own
# invocations by it when it looks up a send whose answer was lost.
VERIFY_COMMAND_NAME: Final = "orchestrator-verify"

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The verify of one wave: the instances' new results (failed ones turned FAILED,
    every one with its `verify` result attached), and why verify could not run at all."""

    results: tuple[InstanceResult, ...]
    passed: int
    failed: int
    inconclusive: int
    problem: str = ""

    @property
    def inconclusive_reason(self) -> str:
        """Why the wave is inconclusive ("" when verify ran everywhere)."""
        if self.problem:
            return f"verify could not run: {self.problem}"
        if self.inconclusive:
            total = self.passed + self.failed + self.inconclusive
            return f"verify could not run on {self.inconclusive} of {total} instances"
        return ""


def merge_verify(original: InstanceResult, check: InstanceResult | None) -> InstanceResult:
    """The instance's result after its verify: FAILED (`VerifyFailed`) if verify failed,
    otherwise unchanged; the verify result rides along in `verify`."""
    if check is None:
        return original
    if verify_outcome(check.outcome) is VerifyOutcome.FAILED:
        exit_code = check.exit_code if check.exit_code is not None else "-"
        return replace(
            original,
            outcome=Outcome.FAILED,
            error_code="VerifyFailed",
            error_info=f"verify failed: exit {exit_code} ({check.error_code or check.status})",
            verify=check,
        )
    return replace(original, verify=check)


async def run_verify(
    client: EcsClient,
    verify: Verify,
    wave: WavePlan,
    originals: Mapping[str, InstanceResult],
    *,
    run_id: str,
    clock: Clock,
    cap: int | None,
    batch_size: int,
    delivery_timeout: float,
    before_dispatch: BeforeDispatch,
    history: RunHistory = NO_HISTORY,
    sink: EventSink = discard,
    control: RunControl | None = None,
) -> VerifyReport:
    """Run `verify` on the instances of `wave` whose result in `originals` SUCCEEDED.
    `sink` hears what became of each verify RunCommand (`BatchDispatched`,
    `BatchRefused`: the journal records them); the verify results stay here."""
    targets = tuple(
        instance
        for instance in wave.instances
        if (result := originals.get(instance.instance_id)) is not None
        and result.outcome is Outcome.SUCCEEDED
    )
    ledger = RunLedger(discard)
    slots = ExecutionSlots(cap)
    tracker = InvocationTracker(
        client,
        run_id=run_id,
        clock=clock,
        slots=slots,
        ledger=ledger,
        periodic=False,
        delivery_timeout=delivery_timeout,
        command_timeout=verify.timeout,
    )
    dispatcher = Dispatcher(
        client,
        Command(
            content=verify.content,
            type=verify.type,
            timeout=verify.timeout,
            name=VERIFY_COMMAND_NAME,
        ),
        run_id=run_id,
        clock=clock,
        slots=slots,
        tracker=tracker,
        ledger=ledger,
        sink=sink,
        before_dispatch=before_dispatch,
        token_key=f"{run_id}/verify",
        purpose="verify",
        history=history,
    )
    size = min(batch_size, cap) if cap else batch_size
    plan = WavePlan(wave.index, wave.name, targets, split_batches(wave.index, targets, size))
    problem = ""
    try:
        await _under_control(dispatcher, tracker, plan, control)
    except TrackingAbandoned:
        # Not inconclusive: the verify's invocations are still out there with no result.
        # The run ends interrupted and a resume follows them by their InvokeIds.
        raise
    except OrchestratorError as error:
        problem = f"tracking failed: {error}"
        _log.warning("rollout.verify_failed", run_id=run_id, wave=wave.name, error=str(error))
    if dispatcher.halt is not None and not problem:
        halt = dispatcher.halt
        problem = f"RunCommand {halt.reason}: {' '.join(p for p in (halt.code, halt.message) if p)}"
    counts = dict.fromkeys(VerifyOutcome, 0)
    results = []
    for instance in targets:
        check = ledger.results.get(instance.instance_id)
        counts[verify_outcome(check.outcome if check else None)] += 1
        results.append(merge_verify(originals[instance.instance_id], check))
    return VerifyReport(
        tuple(results),
        passed=counts[VerifyOutcome.PASSED],
        failed=counts[VerifyOutcome.FAILED],
        inconclusive=counts[VerifyOutcome.INCONCLUSIVE],
        problem=problem,
    )


async def _under_control(
    dispatcher: Dispatcher, tracker: InvocationTracker, plan: WavePlan, control: RunControl | None
) -> None:
    """Dispatch and track the verify; a drain or a stop of the run applies to it too."""
    if control is None:
        await dispatch_and_track(dispatcher, tracker, plan)
        return

    async def obey() -> None:
        seen = Request.NONE
        while True:
            seen = await control.changed(seen)
            reason = "stopped" if seen is Request.STOP else "interrupted"
            dispatcher.stop(Halt(reason, message=control.reason))
            if seen is Request.STOP:
                with anyio.move_on_after(STOP_SEND_GRACE, shield=True):
                    await tracker.stop_all()

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(obey)
            await dispatch_and_track(dispatcher, tracker, plan)
            group.cancel_scope.cancel()
    except BaseExceptionGroup as error:
        raise single_error(error) from error


async def verify_step(
    client: EcsClient,
    verify: Verify,
    wave: WavePlan,
    gate: WaveGate,
    ledger: RunLedger,
    *,
    sink: EventSink,
    run_id: str,
    clock: Clock,
    cap: int | None,
    limits: Limits,
    before_dispatch: BeforeDispatch,
    history: RunHistory = NO_HISTORY,
    control: RunControl | None = None,
) -> GateDecision:
    """The verify of a wave that passed: run it, put its results in the run's `ledger`,
    count its failures against `gate`, and return the gate's decision after it."""
    results = ledger.results
    succeeded = sum(
        results[i.instance_id].outcome is Outcome.SUCCEEDED
        for i in wave.instances
        if i.instance_id in results
    )
    if not succeeded:
        return gate.final()
    sink(VerifyStarted(wave.index, wave.name, succeeded, clock.now()))
    report = await run_verify(
        client,
        verify,
        wave,
        results,
        run_id=run_id,
        clock=clock,
        cap=cap,
        batch_size=limits.batch_size,
        delivery_timeout=limits.delivery_timeout,
        before_dispatch=before_dispatch,
        history=history,
        sink=sink,
        control=control,
    )
    for result in report.results:
        ledger.replace(result)
    counts = (report.passed, report.failed, report.inconclusive)
    sink(VerifyFinished(wave.index, wave.name, *counts, report.problem, clock.now()))
    if report.failed:
        gate.verify_failures(report.failed)
    return gate.final(inconclusive=report.inconclusive_reason)
