"""Wave gates against the simulator over real HTTP: a breach stops dispatch at once and
stops (or lets finish) what is in flight, later waves never receive a RunCommand, the
halt carries the numbers; pauses on the injected clock; approvals (pre-approved, a marker
file, refused, cancelled); verify (pass, fail, inconclusive); zone order. Nothing here
sleeps to wait: tests react to events, and time is the fleet's scaled clock or a
ManualClock."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from orchestrator.plan import Amount, Command, Limits, Plan, Targets, Verify, Wave
from orchestrator.rollout import (
    ApprovalDenied,
    ApprovalGranted,
    ApprovalRequested,
    BatchDispatched,
    BreachStopSent,
    Event,
    EventSink,
    FileApprover,
    GateDecided,
    GateEvaluated,
    Outcome,
    PreApproved,
    RecordingSink,
    RunFinished,
    Verdict,
    VerifyFinished,
    VerifyStarted,
    WavePaused,
    WaveStarted,
    order_for,
    run_rollout,
    write_marker,
)
from orchestrator.sim import FaultKind
from orchestrator.testing import ManualClock, Simulated, simulated

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from orchestrator.ecs import Instance
    from orchestrator.rollout import Approver, RolloutResult

pytestmark = pytest.mark.anyio

ALL = Amount(100, percent=True)

FLEET = """
region: cn-hangzhou
seed: 3
time_scale: 0.01
instances:
  - {id: i-canary1, zone: cn-hangzhou-h}
  - {id: i-bad1, zone: cn-hangzhou-h, tags: {role: bad}}
  - {id: i-hang1, zone: cn-hangzhou-i, tags: {role: hang}}
  - {id: i-hang2, zone: cn-hangzhou-j, tags: {role: hang}}
  - {id: i-hang3, zone: cn-hangzhou-h, tags: {role: hang}}
  - {id: i-good1, zone: cn-hangzhou-i}
  - {id: i-good2, zone: cn-hangzhou-j}
  - {id: i-rest1, zone: cn-hangzhou-h}
  - {id: i-rest2, zone: cn-hangzhou-i}
  - {id: i-rest3, zone: cn-hangzhou-j}
behaviour:
  stop_delay: 1
  default: {duration: 2, delivery_delay: 0.5, output: "ok\\n"}
  rules:
    - match: {tags: {role: bad}}
      fail_rate: 1
      fail_exit_code: 2
    - match: {tags: {role: hang}}
      hang_rate: 1
