"""An exec run is a run like any other: killed mid-run, `status` says it is interrupted
and how to go on, `orchestrator resume RUN` finishes it from the journal alone (no plan
file exists), and every instance ran exactly once.

The simulator is a separately started `orchestrator sim` process, as an operator's demo
runs it; the executions are counted through its `/_sim/executions` endpoint.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import aiohttp
import anyio
import pytest
from anyio.streams.text import TextReceiveStream

from orchestrator.journal import journal_path, read_journal
from orchestrator.sim import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from tests.e2e.cli_io import until_line

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


pytestmark = pytest.mark.anyio

INSTANCES = 12
# The canary's 2 instances run for about 3 real seconds: the kill lands while they run.
FLEET = f"""
region: cn-hangzhou
seed: 5
time_scale: 0.01
quotas: {{invocations_daily: 100000, commands: 500, max_instances_per_call: 50}}
generate:
  - count: {INSTANCES}
    zones: [cn-hangzhou-h, cn-hangzhou-i]
    tags: {{app: web}}
behaviour:
  default: {{duration: 300, delivery_delay: 0.5, output: "ok\\n"}}
"""


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env |= {
        "HOME": str(home),
        "PYTHONUNBUFFERED": "1",
        "ORCHESTRATOR_STATE_DIR": str(home / "state"),
        "ALIBABA_CLOUD_ACCESS_KEY_ID": DEFAULT_ACCESS_KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": DEFAULT_ACCESS_KEY_SECRET,
    }
    return env


def orchestrator(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator", *args]


@pytest.fixture
async def sim_url(tmp_path: Path) -> AsyncIterator[str]:
    """`orchestrator sim` in its own process; its URL once it listens."""
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    command = orchestrator("sim", "--port", "0", "--fleet", str(fleet))
    async with await anyio.open_process(command, env=env_for(tmp_path)) as process:
        try:
            assert process.stdout is not None
            text = ""
            with anyio.fail_after(30):
                async for chunk in TextReceiveStream(process.stdout):
                    text += chunk
                    if "access key secret" in text:
                        break
            found = re.search(r"http://127\.0\.0\.1:\d+", text)
            assert found, text
            yield found.group(0)
        finally:
            process.send_signal(signal.SIGINT)
            with anyio.fail_after(30):
                await process.wait()


async def cli(*args: str, home: Path) -> subprocess.CompletedProcess[bytes]:
    return await anyio.run_process(orchestrator(*args), env=env_for(home), check=False)


async def test_an_exec_run_killed_mid_run_resumes_and_each_instance_runs_once(
    tmp_path: Path, sim_url: str
):
    where = ("--endpoint", sim_url, "--region", "cn-hangzhou")
    args = orchestrator(
        "exec", "--tag", "app=web", "--canary", "2", "--timeout", "86400", "--yes",
        "-v", "--log-format", "console", *where, "--", "echo", "ok",
    )  # fmt: skip
    async with await anyio.open_process(
        args, env=env_for(tmp_path), stderr=subprocess.STDOUT
    ) as process:
        seen = await until_line(process, "batch ")  # the canary's batch was sent
        process.send_signal(signal.SIGKILL)
        await process.wait()
    run_id = re.search(r"^run (\S+): plan", seen, re.MULTILINE)
    assert run_id, seen
    run = run_id.group(1)

    status = await cli("status", run, home=tmp_path)
    assert status.returncode == 0
    shown = status.stdout.decode()
    assert f"continue it with `orchestrator resume {run}`" in shown, shown

    resumed = await cli("resume", run, home=tmp_path)
    output = resumed.stdout.decode()
    assert resumed.returncode == 0, output + resumed.stderr.decode()
    assert "took over the lock of pid" in output, output  # the killed process's

    record = read_journal(journal_path(tmp_path / "state", run))
    assert record.state == "finished"
    assert record.exit_code == 0
    assert record.header.origin.kind == "exec"
    assert len(record.results) == INSTANCES
    async with aiohttp.ClientSession() as http, http.get(f"{sim_url}/_sim/executions") as got:
        counts = await got.json()
    runs = {instance: sum(per.values()) for instance, per in counts.items()}
    assert runs == dict.fromkeys(record.results, 1)  # every instance, exactly once
