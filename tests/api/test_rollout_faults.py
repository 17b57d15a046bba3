"""The rollout engine under a hostile endpoint, over real HTTP: a throttling storm, dropped
answers and reset connections, a RunCommand still being processed. Every instance must
run exactly once and every result must be there. Runs on the fleet's scaled clock."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from orchestrator.errors import TrackingAbandoned
from orchestrator.plan._model import Amount, Command, Limits, Plan, Targets, Wave
from orchestrator.rollout import Outcome, RecordingSink, RunFinished, Throttled, run_rollout
from orchestrator.sim import FaultKind, FaultSpec, RunningSimulator
from orchestrator.testing import simulated

if TYPE_CHECKING:
    from orchestrator.ecs import EcsClient, Instance

pytestmark = pytest.mark.anyio


def fleet_yaml(count: int, *, top: str = "") -> str:
    """A generated fleet of `count` Running instances with online agents."""
    return f"""
region: cn-hangzhou
seed: 5
time_scale: 0.01
{top}
generate:
  - count: {count}
    zones: [cn-hangzhou-h, cn-hangzhou-i]
behaviour:
  default: {{duration: 2, delivery_delay: 0.5, output: "ok\\n"}}
"""


async def every_instance(client: EcsClient) -> list[Instance]:
    return [i async for i in client.describe_instances()]


def plan_of(batch_size: int) -> Plan:
    return Plan(
        name="faults",
        targets=Targets(),
        command=Command(content="echo hello"),
        waves=(Wave("all", Amount(100, percent=True)),),
        limits=Limits(batch_size=batch_size),
    )


def assert_exactly_once(sim: RunningSimulator, instances: list[Instance]) -> None:
    """Each instance ran in exactly one invocation, exactly once."""
    counts = sim.simulation.execution_counts()
    assert {i: list(runs.values()) for i, runs in counts.items()} == {
        i.instance_id: [1] for i in instances
    }


async def test_a_throttling_storm_slows_down_and_accounts_for_everyone():
    """The endpoint allows 1 call/s per action (RunCommand 0.5/s), bursts of 1; the limiter
    adapts and the run completes."""
    storm = "throttle: {qps: 1, burst: 1, per_action: {RunCommand: 0.5}}"
    async with simulated(fleet_yaml(150, top=storm)) as env:
        instances = await every_instance(env.client)
        sink = RecordingSink()
        result = await run_rollout(
            plan_of(10), env.client, instances, run_id="r-storm", clock=env.clock, sink=sink
        )
        assert result.counts()[Outcome.SUCCEEDED] == 150
        assert result.throttles > 0
        assert env.sim.stats.count("RunCommand", "Throttling") > 0
        notices = sink.of(Throttled)
        assert len(notices) == result.throttles
        assert min(n.rate for n in notices if n.action == "RunCommand") < 10
        assert_exactly_once(env.sim, instances)


async def test_dropped_answers_and_resets_never_run_anything_twice():
    """10 % drops, 10 % resets and 5 % 5xx on RunCommand and the Describe calls."""
    async with simulated(fleet_yaml(200)) as env:
        instances = await every_instance(env.client)
        env.sim.faults.set(
            FaultSpec(
                seed=9,
                drop_rate=0.1,
                reset_rate=0.1,
                error_rate=0.05,
                actions=frozenset(
                    {
                        "RunCommand",
                        "DescribeInvocations",
                        "DescribeInvocationResults",
                        "DescribeAccountAttributes",
                    }
                ),
            )
        )
        result = await run_rollout(
            plan_of(10),
            env.client,
            instances,
            run_id="r-drops",
            clock=env.clock,
            sink=RecordingSink(),
        )
        assert result.halt is None
        assert result.counts()[Outcome.SUCCEEDED] == 200
        assert all(r.output == "ok\n" for r in result.results)
        lost = env.sim.stats.count("RunCommand", "drop") + env.sim.stats.count(
            "RunCommand", "reset"
        )
        assert lost > 0
        faults = env.sim.faults.counts
        assert faults["drop"] > 0
        assert faults["reset"] > 0
        assert_exactly_once(env.sim, instances)


async def test_a_runcommand_whose_answer_is_unreadable_is_sent_again_not_lost():
    """RunCommand is carried out, then answered 200 with an HTML page: the client re-sends
    it with the same token, the service answers the first invocation, nothing runs twice
    and nothing is taken for a refusal."""
    async with simulated(fleet_yaml(20)) as env:
        instances = await every_instance(env.client)
        env.sim.faults.fail_next(FaultKind.GARBLE, 2, action="RunCommand")
        result = await run_rollout(
            plan_of(10),
            env.client,
            instances,
            run_id="r-garbled",
            clock=env.clock,
            sink=RecordingSink(),
        )
        assert result.halt is None
        assert result.counts()[Outcome.SUCCEEDED] == 20
        assert env.sim.faults.counts[FaultKind.GARBLE] == 2
        assert_exactly_once(env.sim, instances)


async def test_a_runcommand_still_processing_is_asked_again_with_the_same_token():
    """The first answer times out while the service works; IdempotentProcessing, then the
    same invocation comes back: nothing runs twice."""
    text = fleet_yaml(20, top="run_command_latency: 5")
    async with simulated(text, request_timeout=0.02) as env:
        instances = await every_instance(env.client)
        result = await run_rollout(
            plan_of(10),
            env.client,
            instances,
            run_id="r-processing",
            clock=env.clock,
            sink=RecordingSink(),
        )
        assert result.counts()[Outcome.SUCCEEDED] == 20
        assert env.sim.stats.count("RunCommand", "IdempotentProcessing") > 0
        assert_exactly_once(env.sim, instances)


async def test_when_results_can_no_longer_be_read_the_partial_result_is_reported():
    """DescribeInvocations always fails: once no command can still be running the run
    raises, and its RunFinished says which instances may still be running."""
    async with simulated(fleet_yaml(30)) as env:
        instances = await every_instance(env.client)
        env.sim.faults.set(FaultSpec(error_rate=1.0, actions=frozenset({"DescribeInvocations"})))
        sink = RecordingSink()
        with pytest.raises(TrackingAbandoned):
            await run_rollout(
                plan_of(10), env.client, instances, run_id="r-blind", clock=env.clock, sink=sink
            )
        (finished,) = sink.of(RunFinished)
        assert finished.interrupted
        assert finished.result.halt is not None
        assert finished.result.halt.reason == "tracking"
        assert set(finished.result.in_flight) == {i.instance_id for i in instances}
        assert finished.result.results == ()


async def test_default_rates_above_the_endpoints_come_down_to_it():
    """The default rates start high on purpose (RunCommand 50/s): against an endpoint
    that allows a fifth of that (RunCommand 10/s, each Describe 20/s), the first calls
    are throttled, the limiter comes down to the endpoint's rate instead of hammering it
    (a few throttles, far fewer than accepted calls: sent at 50/s throughout, more than
    half would be throttled), and the run completes, exactly once. On real time
    (time_scale 1): a scaled clock would ask more calls per real second than one process
    can send, and the endpoint would never throttle."""
    slow = "throttle: {qps: 20, per_action: {RunCommand: 10}}"
    fleet = fleet_yaml(300, top=slow).replace("time_scale: 0.01", "time_scale: 1")
    async with simulated(fleet) as env:
        assert env.limiter.rate("RunCommand") == 50.0
        instances = await every_instance(env.client)
        sink = RecordingSink()
        result = await run_rollout(
            plan_of(5), env.client, instances, run_id="r-aimd", clock=env.clock, sink=sink
        )
        assert result.counts()[Outcome.SUCCEEDED] == 300
        accepted = env.sim.stats.count("RunCommand", "ok")
        throttled = env.sim.stats.count("RunCommand", "Throttling")
        assert accepted == 60
        assert 0 < throttled <= accepted // 4
        cuts = [n.rate for n in sink.of(Throttled) if n.action == "RunCommand"]
        assert min(cuts) <= 10.0  # down to what the endpoint allows, at least
        assert len(sink.of(Throttled)) == result.throttles
        assert_exactly_once(env.sim, instances)