"""
# canary: i-canary1; early: the failing one, three that hang, two good; rest: the rest.
ORDER = [
    "i-canary1",
    "i-bad1",
    "i-hang1",
    "i-hang2",
    "i-hang3",
    "i-good1",
    "i-good2",
    "i-rest1",
    "i-rest2",
    "i-rest3",
]
REST = {"i-rest1", "i-rest2", "i-rest3"}


def by_ids(ids: Sequence[str]) -> Callable[[Sequence[Instance]], list[Instance]]:
    """An order that puts instances exactly as listed."""
    position = {instance_id: n for n, instance_id in enumerate(ids)}
    return lambda instances: sorted(instances, key=lambda i: position[i.instance_id])


def plan_of(
    waves: Sequence[Wave],
    *,
    on_breach: str = "stop_in_flight",
    content: str = "deploy",
    **limits: object,
) -> Plan:
    return Plan(
        name="gates",
        targets=Targets(),
        command=Command(content=content, timeout=600),  # a hang outlives any stop
        waves=tuple(waves),
        limits=Limits(**limits),  # type: ignore[arg-type]
        on_breach=on_breach,  # type: ignore[arg-type]
    )


async def roll(
    env: Simulated,
    plan: Plan,
    sink: EventSink,
    *,
    order: Callable[[Sequence[Instance]], Sequence[Instance]] | None = None,
    approver: Approver | None = None,
    run_id: str = "r-gates",
) -> RolloutResult:
    instances = [i async for i in env.client.describe_instances()]
    return await run_rollout(
        plan,
        env.client,
        instances,
        run_id=run_id,
        clock=env.clock,
        sink=sink,
        order=order if order is not None else by_ids(ORDER),
        approver=approver,
    )


def sent_to(env: Simulated) -> set[str]:
    """Every instance the simulator ever received a RunCommand for."""
    return {i for inv in env.sim.simulation.invocations.values() for i in inv.records}


THREE_WAVES = (Wave("canary", Amount(1)), Wave("early", Amount(6)), Wave("rest", ALL))


# --- the breach ----------------------------------------------------------------------


async def test_a_breach_stops_in_flight_and_later_waves_never_start():
    """Wave 2 breaches at its 1st error: the hung instances get StopInvocation and end
    STOPPED (Terminated), wave 3 never gets a RunCommand, the halt has the numbers."""
    async with simulated(FLEET) as env:
        sink = RecordingSink()
        result = await roll(env, plan_of(THREE_WAVES), sink)
        by_id = result.by_instance()
        assert sent_to(env) == set(ORDER) - REST
        assert env.sim.stats.count("RunCommand") == 2
        assert env.sim.stats.count("StopInvocation", "ok") >= 1
        for hung in ("i-hang1", "i-hang2", "i-hang3"):
            assert (by_id[hung].outcome, by_id[hung].status) == (Outcome.STOPPED, "Terminated")
            assert "breached" in by_id[hung].error_info
        assert (by_id["i-bad1"].outcome, by_id["i-bad1"].exit_code) == (Outcome.FAILED, 2)
        assert by_id["i-good1"].outcome is Outcome.SUCCEEDED
        for rest in REST:
            assert by_id[rest].outcome is Outcome.NOT_SENT
            assert by_id[rest].error_info == "halted: wave early breached"
        halt = result.halt
        assert halt is not None
        assert halt.decision is not None
        assert (halt.reason, halt.wave, halt.decision.errors, halt.decision.threshold) == (
            "breach",
            "early",
            1,
            0,
        )
        assert (halt.in_flight, halt.stop_requested, halt.stopped) == (3, 3, 3)
        assert halt.not_started == ("rest",)
        assert halt.describe() == (
            "wave early breached: 1 error > max_errors 0; 3 in-flight stopped; "
            "wave rest not started"
        )
        assert [w.name for w in sink.of(WaveStarted)] == ["canary", "early"]
        decided = [(e.decision.name, e.decision.verdict) for e in sink.of(GateDecided)]
        assert decided == [("canary", Verdict.PASS), ("early", Verdict.BREACH)]
        (stops,) = sink.of(BreachStopSent)
        assert (stops.name, stops.invocations, stops.instances) == ("early", 1, 3)
        assert sink.of(RunFinished)[0].result == result
        assert result.in_flight == ()


async def test_finish_in_flight_sends_no_stop_and_lets_them_end():
    """on_breach finish_in_flight: no StopInvocation; the hung ones end by their timeout."""
    async with simulated(FLEET) as env:
        plan = plan_of(THREE_WAVES, on_breach="finish_in_flight")
        plan = Plan(
            name=plan.name,
            targets=plan.targets,
            command=Command(content="deploy", timeout=10),
            waves=plan.waves,
            on_breach="finish_in_flight",
        )
        sink = RecordingSink()
        result = await roll(env, plan, sink)
        assert env.sim.stats.count("StopInvocation") == 0
        assert sink.of(BreachStopSent) == []
        by_id = result.by_instance()
        for hung in ("i-hang1", "i-hang2", "i-hang3"):
            assert (by_id[hung].outcome, by_id[hung].status) == (Outcome.FAILED, "Timeout")
        assert all(by_id[rest].outcome is Outcome.NOT_SENT for rest in REST)
        assert sent_to(env) == set(ORDER) - REST
        halt = result.halt
        assert halt is not None
        assert (halt.reason, halt.in_flight, halt.stop_requested) == ("breach", 3, 0)
        assert "3 in-flight left to finish" in halt.describe()


async def test_dispatch_stops_at_once_within_the_wave():
    """Batches of 1 under a wave cap of 2: the batch waiting for a slot never goes out;
    zero RunCommands after the breach."""
    async with simulated(FLEET) as env:
        waves = (
            Wave("canary", Amount(1)),
            Wave("early", Amount(6), max_concurrency=Amount(2)),
            Wave("rest", ALL),
        )
        at_breach: list[int] = []
        sink = RecordingSink()

        def watch(event: Event) -> None:
            sink(event)
            if isinstance(event, GateEvaluated) and event.decision.verdict is Verdict.BREACH:
                at_breach.append(env.sim.stats.count("RunCommand"))

        result = await roll(env, plan_of(waves, batch_size=1), watch)
        assert at_breach == [3]  # the canary, i-bad1, i-hang1
        assert env.sim.stats.count("RunCommand") == 3
        assert sent_to(env) == {"i-canary1", "i-bad1", "i-hang1"}
        by_id = result.by_instance()
        assert by_id["i-hang1"].outcome is Outcome.STOPPED
        not_sent = {r.instance_id for r in result.results if r.outcome is Outcome.NOT_SENT}
        assert not_sent == {"i-hang2", "i-hang3", "i-good1", "i-good2"} | REST
        assert [len(e.instance_ids) for e in sink.of(BatchDispatched)] == [1, 1, 1]


async def test_errors_within_max_errors_pass_and_each_is_an_event():
    """max_errors 1 of wave 2: one failure passes; GateEvaluated says 1 of 1, then PASS."""
    async with simulated(FLEET) as env:
        waves = (
            Wave("canary", Amount(1)),
            Wave("early", Amount(2), max_errors=Amount(1)),  # i-bad1, i-hang1
            Wave("rest", ALL),
        )
        order = by_ids(["i-canary1", "i-bad1", "i-good1", *ORDER[2:5], "i-good2", *REST])
        sink = RecordingSink()
        result = await roll(env, plan_of(waves), sink, order=order)
        assert result.halt is not None  # the hung ones fail the last wave's default gate
        (evaluated, *_) = sink.of(GateEvaluated)
        decision = evaluated.decision
        assert (decision.name, decision.errors, decision.threshold, decision.verdict) == (
            "early",
            1,
            1,
            Verdict.PASS,
        )
        decided = {e.decision.name: e.decision.verdict for e in sink.of(GateDecided)}
        assert decided == {"canary": Verdict.PASS, "early": Verdict.PASS, "rest": Verdict.BREACH}


# --- pauses ----------------------------------------------------------------------------


async def test_a_pause_holds_the_next_wave_for_exactly_its_time():
    """pause 300 s on the injected clock: the next wave starts 300 s after the pause
    began, its first RunCommand no earlier; the last wave has no pause after it."""
    clock = ManualClock(autojump=True)
    async with simulated(FLEET, clock=clock) as env:
        waves = (
            Wave("canary", Amount(1), pause=300),
            Wave("rest", ALL, pause=999, max_errors=None),
        )
        sink = RecordingSink()
        moments: dict[str, float] = {}

        def watch(event: Event) -> None:
            sink(event)
            if isinstance(event, WavePaused):
                moments["paused"] = clock.monotonic()
            if isinstance(event, WaveStarted) and event.name == "rest":
                moments["rest"] = clock.monotonic()

        await roll(env, plan_of(waves), watch)
        (paused,) = sink.of(WavePaused)
        assert (paused.name, paused.seconds) == ("canary", 300)
        assert moments["rest"] - moments["paused"] == pytest.approx(300, abs=1e-9)
        first = next(e for e in sink.of(BatchDispatched) if e.wave == 1)
        assert first.at >= paused.until
        assert 999 not in clock.slept


# --- approvals ---------------------------------------------------------------------------

APPROVAL = (Wave("canary", Amount(1), approval=True), Wave("rest", ALL, max_errors=None))


async def test_a_pre_approved_wave_goes_on_at_once():
    """--approve canary: the request and the grant are both events; the run finishes."""
    async with simulated(FLEET) as env:
        sink = RecordingSink()
        result = await roll(env, plan_of(APPROVAL), sink, approver=PreApproved(["canary"]))
        (asked,) = sink.of(ApprovalRequested)
        assert (asked.name, asked.run_id) == ("canary", "r-gates")
        assert "--approve canary" in asked.how
        assert [e.name for e in sink.of(ApprovalGranted)] == ["canary"]
        assert result.halt is None
        assert env.sim.stats.count("RunCommand") == 2


async def test_a_marker_file_approves_a_waiting_run(tmp_path: Path):
    """The run waits; the test writes the marker when asked; the run goes on."""
    async with simulated(FLEET) as env:
        sink = RecordingSink()
        asked = anyio.Event()
        sent_before_approval: list[int] = []

        def watch(event: Event) -> None:
            sink(event)
            if isinstance(event, ApprovalRequested):
                asked.set()

        results: list[RolloutResult] = []
        approver = FileApprover(env.clock, tmp_path)
        async with anyio.create_task_group() as group:

            async def run() -> None:
                results.append(await roll(env, plan_of(APPROVAL), watch, approver=approver))

            group.start_soon(run)
            await asked.wait()
            sent_before_approval.append(env.sim.stats.count("RunCommand"))
            write_marker(tmp_path, "r-gates", "canary")
        assert sent_before_approval == [1]
        assert sink.of(ApprovalGranted)
        assert "orchestrator approve r-gates canary" in sink.of(ApprovalRequested)[0].how
        assert results[0].halt is None
        assert env.sim.stats.count("RunCommand") == 2


async def test_a_refusal_halts_and_later_waves_are_not_sent(tmp_path: Path):
    """`orchestrator approve --deny`: ApprovalDenied, halt "denied", the rest NOT_SENT."""
    async with simulated(FLEET) as env:
        sink = RecordingSink()

        def watch(event: Event) -> None:
            sink(event)
            if isinstance(event, ApprovalRequested):
                write_marker(tmp_path, event.run_id, event.name, deny=True)

        result = await roll(
            env, plan_of(APPROVAL), watch, approver=FileApprover(env.clock, tmp_path)
        )
        assert [e.name for e in sink.of(ApprovalDenied)] == ["canary"]
        assert result.halt is not None
        assert (result.halt.reason, result.halt.wave) == ("denied", "canary")
        assert result.counts()[Outcome.NOT_SENT] == len(ORDER) - 1
        assert env.sim.stats.count("RunCommand") == 1


async def test_without_an_approver_an_approval_halts_instead_of_hanging():
    """The library's default approver refuses: a run nobody can approve halts."""
    async with simulated(FLEET) as env:
        result = await roll(env, plan_of(APPROVAL), RecordingSink())
        assert result.halt is not None
        assert result.halt.reason == "denied"


