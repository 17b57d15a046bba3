"""The rollout engine against the simulator over real HTTP: batching, bisection, quotas,
the concurrency cap, waves and hooks, exactly-once under re-runs, cancellation, and the
tracking cost per instance. Whole rollouts run on the fleet's scaled clock (no sleeps)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from orchestrator.api import InstanceStatus
from orchestrator.ecs import EcsClient, Instance
from orchestrator.errors import QuotaTooSmall
from orchestrator.plan._model import Amount, Command, Limits, Plan, Targets, Wave
from orchestrator.rollout import (
    PLAN_TAG_KEY,
    ApprovalRequested,
    BatchAttempt,
    BatchDispatched,
    InstanceFinished,
    InstanceRejected,
    InstanceResult,
    Outcome,
    RecordingSink,
    RunFinished,
    RunStarted,
    WaveFinished,
    WavePlan,
    WaveStarted,
    client_token,
    run_rollout,
)
from orchestrator.testing import Simulated, simulated

if TYPE_CHECKING:
    from collections.abc import Sequence

    from orchestrator.sim import RunningSimulator

pytestmark = pytest.mark.anyio


def fleet_yaml(count: int, *, extra: str = "", quotas: str = "", time_scale: float = 0.01) -> str:
    """A generated fleet of `count` Running instances with online agents."""
    return f"""
region: cn-hangzhou
seed: 11
time_scale: {time_scale}
quotas: {{invocations_daily: 100000, commands: 500, max_instances_per_call: 50{quotas}}}
generate:
  - count: {count}
    zones: [cn-hangzhou-h, cn-hangzhou-i, cn-hangzhou-j]
{extra}
behaviour:
  default: {{duration: 2, delivery_delay: 0.5, output: "ok {{{{ACS::InstanceId}}}}\\n"}}
"""


async def runnable(client: EcsClient) -> list[Instance]:
    """Every Running instance of the fleet, in the fleet's order."""
    return [i async for i in client.describe_instances() if i.status is InstanceStatus.RUNNING]


def plan_of(
    *,
    waves: Sequence[Wave] = (Wave("all", Amount(100, percent=True)),),
    content: str = "echo hello",
    timeout: int = 60,
    **limits: object,
) -> Plan:
    return Plan(
        name="test",
        targets=Targets(),
        command=Command(content=content, timeout=timeout),
        waves=tuple(waves),
        limits=Limits(**limits),  # type: ignore[arg-type]
    )


def executions(sim: RunningSimulator) -> dict[str, list[int]]:
    """Instance id → the run counts of each invocation that started there."""
    return {i: list(runs.values()) for i, runs in sim.simulation.execution_counts().items()}


# --- batching ------------------------------------------------------------------------


async def test_120_instances_go_out_in_three_batches_of_50_50_20():
    """One RunCommand per batch of at most 50; every instance runs once and succeeds."""
    async with simulated(fleet_yaml(120)) as env:
        instances = await runnable(env.client)
        sink = RecordingSink()
        result = await run_rollout(
            plan_of(), env.client, instances, run_id="r-batch", clock=env.clock, sink=sink
        )
        assert env.sim.stats.count("RunCommand") == 3
        batches = sorted(sink.of(BatchDispatched), key=lambda e: e.batch)
        assert [len(e.instance_ids) for e in batches] == [50, 50, 20]
        assert result.counts()[Outcome.SUCCEEDED] == 120
        assert len(result.results) == 120
        assert executions(env.sim) == {i.instance_id: [1] for i in instances}
        first = result.results[0]
        assert first.output == f"ok {first.instance_id}\n"
        assert first.exit_code == 0
        assert first.status == "Success"
        assert first.start_time is not None
        assert first.finish_time is not None
        assert result.api_calls["RunCommand"] == 3
        assert result.halt is None
        assert result.in_flight == ()


async def test_events_come_in_order_and_account_for_everyone():
    """RunStarted, WaveStarted, batches, one InstanceFinished each, WaveFinished, RunFinished."""
    async with simulated(fleet_yaml(7)) as env:
        instances = await runnable(env.client)
        sink = RecordingSink()
        result = await run_rollout(
            plan_of(), env.client, instances, run_id="r-events", clock=env.clock, sink=sink
        )
        kinds = [type(e) for e in sink.events]
        assert kinds[0] is RunStarted
        assert kinds[1] is WaveStarted
        assert kinds[-2:] == [WaveFinished, RunFinished]
        finished = sink.of(InstanceFinished)
        assert sorted(e.result.instance_id for e in finished) == sorted(
            i.instance_id for i in instances
        )
        assert sink.of(RunFinished)[0].result == result
        assert sink.of(WaveFinished)[0].counts[Outcome.SUCCEEDED] == 7


# --- bisection -----------------------------------------------------------------------


