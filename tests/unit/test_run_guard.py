"""The API guard's pure part: which invocations of other runs conflict with this run,
what the plan's tags are, and what the refusal says."""

from __future__ import annotations

import pytest

from orchestrator import api
from orchestrator.ecs import Invocation, InvocationInstance
from orchestrator.errors import ConcurrentRun
from orchestrator.plan import _rules, parse_plan
from orchestrator.rollout import (
    PLAN_DIGEST_TAG_KEY,
    PLAN_TAG_KEY,
    RUN_TAG_KEY,
    LiveRunElsewhere,
    PlanIdentity,
    build_request,
    find_conflicts,
    plan_tag_value,
)

S = api.InstanceInvocationStatus
ME = PlanIdentity("web-deploy", "a" * 64)
TARGETS = ("i-1", "i-2", "i-3", "i-4")


def invocation(
    run: str | None,
    *states: tuple[str, api.InstanceInvocationStatus],
    plan: str = "web-deploy",
    sha: str = "a" * 64,
) -> Invocation:
    tags = {PLAN_TAG_KEY: plan, PLAN_DIGEST_TAG_KEY: sha}
    if run is not None:
        tags[RUN_TAG_KEY] = run
    return Invocation(
        invoke_id=f"t-{run}-{len(states)}",
        command_id="c-1",
        status=api.InvocationStatus.RUNNING,
        instances=tuple(InvocationInstance(i, status) for i, status in states),
        tags=tags,
    )


def conflicts(*invocations: Invocation, run_id: str = "r-me", targets=TARGETS):
    return find_conflicts(invocations, identity=ME, run_id=run_id, targets=targets)


def test_another_runs_live_instances_on_our_targets_conflict():
    (found,) = conflicts(invocation("r-other", ("i-1", S.RUNNING), ("i-2", S.PENDING)))
    assert found.run_id == "r-other"
    assert found.instances == {"i-1", "i-2"}
    assert not found.edited


@pytest.mark.parametrize("status", [S.PENDING, S.RUNNING, S.STOPPING, S.SCHEDULED])
def test_every_state_that_is_not_final_is_live(status: api.InstanceInvocationStatus):
    assert conflicts(invocation("r-other", ("i-1", status)))


@pytest.mark.parametrize(
    "status",
    [S.SUCCESS, S.FAILED, S.INVALID, S.ABORTED, S.ERROR, S.TIMEOUT, S.CANCELLED, S.TERMINATED],
)
def test_a_final_state_is_not_live(status: api.InstanceInvocationStatus):
    assert conflicts(invocation("r-other", ("i-1", status))) == ()


def test_our_own_invocations_never_conflict():
    """A resume finds what its earlier attempt sent: same run tag, not another run."""
    assert conflicts(invocation("r-me", ("i-1", S.RUNNING))) == ()


def test_instances_we_do_not_target_do_not_conflict():
    assert conflicts(invocation("r-other", ("i-9", S.RUNNING))) == ()


def test_an_overlap_on_some_instances_counts_only_those():
    found = conflicts(
        invocation("r-other", ("i-1", S.RUNNING), ("i-8", S.RUNNING), ("i-2", S.SUCCESS)),
        invocation("r-other", ("i-3", S.RUNNING), ("i-9", S.RUNNING)),
    )
    assert [(c.run_id, set(c.instances)) for c in found] == [("r-other", {"i-1", "i-3"})]


def test_several_runs_come_most_instances_first():
    found = conflicts(
        invocation("r-small", ("i-4", S.RUNNING)),
        invocation("r-big", ("i-1", S.RUNNING), ("i-2", S.RUNNING)),
    )
    assert [c.run_id for c in found] == ["r-big", "r-small"]


def test_another_digest_of_the_same_plan_is_an_edit_and_conflicts_too():
    (found,) = conflicts(invocation("r-old", ("i-1", S.RUNNING), sha="b" * 64))
    assert found.edited
    assert found.sha256 == "b" * 64


def test_another_plan_never_conflicts():
    """The filter asks for our plan's tag; a page that held another is not trusted."""
    assert conflicts(invocation("r-other", ("i-1", S.RUNNING), plan="db-migrate")) == ()


def test_an_invocation_without_a_run_tag_is_an_unnamed_run():
    (found,) = conflicts(invocation(None, ("i-1", S.RUNNING)))
    assert found.run_id == ""


def test_the_refusal_names_the_run_the_overlap_and_the_edit():
    found = conflicts(
        invocation("r-old", ("i-1", S.RUNNING), ("i-2", S.RUNNING), sha="b" * 64),
        invocation("r-other", ("i-3", S.RUNNING)),
    )
    error = LiveRunElsewhere(found, plan="web-deploy", region="cn-hangzhou", targets=4)
    text = str(error)
    assert isinstance(error, ConcurrentRun)
    assert error.other_run == "r-old"
    assert "run r-old has 2 of this run's 4 instances still pending or running" in text
    assert "nothing was sent" in text
    assert "edited version of this plan (sha256 bbbbbbbbbbbb…)" in text
    assert "1 more runs of it are live too" in text
    assert "orchestrator status r-old" in text
    assert "--allow-concurrent" in text


def test_a_plan_name_the_api_takes_as_a_tag_value_is_kept():
    assert plan_tag_value("web-deploy") == "web-deploy"
    assert plan_tag_value("x" * api.TAG_VALUE_MAX) == "x" * api.TAG_VALUE_MAX


@pytest.mark.parametrize("name", ["x" * (api.TAG_VALUE_MAX + 1), "see https://x"])
def test_a_plan_name_the_api_would_refuse_becomes_its_digest(name: str):
    value = plan_tag_value(name)
    assert value.startswith("sha256:")
    assert len(value) <= api.TAG_VALUE_MAX
    assert value == plan_tag_value(name)  # the same on every machine, every attempt


def test_every_runcommand_carries_the_plan_identity_next_to_the_run_tag():
    plan = parse_plan(
        "name: web-deploy\ntargets: {tags: {app: web}}\n"
        "command: {content: echo hi, tags: {team: web}}\n"
    )
    request = build_request(plan.command, ["i-1"], token="tok", run_id="r-1", plan=ME)
    assert dict(request.tags) == {
        "team": "web",
        PLAN_TAG_KEY: "web-deploy",
        PLAN_DIGEST_TAG_KEY: "a" * 64,
        RUN_TAG_KEY: "r-1",
    }
    assert len(request.tags) <= api.TAGS_MAX


def test_the_plan_checker_reserves_exactly_the_tags_orchestrator_adds():
    assert set(_rules.RESERVED_TAGS) == {RUN_TAG_KEY, PLAN_TAG_KEY, PLAN_DIGEST_TAG_KEY}
    assert _rules.USER_TAGS_MAX + len(ME.tags()) + 1 == api.TAGS_MAX
