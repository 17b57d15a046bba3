"""On a terminal, `orchestrator exec` asks before it sends, once the targets are known:
answering "n" sends nothing (exit 0: declining is not a failure), "y" runs. The CLI runs
in a subprocess on a real pseudo-terminal (stdin, stdout and stderr), against a
simulator the test owns; off a terminal nothing is asked (the other exec tests)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from typing import TYPE_CHECKING

import anyio
import pytest

from orchestrator.journal import list_runs
from orchestrator.sim import RunningSimulator, load_fleet, serve

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.anyio

FLEET = """
region: cn-hangzhou
seed: 4
time_scale: 0.001
generate:
  - count: 12
    zones: [cn-hangzhou-h, cn-hangzhou-i]
    tags: {app: web}
behaviour:
  default: {duration: 2, delivery_delay: 0.5, output: "ok\\n"}
"""
QUESTION = "run RunShellScript on 12 instances in 2 waves (canary 1, rest 11)? [y/N] "
DEADLINE = 60.0  # real seconds for the whole conversation; a hang fails, never stalls


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with serve(load_fleet(FLEET)) as running:
        yield running


def env_for(home: Path, sim: RunningSimulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env |= {
        "HOME": str(home),
        "PYTHONUNBUFFERED": "1",
        "ORCHESTRATOR_STATE_DIR": str(home),
        "ALIBABA_CLOUD_ACCESS_KEY_ID": sim.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": sim.access_key_secret,
        "TERM": "xterm",
    }
    return env


def converse(args: list[str], env: dict[str, str], answer: str) -> tuple[int, str]:
    """Run `args` on a pseudo-terminal; once it asks, type `answer`. (exit code, output)."""
    leader, follower = os.openpty()
    process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        args, stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True
    )
    os.close(follower)  # the child holds it: its exit ends our reads (EIO)
    output, answered = b"", False
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], DEADLINE)
            if not ready:
                raise AssertionError(f"no output for {DEADLINE} s:\n{output.decode()}")
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if not answered and b"[y/N] " in output:
                os.write(leader, answer.encode() + b"\n")
                answered = True
        code = process.wait(timeout=DEADLINE)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)
    return code, output.decode(errors="replace")


async def ask(tmp_path: Path, sim: RunningSimulator, answer: str) -> tuple[int, str]:
    args = [
        sys.executable, "-m", "orchestrator", "exec", "--tag", "app=web", "--canary", "1",
        "--endpoint", sim.url, "--region", sim.region, "--", "echo", "ok",
    ]  # fmt: skip
    return await anyio.to_thread.run_sync(converse, args, env_for(tmp_path, sim), answer)


async def test_no_sends_nothing_and_exits_0(tmp_path: Path, sim: RunningSimulator):
    code, output = await ask(tmp_path, sim, "n")
    assert QUESTION in output, output
    assert "nothing was sent" in output
    assert code == 0, output
    assert sim.stats.count("DescribeInstances") >= 1  # the targets were resolved first
    assert sim.stats.count("RunCommand") == 0
    assert list_runs(tmp_path) == []  # nothing journalled either


async def test_yes_runs_every_instance_once(tmp_path: Path, sim: RunningSimulator):
    code, output = await ask(tmp_path, sim, "y")
    assert QUESTION in output, output
    assert code == 0, output
    counts = sim.simulation.execution_counts()
    assert len(counts) == 12
    assert {sum(runs.values()) for runs in counts.values()} == {1}
    assert [run.state for run in list_runs(tmp_path)] == ["finished"]