async def test_a_run_waiting_for_approval_can_be_cancelled_cleanly(tmp_path: Path):
    """Nobody approves; cancelling leaves a partial result, nothing more was sent."""
    async with simulated(FLEET) as env:
        sink = RecordingSink()
        with anyio.CancelScope() as scope:

            def watch(event: Event) -> None:
                sink(event)
                if isinstance(event, ApprovalRequested):
                    scope.cancel()

            await roll(env, plan_of(APPROVAL), watch, approver=FileApprover(env.clock, tmp_path))
        assert scope.cancelled_caught
        (finished,) = sink.of(RunFinished)
        assert finished.interrupted
        result = finished.result
        assert result.halt is not None
        assert result.halt.reason == "interrupted"
        assert result.by_instance()["i-canary1"].outcome is Outcome.SUCCEEDED
        assert result.counts()[Outcome.NOT_SENT] == len(ORDER) - 1
        assert env.sim.stats.count("RunCommand") == 1


# --- verify ------------------------------------------------------------------------------

LOCAL = """
region: cn-hangzhou
seed: 4
time_scale: 0.01
agent_mode: local
instances:
  - {id: i-v1, zone: cn-hangzhou-h}
  - {id: i-v2, zone: cn-hangzhou-i}
  - {id: i-v3, zone: cn-hangzhou-j}
  - {id: i-v4, zone: cn-hangzhou-h}
  - {id: i-v5, zone: cn-hangzhou-i}
"""
LOCAL_ORDER = by_ids(["i-v1", "i-v2", "i-v3", "i-v4", "i-v5"])
# Really run on the host (local agent mode): fails on i-v2 only.
CHECK = Verify(content='test "{{ACS::InstanceId}}" != "i-v2" || { echo "v2 is off"; exit 4; }')