async def test_a_rejected_batch_is_split_to_isolate_bad_instances():
    """A Stopped and an unknown instance end SKIPPED with the API's code; the rest run."""
    extra = """  - count: 1
    zones: [cn-hangzhou-h]
    status: Stopped
"""
    async with simulated(fleet_yaml(20, extra=extra)) as env:
        every = [i async for i in env.client.describe_instances()]
        stopped = next(i for i in every if i.status is InstanceStatus.STOPPED)
        ghost = Instance(
            "i-doesnotexist0000", "ghost", InstanceStatus.RUNNING, "cn-hangzhou-h", "", "linux"
        )
        good = [i for i in every if i.status is InstanceStatus.RUNNING]
        instances = [*good[:7], stopped, *good[7:15], ghost, *good[15:]]
        sink = RecordingSink()
        result = await run_rollout(
            plan_of(), env.client, instances, run_id="r-bisect", clock=env.clock, sink=sink
        )
        by_id = result.by_instance()
        assert by_id[stopped.instance_id].outcome is Outcome.SKIPPED
        assert by_id[stopped.instance_id].error_code == "InvalidInstance.NotMatch"
        assert by_id[ghost.instance_id].outcome is Outcome.SKIPPED
        assert by_id[ghost.instance_id].error_code == "InvalidInstance.NotFound"
        assert "does not exist" in by_id[ghost.instance_id].error_info
        assert {e.instance_id for e in sink.of(InstanceRejected)} == {
            stopped.instance_id,
            ghost.instance_id,
        }
        assert all(by_id[i.instance_id].outcome is Outcome.SUCCEEDED for i in good)
        assert executions(env.sim) == {i.instance_id: [1] for i in good}
        tokens = [e.client_token for e in sink.of(BatchDispatched)]
        assert len(tokens) == len(set(tokens))
        assert all(e.split_path for e in sink.of(BatchDispatched))


# --- quotas --------------------------------------------------------------------------


async def test_a_daily_quota_too_small_refuses_the_run_before_any_runcommand():
    """QuotaTooSmall names the attribute and the numbers; nothing was sent."""
    text = fleet_yaml(12).replace("invocations_daily: 100000", "invocations_daily: 10")
    async with simulated(text) as env:
        instances = await runnable(env.client)
        sink = RecordingSink()
        with pytest.raises(QuotaTooSmall) as caught:
            await run_rollout(
                plan_of(), env.client, instances, run_id="r-quota", clock=env.clock, sink=sink
            )
        assert (caught.value.attribute, caught.value.needed, caught.value.available) == (
            "max-axt-invocation-daily",
            12,
            10,
        )
        assert env.sim.stats.count("RunCommand") == 0
        assert sink.events == []


async def test_quota_exceeded_mid_run_halts_and_keeps_what_was_sent():
    """Invocation.ExceedQuota on batch 2 halts: batch 1 is tracked, the rest NOT_SENT."""
    text = fleet_yaml(100).replace("invocations_daily: 100000", "invocations_daily: 60")
    async with simulated(text) as env:
        instances = await runnable(env.client)
        plan = plan_of(ignore_quota=True)
        result = await run_rollout(
            plan, env.client, instances, run_id="r-midquota", clock=env.clock, sink=RecordingSink()
        )
        assert result.halt is not None
        assert (result.halt.reason, result.halt.code) == ("refused", "Invocation.ExceedQuota")
        counts = result.counts()
        assert counts[Outcome.SUCCEEDED] == 50
        assert counts[Outcome.NOT_SENT] == 50
        not_sent = [r for r in result.results if r.outcome is Outcome.NOT_SENT]
        assert "Invocation.ExceedQuota" in not_sent[0].error_info


# --- the concurrency cap -------------------------------------------------------------


def peak_overlap(env: Simulated) -> int:
    """The most records ever between creation and finish at once, from the simulator."""
    now = env.clock.now()
    edges = []
    for invocation in env.sim.simulation.invocations.values():
        for record in invocation.records.values():
            view = invocation.view(record, now)
            assert view.finish is not None
            edges += [(view.created, 1), (view.finish, -1)]
    peak = current = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        current += step
        peak = max(peak, current)
    return peak


async def test_max_concurrency_is_never_exceeded():
    """With a cap of 10, batches shrink to 10 and never more than 10 execute at once."""
    async with simulated(fleet_yaml(45)) as env:
        instances = await runnable(env.client)
        sink = RecordingSink()
        result = await run_rollout(
            plan_of(max_concurrency=Amount(10)),
            env.client,
            instances,
            run_id="r-cap",
            clock=env.clock,
            sink=sink,
        )
        assert result.counts()[Outcome.SUCCEEDED] == 45
        batches = sorted(sink.of(BatchDispatched), key=lambda e: e.batch)
        assert [len(e.instance_ids) for e in batches] == [10, 10, 10, 10, 5]
        assert peak_overlap(env) <= 10


