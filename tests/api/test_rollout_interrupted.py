"""The engine under a long API outage, over real HTTP: tracking rides out throttling and
5xx for as long as the commands may still run, and gives up (a typed error, a partial
result with what is in flight) only after that, or at once when the credentials are
refused. The targets step and the quota check ride out a burst of throttling too.
Everything runs on the fleet's scaled clock: the times asserted are the simulation's."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from orchestrator.errors import AuthError, ServerError, TrackingAbandoned
from orchestrator.journal import run_invocations
from orchestrator.plan._model import Amount, Command, Limits, Plan, Targets, Verify, Wave
from orchestrator.rollout import (
    ApprovalRequested,
    BatchDispatched,
    Outcome,
    RecordingSink,
    RunFinished,
    VerifyStarted,
    run_rollout,
)
from orchestrator.sim import FaultKind, FaultSpec
from orchestrator.targets import resolve
from orchestrator.testing import simulated

if TYPE_CHECKING:
    from orchestrator.clock import Clock
    from orchestrator.ecs import EcsClient, Instance
    from orchestrator.rollout import Event
    from orchestrator.sim import Faults

pytestmark = pytest.mark.anyio

TIMEOUT = 30  # the command's timeout, seconds
DELIVERY = 20.0  # limits.delivery_timeout


def fleet_yaml(count: int, *, duration: float = 2) -> str:
    return f"""
region: cn-hangzhou
seed: 5
time_scale: 0.005
generate:
  - count: {count}
    zones: [cn-hangzhou-h, cn-hangzhou-i]
    tags: {{app: web}}
behaviour:
  default: {{duration: {duration}, delivery_delay: 0.5, output: "ok\\n"}}
"""


def plan_of(*, timeout: int = TIMEOUT, delivery: float = DELIVERY) -> Plan:
    return Plan(
        name="outage",
        targets=Targets(tags={"app": "web"}),
        command=Command(content="echo hello", timeout=timeout),
        waves=(Wave("all", Amount(100, percent=True)),),
        limits=Limits(batch_size=10, delivery_timeout=delivery),
    )


async def every_instance(client: EcsClient) -> list[Instance]:
    return [i async for i in client.describe_instances()]


class TimedSink(RecordingSink):
    """Records events, and when (on the run's clock) each batch was dispatched."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self._clock = clock
        self.dispatched_at: list[float] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, BatchDispatched):
            self.dispatched_at.append(self._clock.monotonic())
        super().__call__(event)


async def test_60_throttling_answers_in_a_row_while_tracking_do_not_end_the_run():
    """60 Throttling answers in a row on DescribeInvocations: 12 polls fail (5 attempts
    each, minutes in all); with the default timeout (60 s) and delivery_timeout (300 s)
    tracking backs off and goes on, and every instance gets its result."""
    async with simulated(fleet_yaml(30)) as env:
        instances = await every_instance(env.client)
        env.sim.faults.fail_next(
            FaultKind.API_ERROR, 60, action="DescribeInvocations", code="Throttling"
        )
        result = await run_rollout(
            plan_of(timeout=60, delivery=300.0),
            env.client,
            instances,
            run_id="r-throttled",
            clock=env.clock,
            sink=RecordingSink(),
        )
        assert env.sim.faults.pending == 0
        assert result.halt is None
        assert result.counts()[Outcome.SUCCEEDED] == 30
        assert result.in_flight == ()


async def test_an_outage_past_the_commands_deadline_ends_tracking_then_and_not_before():
    """Every DescribeInvocations fails (503): tracking goes on until no command can still
    be running (dispatch + delivery_timeout + timeout, plus the slack), then gives up
    with a typed error; the partial result lists every instance as in flight."""
    async with simulated(fleet_yaml(30)) as env:
        instances = await every_instance(env.client)
        env.sim.faults.set(FaultSpec(error_rate=1.0, actions=frozenset({"DescribeInvocations"})))
        sink = TimedSink(env.clock)
        with pytest.raises(TrackingAbandoned) as caught:
            await run_rollout(
                plan_of(), env.client, instances, run_id="r-blind", clock=env.clock, sink=sink
            )
        gave_up = env.clock.monotonic()
        deadline = max(sink.dispatched_at) + DELIVERY + TIMEOUT
        assert gave_up >= deadline + min(DELIVERY, 60.0)
        # Not long after either: the last poll's own retries (60 s budget) and one nap.
        assert gave_up < deadline + min(DELIVERY, 60.0) + 60.0 + 30.0
        assert isinstance(caught.value.cause, ServerError)
        assert "DescribeInvocations" in str(caught.value)
        (finished,) = sink.of(RunFinished)
        assert finished.interrupted
        assert finished.result.halt is not None
        assert finished.result.halt.reason == "tracking"
        assert set(finished.result.in_flight) == {i.instance_id for i in instances}
        assert finished.result.results == ()


