"""`resume` keeps the plan's safety rules: the recorded plan is checked against the
credentials the resume signs with (they may not be the first attempt's), and its
scripts are read again from where `run --script-dir` allowed. Real subprocesses, killed
mid-run, against a simulator this test owns."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import anyio
import pytest

from orchestrator.journal import journal_path, read_journal
from orchestrator.sim import RunningSimulator, load_fleet, serve
from tests.e2e.cli_io import until_line

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


pytestmark = pytest.mark.anyio

FIRST = ("first-resume-key", "Sec-first-0c4f7a91d2")
SECOND = ("second-resume-key", "Sec-second-8e2b5d13c6")
# Commands run for hours: a run stays in flight until it is killed or stopped.
FLEET = f"""
region: cn-hangzhou
seed: 4
time_scale: 0.01
keys:
  - {{access_key_id: {FIRST[0]}, access_key_secret: {FIRST[1]}}}
  - {{access_key_id: {SECOND[0]}, access_key_secret: {SECOND[1]}}}
generate:
  - count: 6
    zones: [cn-hangzhou-h]
    tags: {{app: web}}
behaviour:
  stop_delay: 1
  default: {{duration: 1000000, delivery_delay: 0.5, output: "ok\\n"}}
"""
PLAN = """\
name: resume-safety
targets: {{tags: {{app: web}}}}
command:
  {source}
  timeout: 86400
waves:
  - {{name: canary, size: 2}}
  - {{name: rest, size: 100%}}
limits:
  batch_size: 2
  qps: {{RunCommand: 50, Describe: 100}}
"""


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with serve(load_fleet(FLEET)) as running:
        yield running


def env_for(home: Path, key: tuple[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    return env | {
        "HOME": str(home),
        "PYTHONUNBUFFERED": "1",
        "ORCHESTRATOR_STATE_DIR": str(home / "state"),
        "ALIBABA_CLOUD_ACCESS_KEY_ID": key[0],
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": key[1],
    }


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator", *args]


async def cli(*args: str, home: Path, key: tuple[str, str]) -> subprocess.CompletedProcess[str]:
    def call() -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
            command(*args),
            capture_output=True,
            text=True,
            env=env_for(home, key),
            timeout=120,
            check=False,
        )

    return await anyio.to_thread.run_sync(call)


async def killed_run(home: Path, sim: RunningSimulator, plan: Path, *extra: str) -> str:
    """Start `run`, kill it once a batch went out; the run id."""
    async with await anyio.open_process(
        command(
            "run", str(plan), *extra, "-v", "--log-format", "console",
            "--endpoint", sim.url, "--region", sim.region,
        ),
        env=env_for(home, FIRST),
        stderr=subprocess.STDOUT,  # the plain log lines are on stderr
    ) as process:  # fmt: skip
        seen = await until_line(process, "batch ")
        process.send_signal(signal.SIGKILL)
        await process.wait()
    first = seen.splitlines()[0]
    assert first.startswith("run "), seen
    return first.split()[1].rstrip(":")


async def test_resume_refuses_a_plan_holding_its_own_credentials(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    """Started with the first key, the plan holds the second key's secret: fine then,
    refused when the resume signs with the second key, and nothing more is sent."""
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN.format(source=f"content: echo {SECOND[1]}"))
    run_id = await killed_run(tmp_path, sim, plan)
    sent = sim.stats.count("RunCommand")
    assert sent >= 1

    refused = await cli("resume", run_id, home=tmp_path, key=SECOND)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"{plan}: command.content: holds the access key secret in use" in refused.stderr
    assert SECOND[1] not in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr
    assert sim.stats.count("RunCommand") == sent


async def test_resume_reads_scripts_from_the_runs_script_dirs(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "deploy.sh").write_text("echo shared\n")
    plans = tmp_path / "plans"
    plans.mkdir()
    plan = plans / "plan.yaml"
    plan.write_text(PLAN.format(source="script: ../shared/deploy.sh"))
    run_id = await killed_run(tmp_path, sim, plan, "--script-dir", str(shared))
    record = read_journal(journal_path(tmp_path / "state", run_id))
    assert record.header.target["script_dirs"] == str(shared)

    async with await anyio.open_process(
        command("resume", run_id), env=env_for(tmp_path, FIRST)
    ) as process:
        await until_line(process, "resuming plan resume-safety")
        stopped = await cli("stop", run_id, home=tmp_path, key=FIRST)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert await process.wait() == 3  # stopped: the resume itself ran
    contents = {inv.spec.content for inv in sim.simulation.invocations.values()}
    assert contents == {"echo shared\n"}
