"""`override_params`: a plan's parameter values replaced, the result checked again."""

from __future__ import annotations

import pytest

from orchestrator.plan import PlanError, override_params, parse_param, parse_plan

PLAN = """\
name: p
targets: {instances: [i-a]}
command:
  content: "install {{Version}} on {{ACS::InstanceId}} ({{channel}})"
  parameters: {Version: 1.2.3, channel: stable}
"""


def test_a_value_is_replaced_under_the_plans_own_spelling_and_the_rest_is_kept():
    plan = parse_plan(PLAN)
    changed = override_params(plan, {"version": "1.2.4"})
    assert dict(changed.command.parameters) == {"Version": "1.2.4", "channel": "stable"}
    assert changed.command.content == plan.command.content
    assert dict(plan.command.parameters)["Version"] == "1.2.3"  # the plan is frozen data
    assert override_params(plan, {}) is plan


def test_an_unknown_name_lists_the_plans_parameters():
    with pytest.raises(
        PlanError,
        match=r"--param chanel: .*no parameter chanel \(its "
        r"parameters: Version, channel\)",
    ):
        override_params(parse_plan(PLAN), {"chanel": "beta"})


def test_a_value_that_looks_like_a_key_is_refused_without_being_repeated():
    secret = "LTAI5tQwErTyUiOpAsDfGh"
    with pytest.raises(PlanError) as raised:
        override_params(parse_plan(PLAN), {"channel": secret})
    assert "--param channel" in str(raised.value)
    assert secret not in str(raised.value)


@pytest.mark.parametrize(
    ("text", "pair"),
    [("a=b", ("a", "b")), ("a=b=c", ("a", "b=c")), ("a=", ("a", "")), (" a =x", ("a", "x"))],
)
def test_parse_param(text: str, pair: tuple[str, str]):
    assert parse_param(text) == pair


@pytest.mark.parametrize("text", ["a", "=b", ""])
def test_parse_param_refuses_what_names_nothing(text: str):
    with pytest.raises(PlanError, match="--param: give NAME=VALUE"):
        parse_param(text)
