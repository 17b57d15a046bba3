"""A plan that would send the credentials the run signs with is refused before any
RunCommand: `orchestrator run` (and the dry run) in a subprocess, against a simulator
this test owns, with an STS key in the environment. Exit 2, the field named, the value
nowhere in what was printed, and the simulator saw no RunCommand."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import anyio
import pytest

from orchestrator.sim import RunningSimulator, load_fleet, serve

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.anyio

KEY_ID = "STS.in-use-test-key"
SECRET = "Sec-5d0c2b9e81-in-use"
TOKEN = "TOKEN-77a1c3e5f9-in-use-too"
FLEET = f"""
region: cn-hangzhou
seed: 5
time_scale: 0.001
keys:
  - {{access_key_id: {KEY_ID}, access_key_secret: {SECRET}, security_token: {TOKEN}}}
instances:
  - {{id: i-web1, zone: cn-hangzhou-h, tags: {{app: web}}}}
behaviour:
  default: {{duration: 1, output: "ok\\n"}}
"""
HEAD = "name: in-use\ntargets: {tags: {app: web}}\n"
HALF = len(SECRET) // 2
ENCODED = base64.b64encode(f"x{SECRET}".encode()).decode()  # not aligned on purpose

CASES = [
    (
        "content",
        f"command:\n  content: echo {SECRET}\n",
        "command.content: holds the access key secret in use: a plan may not send",
    ),
    (
        "parameter",
        "command:\n  content: echo {{x}}\n  parameters: {x: " + TOKEN + "}\n",
        "command.parameters: holds the security token in use in the value of x",
    ),
    (
        "filled-in",
        (
            "command:\n  content: echo {{a}}{{b}}\n"
            f"  parameters: {{a: {SECRET[:HALF]}, b: {SECRET[HALF:]}}}\n"
        ),
        "command.content: holds the access key secret in use once its parameters are filled in",
    ),
    (
        "verify-base64",
        (
            "command:\n  content: echo hi\nwaves:\n  - name: all\n    size: 100%\n"
            f"    verify: {{content: echo {ENCODED} | base64 -d}}\n"
        ),
        "waves[0].verify.content: holds the access key secret in use",
    ),
    (
        "tag",
        f"command:\n  content: echo hi\n  tags: {{owner: {TOKEN}}}\n",
        "command.tags: holds the security token in use in the value of owner",
    ),
]


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with serve(load_fleet(FLEET)) as running:
        yield running


async def cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env |= {
        "HOME": str(home),
        "ORCHESTRATOR_STATE_DIR": str(home / "state"),
        "ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
        "ALIBABA_CLOUD_SECURITY_TOKEN": TOKEN,
    }

    def call() -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
            [sys.executable, "-m", "orchestrator", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    return await anyio.to_thread.run_sync(call)


def assert_clean(done: subprocess.CompletedProcess[str]) -> None:
    printed = done.stdout + done.stderr
    for value in (SECRET, TOKEN, ENCODED, SECRET[:HALF], SECRET[HALF:]):
        assert value not in printed, "a credential was printed"
    assert "Traceback" not in printed


@pytest.mark.parametrize(("command", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_run_refuses_a_plan_holding_the_credentials_in_use(
    tmp_path: Path, sim: RunningSimulator, command: str, expected: str
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(HEAD + command)
    where = ("--endpoint", sim.url, "--region", sim.region)
    ran = await cli("run", str(plan), *where, home=tmp_path)
    dry = await cli("plan", str(plan), *where, home=tmp_path)
    for done in (ran, dry):
        assert done.returncode == 2, done.stdout + done.stderr
        assert f"{plan}: {expected}" in done.stderr
        assert_clean(done)
    assert sim.stats.count("RunCommand") == 0
    assert not (tmp_path / "state" / "runs").exists()  # no run was started


async def test_a_plan_without_them_runs(tmp_path: Path, sim: RunningSimulator) -> None:
    """The check refuses what holds the credentials, not every plan (the same key works)."""
    plan = tmp_path / "plan.yaml"
    plan.write_text(HEAD + "command:\n  content: echo {{x}}\n  parameters: {x: hello}\n")
    done = await cli("run", str(plan), "--endpoint", sim.url, "--region", sim.region, home=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sim.stats.count("RunCommand") == 1
