"""docs/ram-policy.json is the least-privilege policy of a run: exactly the actions the
client can call (`ecs.ACTIONS`, the `Action` type every call is made with), RunCommand on
instances only under a tag condition; and a real run calls nothing outside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.ecs._caller import ACTIONS
from orchestrator.plan import Amount, Command, Plan, Targets, Wave
from orchestrator.rollout import RecordingSink, run_rollout
from orchestrator.targets import resolve
from orchestrator.testing import simulated

POLICY = Path(__file__).parents[2] / "docs" / "ram-policy.json"


def statements() -> list[dict[str, Any]]:
    document = json.loads(POLICY.read_text(encoding="utf-8"))
    assert document["Version"] == "1"
    listed: list[dict[str, Any]] = document["Statement"]
    return listed


def actions_of(statement: dict[str, Any]) -> set[str]:
    listed = statement["Action"]
    assert isinstance(listed, list)
    assert all(isinstance(a, str) and a.startswith("ecs:") for a in listed), listed
    return {a.removeprefix("ecs:") for a in listed}


def test_the_policy_grants_exactly_the_actions_the_client_can_call():
    granted = set().union(*(actions_of(s) for s in statements()))
    assert granted == ACTIONS
    assert all(s["Effect"] == "Allow" for s in statements())
    assert not any("*" in a for s in statements() for a in actions_of(s))  # no wildcard


def test_runcommand_reaches_only_instances_with_the_tag():
    on_instances = [
        s
        for s in statements()
        if "RunCommand" in actions_of(s) and "acs:ecs:*:*:instance/*" in s["Resource"]
    ]
    assert len(on_instances) == 1
    (statement,) = on_instances
    condition = statement["Condition"]
    assert isinstance(condition, dict)
    assert condition["StringEquals"] == {"ecs:tag/orchestrator-managed": ["true"]}


FLEET = """
region: cn-hangzhou
time_scale: 0.001
instances:
  - {id: i-1, zone: cn-hangzhou-h, tags: {app: web}}
  - {id: i-2, zone: cn-hangzhou-i, tags: {app: web}}
  - {id: i-3, zone: cn-hangzhou-i, tags: {app: web}, agent: offline}
behaviour:
  default: {duration: 1, output: "ok\\n"}
"""


@pytest.mark.anyio
async def test_a_real_run_calls_nothing_the_policy_does_not_grant():
    """The targets step, the quota check, dispatch, tracking and results: every action
    the simulator was asked is one of the client's (and so the policy's)."""
    async with simulated(FLEET) as env:
        plan = Plan(
            name="policy",
            targets=Targets(tags={"app": "web"}),
            command=Command(content="echo ok", timeout=30),
            waves=(Wave("all", Amount(100, percent=True)),),
        )
        resolution = await resolve(plan.targets, plan.command.type, env.client)
        await env.client.describe_account_attributes(["max-axt-invocation-daily"])
        await run_rollout(
            plan,
            env.client,
            resolution.runnable,
            run_id="policy-1",
            clock=env.clock,
            sink=RecordingSink(),
        )
        asked = set(env.sim.stats.snapshot())
    assert asked <= ACTIONS, asked - ACTIONS
    assert {"RunCommand", "DescribeInstances", "DescribeInvocations"} <= asked


def test_the_guides_read_only_policy_is_the_describe_part_of_the_policy():
    """docs/ci-guide.md's policy for the dry run grants the policy's reads, nothing more."""
    guide = (POLICY.parent / "ci-guide.md").read_text(encoding="utf-8")
    blocks = [json.loads(b.split("```", 1)[0]) for b in guide.split("```json\n")[1:]]
    (read_only,) = [b for b in blocks if "Statement" in b]
    granted = set().union(*(actions_of(s) for s in read_only["Statement"]))
    assert granted == {a for a in ACTIONS if a.startswith("Describe")}