async def test_a_percentage_cap_is_of_the_whole_target_set():
    """max_concurrency 20% of 30 instances is 6."""
    async with simulated(fleet_yaml(30)) as env:
        instances = await runnable(env.client)
        sink = RecordingSink()
        await run_rollout(
            plan_of(max_concurrency=Amount(20, percent=True)),
            env.client,
            instances,
            run_id="r-capp",
            clock=env.clock,
            sink=sink,
        )
        assert {len(e.instance_ids) for e in sink.of(BatchDispatched)} == {6}
        assert peak_overlap(env) <= 6


# --- waves and hooks -----------------------------------------------------------------


class Hooks:
    """Records what the runner tells its hooks; says stop after wave `stop_after`."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.attempts: list[BatchAttempt] = []
        self.waves: list[tuple[str, int]] = []
        self.stop_after = stop_after

    async def before_dispatch(self, attempt: BatchAttempt) -> None:
        self.attempts.append(attempt)

    async def before_approval(self, request: ApprovalRequested) -> None:
        del request

    async def after_wave(self, wave: WavePlan, results: Sequence[InstanceResult]) -> bool:
        self.waves.append((wave.name, len(results)))
        return wave.index != self.stop_after


WAVES = (
    Wave("canary", Amount(1)),
    Wave("half", Amount(50, percent=True)),
    Wave("rest", Amount(100, percent=True)),
)


async def test_waves_run_one_after_another_and_hooks_see_every_batch():
    """Waves 1, 5, 4 of 10; before_dispatch sees each token before its RunCommand."""
    async with simulated(fleet_yaml(10)) as env:
        instances = await runnable(env.client)
        hooks = Hooks()
        sink = RecordingSink()
        result = await run_rollout(
            plan_of(waves=WAVES),
            env.client,
            instances,
            run_id="r-waves",
            clock=env.clock,
            sink=sink,
            hooks=hooks,
        )
        assert [w.size for w in result.waves] == [1, 5, 4]
        assert hooks.waves == [("canary", 1), ("half", 5), ("rest", 4)]
        assert [a.client_token for a in hooks.attempts] == [
            e.client_token for e in sink.of(BatchDispatched)
        ]
        # Every instance of a wave finished before the next wave's first batch.
        order = [type(e).__name__ for e in sink.events if not isinstance(e, InstanceFinished)]
        assert order.count("WaveStarted") == 3
        canary = result.results[0]
        assert canary.wave == "canary"
        assert result.results[-1].wave == "rest"


async def test_a_gate_saying_no_stops_the_later_waves():
    """after_wave → False: later waves are NOT_SENT and the halt says gate."""
    async with simulated(fleet_yaml(10)) as env:
        instances = await runnable(env.client)
        result = await run_rollout(
            plan_of(waves=WAVES),
            env.client,
            instances,
            run_id="r-gate",
            clock=env.clock,
            sink=RecordingSink(),
            hooks=Hooks(stop_after=0),
        )
        assert result.halt is not None
        assert result.halt.reason == "gate"
        assert result.counts()[Outcome.SUCCEEDED] == 1
        assert result.counts()[Outcome.NOT_SENT] == 9
        assert env.sim.stats.count("RunCommand") == 1
        assert [w.counts[Outcome.NOT_SENT] for w in result.waves] == [0, 5, 4]


# --- exactly once --------------------------------------------------------------------


async def test_running_the_same_run_again_runs_nothing_twice():
    """Same run id, same plan (a resume): the same tokens, the same invocations, one run."""
    async with simulated(fleet_yaml(60)) as env:
        instances = await runnable(env.client)
        first = await run_rollout(
            plan_of(),
            env.client,
            instances,
            run_id="r-again",
            clock=env.clock,
            sink=RecordingSink(),
        )
        second = await run_rollout(
            plan_of(),
            env.client,
            instances,
            run_id="r-again",
            clock=env.clock,
            sink=RecordingSink(),
        )
        assert [r.invoke_id for r in first.results] == [r.invoke_id for r in second.results]
        assert second.counts()[Outcome.SUCCEEDED] == 60
        assert executions(env.sim) == {i.instance_id: [1] for i in instances}


async def test_the_same_token_with_another_command_halts_as_a_bug():
    """IdempotentParameterMismatch: dispatch stops at once and the halt says bug."""
    async with simulated(fleet_yaml(5)) as env:
        instances = await runnable(env.client)
        await run_rollout(
            plan_of(), env.client, instances, run_id="r-bug", clock=env.clock, sink=RecordingSink()
        )
        result = await run_rollout(
            plan_of(content="echo other"),
            env.client,
            instances,
            run_id="r-bug",
            clock=env.clock,
            sink=RecordingSink(),
        )
        assert result.halt is not None
        assert (result.halt.reason, result.halt.code) == ("bug", "IdempotentParameterMismatch")
        assert result.counts()[Outcome.NOT_SENT] == 5


# --- cancellation --------------------------------------------------------------------


async def test_cancelling_returns_a_partial_result_and_sends_nothing_more():
    """Cancelled after the first batch: RunFinished(interrupted) accounts for everyone."""
    async with simulated(fleet_yaml(200)) as env:
        instances = await runnable(env.client)
        sink = RecordingSink()
        with anyio.CancelScope() as scope:

            def cancel_on_first_batch(event: object) -> None:
                sink(event)  # type: ignore[arg-type]
                if isinstance(event, BatchDispatched):
                    scope.cancel()

            await run_rollout(
                plan_of(batch_size=10),
                env.client,
                instances,
                run_id="r-cancel",
                clock=env.clock,
                sink=cancel_on_first_batch,
            )
        assert scope.cancelled_caught
        finished = sink.of(RunFinished)
        assert len(finished) == 1
        assert finished[0].interrupted
        result = finished[0].result
        assert result.halt is not None
        assert result.halt.reason == "interrupted"
        assert len(result.in_flight) + len(result.results) == 200
        # Let any RunCommand that was already on the wire land, then compare.
        await env.clock.sleep(5)
        created = {i for inv in env.sim.simulation.invocations.values() for i in inv.records}
        dispatched = {r.instance_id for r in result.results if r.invoke_id}
        not_sent = {r.instance_id for r in result.results if r.outcome is Outcome.NOT_SENT}
        assert created
        assert created <= set(result.in_flight) | dispatched
        assert not (not_sent & created)
        assert not_sent


# --- tracking cost -------------------------------------------------------------------


async def test_tracking_costs_a_small_fraction_of_a_call_per_instance():
    """300 instances: polls are shared by all batches, one results read per batch."""
    async with simulated(fleet_yaml(300)) as env:
        instances = await runnable(env.client)
        result = await run_rollout(
            plan_of(), env.client, instances, run_id="r-cost", clock=env.clock, sink=RecordingSink()
        )
        assert result.counts()[Outcome.SUCCEEDED] == 300
        describes = result.describe_calls()
        assert describes / 300 <= 0.1, result.api_calls
        assert result.api_calls["DescribeInvocationResults"] == 6
        sim_describes = sum(
            env.sim.stats.count(action)
            for action in ("DescribeInvocations", "DescribeInvocationResults")
        )
        assert sim_describes == describes - 1  # the quota check's DescribeAccountAttributes


# --- the request and the limiter -----------------------------------------------------


async def test_the_runcommand_carries_the_plan_command_base64_and_the_run_tag():
    """Content travels Base64; parameters, timeout, user, dir, name, tags and token arrive."""
    async with simulated(fleet_yaml(3)) as env:
        instances = await runnable(env.client)
        command = Command(
            content="echo {{who}}",
            parameters={"who": "world"},
            timeout=30,
            username="admin",
            working_dir="/tmp",  # noqa: S108 - a value sent, not a file used
            name="greet",
            tags={"team": "web"},
        )
        plan = Plan(name="p", targets=Targets(), command=command)
        await run_rollout(
            plan, env.client, instances, run_id="r-req", clock=env.clock, sink=RecordingSink()
        )
        (invocation,) = env.sim.simulation.invocations.values()
        spec = invocation.spec
        assert spec.content == "echo {{who}}"
        assert dict(spec.parameters) == {"who": "world"}
        assert spec.enable_parameter
        assert (spec.timeout, spec.username, spec.working_dir, spec.name) == (
            30,
            "admin",
            "/tmp",  # noqa: S108
            "greet",
        )
        # The run's tag, and the plan's name (its digest too, when the plan has one).
        assert dict(spec.tags) == {"team": "web", "orchestrator-run": "r-req", PLAN_TAG_KEY: "p"}
        assert spec.client_token == client_token("r-req", 0, 0)
        assert spec.repeat_mode == "Once"


async def test_every_call_of_the_client_goes_through_the_limiter():
    """DescribeInstances and DescribeCloudAssistantStatus are counted like the run's calls."""
    async with simulated(fleet_yaml(120)) as env:
        found = [i async for i in env.client.describe_instances()]
        await env.client.describe_cloud_assistant_status([i.instance_id for i in found])
        calls = env.limiter.stats().calls
        assert calls["DescribeInstances"] == env.sim.stats.count("DescribeInstances") == 2
        # 120 IDs: 100 + 20 (DescribeCloudAssistantStatus takes 100 InstanceId.N).
        assert calls["DescribeCloudAssistantStatus"] == 2
        assert env.sim.stats.count("DescribeCloudAssistantStatus") == 2