async def test_a_verify_that_passes_lets_the_run_go_on():
    """Verify on the wave's succeeded instances; each result carries its verify run."""
    async with simulated(LOCAL) as env:
        waves = (Wave("first", Amount(3), verify=Verify(content="true")), Wave("rest", ALL))
        sink = RecordingSink()
        result = await roll(env, plan_of(waves, content="echo deployed"), sink, order=LOCAL_ORDER)
        assert result.halt is None
        (finished,) = sink.of(VerifyFinished)
        assert (finished.passed, finished.failed, finished.inconclusive) == (3, 0, 0)
        first = result.by_instance()["i-v1"]
        assert first.outcome is Outcome.SUCCEEDED
        assert first.verify is not None
        assert first.verify.outcome is Outcome.SUCCEEDED
        assert first.verify.invoke_id != first.invoke_id
        assert result.by_instance()["i-v4"].verify is None  # the last wave has no verify
        assert env.sim.stats.count("RunCommand") == 3


@pytest.mark.parametrize(("max_errors", "halted"), [(Amount(0), True), (Amount(1), False)])
async def test_a_failed_verify_counts_against_the_gate(max_errors, halted):
    """A verify failure turns the instance FAILED (VerifyFailed) and counts: with
    max_errors 0 it breaches and the next wave never starts; with 1 the run goes on."""
    async with simulated(LOCAL) as env:
        waves = (
            Wave("first", Amount(3), max_errors=max_errors, verify=CHECK),
            Wave("rest", ALL),
        )
        sink = RecordingSink()
        result = await roll(env, plan_of(waves, content="echo deployed"), sink, order=LOCAL_ORDER)
        v2 = result.by_instance()["i-v2"]
        assert (v2.outcome, v2.error_code, v2.exit_code) == (Outcome.FAILED, "VerifyFailed", 0)
        assert v2.verify is not None
        assert (v2.verify.exit_code, v2.verify.output) == (4, "v2 is off\n")
        assert v2.output == "deployed\n"  # the original run's output is kept
        (decided, *_) = sink.of(GateDecided)
        assert (decided.decision.verify_failed, decided.decision.errors) == (1, 1)
        if halted:
            assert result.halt is not None
            assert result.halt.reason == "breach"
            assert result.halt.describe().startswith("wave first breached: 1 error > max_errors 0")
            assert sent_to(env) == {"i-v1", "i-v2", "i-v3"}
            assert result.by_instance()["i-v4"].outcome is Outcome.NOT_SENT
        else:
            assert result.halt is None
            assert result.by_instance()["i-v5"].outcome is Outcome.SUCCEEDED


