"""The CLI in a real subprocess against an endpoint whose answers are broken: exit 4, one
`error:` line naming the action and the HTTP status, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import anyio
import pytest

from orchestrator.cli._wiring import REQUEST_DEADLINE, Target, connect
from tests.api.hostile import (
    Answer,
    Seen,
    deep_json,
    html_answer,
    json_answer,
    raw_answer,
    serve_hostile,
)

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

PLAN = """\
name: hostile
targets: {tags: {app: web}}
command:
  content: echo ok
  timeout: 60
waves:
  - {name: all, size: 100%, max_errors: 0}
"""


async def cli(*args: str, url: str, home: Path) -> subprocess.CompletedProcess[str]:
    """`python -m orchestrator ARGS --endpoint URL --region cn-hangzhou` with test keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env |= {
        "HOME": str(home),
        "ORCHESTRATOR_STATE_DIR": str(home / "state"),
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "testid",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "testsecret",
    }
    where = ["--endpoint", url, "--region", "cn-hangzhou"]

    def call() -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
            [sys.executable, "-m", "orchestrator", *args, *where],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )

    return await anyio.to_thread.run_sync(call)


def _one_error_line(done: subprocess.CompletedProcess[str], action: str, status: int) -> str:
    assert done.returncode == 4, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert action in errors[0]
    assert f"HTTP {status}" in errors[0]
    return errors[0]


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (raw_answer(deep_json(100_000)), 200),
        (html_answer(), 200),
        (raw_answer(b'{"Instances": {"Instance": [{"InstanceId": "i-\\ud800"}]}}'), 200),
        (raw_answer(b"\xff\xfe", status="502 Bad Gateway", content_type="text/html"), 502),
    ],
    ids=["deep json", "html 200", "lone surrogate", "garbage 502"],
)
async def test_instances_against_a_hostile_endpoint_exits_4(
    tmp_path: Path, answer: Answer, status: int
):
    async with serve_hostile(lambda _request: answer) as server:
        done = await cli("instances", url=server.url, home=tmp_path)
    _one_error_line(done, "DescribeInstances", status)


async def test_run_whose_describe_instances_is_broken_exits_4(tmp_path: Path):
    """Nothing is sent when the inventory cannot be read."""

    def answer(request: Seen) -> Answer:
        if request.action == "DescribeInstances":
            return json_answer({"RequestId": "r", "Instances": {"Instance": "x"}})
        return json_answer({"RequestId": "r"})

    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    async with serve_hostile(answer) as server:
        done = await cli("run", str(plan), url=server.url, home=tmp_path)
    _one_error_line(done, "DescribeInstances", 200)
    assert "RunCommand" not in server.actions()


async def test_the_cli_gives_every_attempt_a_deadline(monkeypatch: pytest.MonkeyPatch):
    """The client the CLI builds bounds every attempt (the drip tests in
    tests/api/test_hostile_answers.py show what the bound does)."""
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "testid")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "testsecret")
    async with connect(Target(region="cn-hangzhou", endpoint="http://127.0.0.1:9")) as conn:
        assert conn.client._http.request_timeout == REQUEST_DEADLINE
    async with connect(Target(sim="")) as conn:
        assert conn.client._http.request_timeout == REQUEST_DEADLINE
