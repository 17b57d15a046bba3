"""Each instance ends in the right Outcome with its reason: successes, failures, hangs
(Timeout), offline agents (UNDELIVERED, stopped at the delivery deadline), output cut to
head and tail, periodic commands; plus the pure mapping rules. Over real HTTP against
the simulator on the fleet's scaled clock."""

from __future__ import annotations

import pytest

from orchestrator.api import InstanceInvocationStatus as S
from orchestrator.plan._model import Amount, Command, Limits, Plan, Targets, Wave
from orchestrator.rollout import (
    Outcome,
    RecordingSink,
    RolloutResult,
    bound_output,
    outcome_of,
    run_rollout,
)
from orchestrator.testing import Simulated, simulated

pytestmark = pytest.mark.anyio

FLEET = """
region: cn-hangzhou
seed: 2
time_scale: 0.01
instances:
  - {id: i-ok1, zone: cn-hangzhou-h}
  - {id: i-fail1, zone: cn-hangzhou-h, tags: {role: fail}}
  - {id: i-hang1, zone: cn-hangzhou-i, tags: {role: hang}}
  - {id: i-offline1, zone: cn-hangzhou-i, agent: offline}
  - {id: i-chatty1, zone: cn-hangzhou-i, tags: {role: chatty}}
behaviour:
  offline_timeout: OFFLINE
  default: {duration: 2, delivery_delay: 0.5, output: "ok\\n"}
  rules:
    - match: {tags: {role: fail}}
      fail_rate: 1
      fail_exit_code: 3
    - match: {tags: {role: hang}}
      hang_rate: 1
    - match: {tags: {role: chatty}}
      output: "0123456789\\n"
      output_repeat: 3000
"""


async def roll(env: Simulated, command: Command, *, delivery_timeout: float) -> RolloutResult:
    instances = [i async for i in env.client.describe_instances()]
    plan = Plan(
        name="outcomes",
        targets=Targets(),
        command=command,
        # No error limit: these tests follow each instance to its own end, and the
        # default gate (max_errors 0) would stop the rest at the first failure.
        waves=(Wave("all", Amount(100, percent=True), max_errors=None),),
        limits=Limits(delivery_timeout=delivery_timeout),
    )
    return await run_rollout(
        plan, env.client, instances, run_id="r-out", clock=env.clock, sink=RecordingSink()
    )


async def test_success_failure_hang_and_offline_each_end_right():
    """SUCCEEDED, FAILED (exit 3), FAILED (Timeout), UNDELIVERED (stopped at the deadline)."""
    async with simulated(FLEET.replace("OFFLINE", "600")) as env:
        result = await roll(env, Command(content="run", timeout=10), delivery_timeout=30)
        by_id = result.by_instance()
        ok = by_id["i-ok1"]
        assert (ok.outcome, ok.status, ok.exit_code, ok.output) == (
            Outcome.SUCCEEDED,
            "Success",
            0,
            "ok\n",
        )
        fail = by_id["i-fail1"]
        assert (fail.outcome, fail.status, fail.exit_code, fail.error_code) == (
            Outcome.FAILED,
            "Failed",
            3,
            "ExitCodeNonzero",
        )
        assert fail.output == "error: simulated failure\n"
        hang = by_id["i-hang1"]
        assert (hang.outcome, hang.status, hang.error_code) == (
            Outcome.FAILED,
            "Timeout",
            "ExecutionTimeout",
        )
        offline = by_id["i-offline1"]
        assert offline.outcome is Outcome.UNDELIVERED
        assert offline.status == "Cancelled"
        assert offline.error_code == "DeliveryTimeout"
        assert "30 s" in offline.error_info
        assert env.sim.stats.count("StopInvocation", "ok") == 1
        assert "i-offline1" not in env.sim.simulation.execution_counts()


async def test_an_agent_that_never_answers_is_undelivered_without_our_stop():
    """The service aborts it first (ClientNotResponse): UNDELIVERED, no StopInvocation."""
    async with simulated(FLEET.replace("OFFLINE", "20")) as env:
        result = await roll(env, Command(content="run", timeout=10), delivery_timeout=300)
        offline = result.by_instance()["i-offline1"]
        assert (offline.outcome, offline.status, offline.error_code) == (
            Outcome.UNDELIVERED,
            "Aborted",
            "ClientNotResponse",
        )
        assert env.sim.stats.count("StopInvocation") == 0


async def test_long_output_keeps_head_and_tail_and_counts_what_was_dropped():
    """33,000 bytes printed: the API keeps 24 KB, we keep 1 KB + 3 KB; the rest is counted."""
    async with simulated(FLEET.replace("OFFLINE", "20")) as env:
        result = await roll(env, Command(content="run", timeout=10), delivery_timeout=300)
        chatty = result.by_instance()["i-chatty1"]
        assert chatty.output_dropped == 33_000 - 4096
        printed = "0123456789\n" * 3000
        kept_by_api = printed[: 24 * 1024]
        assert chatty.output.startswith(printed[:1024])
        assert chatty.output.endswith(kept_by_api[-3072:])
        assert "[... 20480 bytes dropped ...]" in chatty.output


async def test_a_periodic_command_is_done_once_scheduled():
    """RepeatMode Period: Scheduled means the schedule is in place → SUCCEEDED."""
    async with simulated(FLEET.replace("OFFLINE", "20")) as env:
        command = Command(content="run", timeout=10, repeat_mode="Period", frequency="rate(5m)")
        result = await roll(env, command, delivery_timeout=300)
        ok = result.by_instance()["i-ok1"]
        assert (ok.outcome, ok.status) == (Outcome.SUCCEEDED, "Scheduled")
        assert result.in_flight == ()


@pytest.mark.parametrize(
    ("status", "code", "stopped", "expected"),
    [
        (S.SUCCESS, "", False, Outcome.SUCCEEDED),
        (S.SCHEDULED, "", False, Outcome.SUCCEEDED),
        (S.FAILED, "ExitCodeNonzero", False, Outcome.FAILED),
        (S.TIMEOUT, "ExecutionTimeout", False, Outcome.FAILED),
        (S.ERROR, "ExecutionException", False, Outcome.FAILED),
        (S.INVALID, "", False, Outcome.FAILED),
        (S.ABORTED, "ClientNotResponse", False, Outcome.UNDELIVERED),
        (S.FAILED, "ClientNeedUpgrade", False, Outcome.UNDELIVERED),
        (S.FAILED, "InstanceNotRunning", False, Outcome.UNDELIVERED),
        (S.CANCELLED, "", False, Outcome.STOPPED),
        (S.CANCELLED, "", True, Outcome.UNDELIVERED),
        (S.TERMINATED, "", False, Outcome.STOPPED),
        (S.PENDING, "", True, Outcome.UNDELIVERED),
        (S.RUNNING, "", True, Outcome.STOPPED),
    ],
)
def test_outcome_of_maps_every_final_state(status, code, stopped, expected):
    """One row per API state (and error code) that decides an outcome."""
    assert outcome_of(status, code, delivery_stopped=stopped) is expected


def test_bound_output_keeps_short_output_whole():
    """Output within the budget is kept as it is."""
    assert bound_output("hello\n") == ("hello\n", 0)


def test_bound_output_cuts_on_character_boundaries():
    """A cut through a multi-byte character drops the broken bytes, never raises."""
    text = "é" * 3000  # 6,000 bytes
    kept, dropped = bound_output(text, head=11, tail=11)
    assert dropped == 6000 - 22
    assert kept.startswith("ééééé\n")
    assert kept.endswith("\nééééé")