@pytest.mark.parametrize("approved", [True, False])
async def test_a_verify_that_cannot_run_waits_for_a_person(approved):
    """Verify's RunCommand refused → inconclusive → an approval is asked although the
    wave has none; approved, the run goes on; refused, it halts."""
    async with simulated(LOCAL) as env:
        waves = (Wave("first", Amount(3), verify=Verify(content="true")), Wave("rest", ALL))
        sink = RecordingSink()

        def watch(event: Event) -> None:
            sink(event)
            if isinstance(event, VerifyStarted):  # the verify's RunCommand is refused
                env.sim.faults.fail_next(
                    FaultKind.API_ERROR, action="RunCommand", code="Operation.Forbidden"
                )

        approver = PreApproved(every=True) if approved else None
        result = await roll(
            env,
            plan_of(waves, content="echo deployed"),
            watch,
            order=LOCAL_ORDER,
            approver=approver,
        )
        (finished,) = sink.of(VerifyFinished)
        assert "Operation.Forbidden" in finished.problem
        (decided, *_) = sink.of(GateDecided)
        assert decided.decision.verdict is Verdict.INCONCLUSIVE
        (asked,) = sink.of(ApprovalRequested)
        assert asked.reason.startswith("verify could not run")
        if approved:
            assert result.halt is None
            assert result.counts()[Outcome.SUCCEEDED] == 5
        else:
            assert result.halt is not None
            assert result.halt.reason == "denied"
            assert result.counts()[Outcome.NOT_SENT] == 2


# --- zone order ----------------------------------------------------------------------------

ZONES = """
region: cn-hangzhou
seed: 9
time_scale: 0.01
generate:
  - {count: 9, zones: [cn-hangzhou-h, cn-hangzhou-i, cn-hangzhou-j]}
"""


@pytest.mark.parametrize(
    ("order", "first_wave_zones"),
    [
        ("spread", ["cn-hangzhou-h", "cn-hangzhou-i", "cn-hangzhou-j"]),
        ("by_zone", ["cn-hangzhou-h", "cn-hangzhou-h", "cn-hangzhou-h"]),
    ],
)
async def test_the_plan_order_decides_the_zones_of_each_wave(order, first_wave_zones):
    """spread mixes the zones in every wave; by_zone finishes one zone first."""
    async with simulated(ZONES) as env:
        instances = {i.instance_id: i async for i in env.client.describe_instances()}
        waves = (Wave("first", Amount(3)), Wave("rest", ALL))
        sink = RecordingSink()
        await roll(env, plan_of(waves), sink, order=order_for(order))
        (first,) = [e for e in sink.of(BatchDispatched) if e.wave == 0]
        assert [instances[i].zone_id for i in first.instance_ids] == first_wave_zones