async def test_credentials_refused_while_tracking_end_it_at_once():
    """The access key is deleted mid-run: the first refused poll ends tracking (no
    retry can help), with the API's code kept for the exit code."""
    async with simulated(fleet_yaml(10, duration=10**6)) as env:
        instances = await every_instance(env.client)
        env.sim.faults.fail_next(
            FaultKind.API_ERROR, action="DescribeInvocations", code="InvalidAccessKeyId.NotFound"
        )
        sink = TimedSink(env.clock)
        with pytest.raises(TrackingAbandoned) as caught:
            await run_rollout(
                plan_of(), env.client, instances, run_id="r-revoked", clock=env.clock, sink=sink
            )
        assert isinstance(caught.value.cause, AuthError)
        assert env.clock.monotonic() < max(sink.dispatched_at) + DELIVERY
        (finished,) = sink.of(RunFinished)
        assert finished.interrupted
        assert finished.result.halt is not None
        assert finished.result.halt.code == "InvalidAccessKeyId.NotFound"
        assert set(finished.result.in_flight) == {i.instance_id for i in instances}


@pytest.mark.parametrize("action", ["DescribeInstances", "DescribeCloudAssistantStatus"])
async def test_the_targets_step_rides_out_15_throttling_answers(action: str):
    async with simulated(fleet_yaml(12)) as env:
        env.sim.faults.fail_next(FaultKind.API_ERROR, 15, action=action, code="Throttling")
        found = await resolve(Targets(tags={"app": "web"}), "RunShellScript", env.client)
        assert env.sim.faults.pending == 0
        assert len(found.runnable) == 12


async def test_the_quota_check_rides_out_15_throttling_answers():
    async with simulated(fleet_yaml(12)) as env:
        instances = await every_instance(env.client)
        env.sim.faults.fail_next(
            FaultKind.API_ERROR, 15, action="DescribeAccountAttributes", code="Throttling"
        )
        result = await run_rollout(
            plan_of(),
            env.client,
            instances,
            run_id="r-quota",
            clock=env.clock,
            sink=RecordingSink(),
        )
        assert env.sim.faults.pending == 0
        assert result.counts()[Outcome.SUCCEEDED] == 12


async def test_the_listing_of_a_runs_invocations_rides_out_15_throttling_answers():
    """What `resume` (lost sends) and `recover` read before anything else: a burst of
    throttling must not end them before they start."""
    async with simulated(fleet_yaml(12)) as env:
        instances = await every_instance(env.client)
        await run_rollout(
            plan_of(), env.client, instances, run_id="r-list", clock=env.clock,
            sink=RecordingSink(),
        )  # fmt: skip
        env.sim.faults.fail_next(
            FaultKind.API_ERROR, 15, action="DescribeInvocations", code="Throttling"
        )
        listed = await run_invocations(env.client, "r-list")
        assert env.sim.faults.pending == 0
        assert sum(len(invocation.instances) for invocation in listed) == 12


async def test_a_few_transport_failures_in_the_targets_step_still_end_it():
    """Patience is for throttling: an endpoint that keeps failing (5xx) is given up on
    after the usual retries, so a dead endpoint does not hold a run for minutes."""
    async with simulated(fleet_yaml(4)) as env:
        env.sim.faults.fail_next(FaultKind.UNAVAILABLE, 15, action="DescribeInstances")
        with pytest.raises(ServerError):
            await resolve(Targets(tags={"app": "web"}), "RunShellScript", env.client)
        assert env.sim.faults.pending == 10  # 5 attempts, then the error


class RevokeAtVerify(RecordingSink):
    """Records events; when the verify starts, the access key is revoked (the next
    DescribeInvocations is refused)."""

    def __init__(self, faults: Faults) -> None:
        super().__init__()
        self._faults = faults

    def __call__(self, event: Event) -> None:
        super().__call__(event)
        if isinstance(event, VerifyStarted):
            self._faults.fail_next(
                FaultKind.API_ERROR,
                action="DescribeInvocations",
                code="InvalidAccessKeyId.NotFound",
            )


async def test_credentials_refused_during_a_verify_end_the_run_interrupted():
    """Not an inconclusive verify that asks a person: the verify's invocations are still
    out there, so the run ends interrupted and a resume follows them."""
    async with simulated(fleet_yaml(6)) as env:
        instances = await every_instance(env.client)
        plan = replace(
            plan_of(),
            waves=(
                Wave("first", Amount(3), verify=Verify(content="true")),
                Wave("rest", Amount(100, percent=True)),
            ),
        )
        sink = RevokeAtVerify(env.sim.faults)
        with pytest.raises(TrackingAbandoned) as caught:
            await run_rollout(
                plan, env.client, instances, run_id="r-verify", clock=env.clock, sink=sink
            )
        assert isinstance(caught.value.cause, AuthError)
        (finished,) = sink.of(RunFinished)
        assert finished.interrupted
        assert finished.result.halt is not None
        assert finished.result.halt.code == "InvalidAccessKeyId.NotFound"
        assert not sink.of(ApprovalRequested)
