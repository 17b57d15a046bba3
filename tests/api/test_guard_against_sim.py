"""The API guard against the simulator: what DescribeInvocations filtered by the plan's
tag and a live InvokeStatus finds, while another run's commands run and once they ended."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from orchestrator.api import InstanceStatus
from orchestrator.plan import Command
from orchestrator.rollout import (
    LIVE_STATUSES,
    LiveRunElsewhere,
    PlanIdentity,
    build_request,
    check_no_live_run,
)
from orchestrator.sim import load_fleet

if TYPE_CHECKING:
    from orchestrator.ecs import EcsClient
    from orchestrator.sim import FleetSpec, RunningSimulator
    from orchestrator.testing import ManualClock

pytestmark = pytest.mark.anyio

FLEET = """
region: cn-hangzhou
seed: 12
quotas: {invocations_daily: 100000, commands: 500, max_instances_per_call: 50}
generate:
  - {count: 6, zones: [cn-hangzhou-h]}
behaviour:
  default: {duration: 60, delivery_delay: 5, output: "ok\\n"}
"""
PLAN = PlanIdentity("web-deploy", "a" * 64)


@pytest.fixture
def fleet() -> FleetSpec:
    return load_fleet(FLEET)


async def test_a_live_run_of_the_plan_refuses_until_its_commands_end(
    sim: RunningSimulator, client: EcsClient, clock: ManualClock
):
    instances = [i async for i in client.describe_instances() if i.status is InstanceStatus.RUNNING]
    ids = [i.instance_id for i in instances]
    command = Command(content="echo hi", timeout=600)
    # Another run of the plan on the first four; another plan on the last two.
    other = PlanIdentity("db-migrate", "b" * 64)
    for request in (
        build_request(command, ids[:4], token="t1", run_id="r-1", plan=PLAN),
        build_request(command, ids[4:], token="t2", run_id="r-2", plan=other),
    ):
        await client.run_command(request)

    with pytest.raises(LiveRunElsewhere) as pending:  # not delivered yet: Pending
        await check_no_live_run(client, PLAN, instances[2:], run_id="r-me")
    assert pending.value.other_run == "r-1"
    assert "2 of this run's 4 instances" in str(pending.value)

    clock.advance(10)  # delivered: Running
    with pytest.raises(LiveRunElsewhere):
        await check_no_live_run(client, PLAN, instances, run_id="r-me")
    # Its own invocations never hold a run back (a resume), nor another plan's.
    await check_no_live_run(client, PLAN, instances, run_id="r-1")
    await check_no_live_run(client, PLAN, instances[4:], run_id="r-me")

    clock.advance(100)  # ended
    await check_no_live_run(client, PLAN, instances, run_id="r-me")
    # One call per live status, each check (a page each: nothing more to read).
    assert sim.stats.count("DescribeInvocations") == 5 * len(LIVE_STATUSES)


async def test_no_instances_no_call(sim: RunningSimulator, client: EcsClient):
    await check_no_live_run(client, PLAN, [], run_id="r-me")
    assert sim.stats.count("DescribeInvocations") == 0
