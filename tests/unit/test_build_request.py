"""The RunCommand a batch sends, built from a plan's command."""

from __future__ import annotations

import base64

from orchestrator.plan import parse_plan
from orchestrator.rollout import RUN_TAG_KEY, build_request

PLAN = """\
name: builtins
targets: {{tags: {{app: web}}}}
command:
  content: {content}
"""


def test_built_in_parameters_alone_enable_parameters():
    """`{{ACS::InstanceId}}` with no `parameters` still sends EnableParameter=true,
    or the agent would print the braces instead of the ID."""
    plan = parse_plan(PLAN.format(content="'echo {{ACS::InstanceId}}'"))
    request = build_request(plan.command, ["i-1"], token="tok", run_id="run-1")
    assert request.enable_parameter is True
    assert dict(request.parameters) == {}


def test_content_travels_base64_with_the_run_tag():
    """Content is sent Base64-encoded; the run's tag lets the tracker find the batch."""
    plan = parse_plan(PLAN.format(content="'echo hi'"))
    request = build_request(plan.command, ["i-1", "i-2"], token="tok", run_id="run-1")
    assert request.content_encoding == "Base64"
    assert base64.b64decode(request.content).decode() == "echo hi"
    assert request.enable_parameter is False
    assert request.client_token == "tok"
    assert request.instance_ids == ("i-1", "i-2")
    assert dict(request.tags)[RUN_TAG_KEY] == "run-1"
