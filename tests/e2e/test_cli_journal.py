"""The journal commands through the real CLI in subprocesses, against a simulator the test
owns: `runs` and `status` (also while a run goes on, from another process), `resume` of
a finished run (a no-op with the summary), of a changed plan (refused unless --force), of
an embedded-simulator run (refused), a second process on a locked run (exit 7), `stop`
of a live run and of a run whose process was killed, and the first Ctrl-C (drain: what
runs finishes, then a resume does the rest, exactly once)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import anyio
import pytest

from orchestrator.journal import RunLock, journal_path, read_journal
from orchestrator.rollout import Outcome
from orchestrator.sim import RunningSimulator, load_fleet, serve
from tests.e2e.cli_io import run_id_of, until_line

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


pytestmark = pytest.mark.anyio

FLEET = """
region: cn-hangzhou
seed: 4
time_scale: {scale}
quotas: {{invocations_daily: 100000, commands: 500, max_instances_per_call: 50}}
generate:
  - count: 12
    zones: [cn-hangzhou-h, cn-hangzhou-i]
    tags: {{app: web}}
behaviour:
  stop_delay: 1
  default: {{duration: {duration}, delivery_delay: 0.5, output: "ok\\n"}}
"""

PLAN = """\
name: journal
targets: {tags: {app: web}}
command:
  content: echo ok
  timeout: 86400
waves:
  - {name: canary, size: 2}
  - {name: rest, size: 100%}
limits:
  batch_size: 5
  qps: {RunCommand: 50, Describe: 100}
"""


def env_for(home: Path, sim: RunningSimulator | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env |= {"HOME": str(home), "PYTHONUNBUFFERED": "1", "ORCHESTRATOR_STATE_DIR": str(home)}
    if sim is not None:
        env["ALIBABA_CLOUD_ACCESS_KEY_ID"] = sim.access_key_id
        env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = sim.access_key_secret
    return env


def command(*args: str, sim: RunningSimulator | None = None) -> list[str]:
    where = ["--endpoint", sim.url, "--region", sim.region] if sim is not None else []
    return [sys.executable, "-m", "orchestrator", *args, *where]


async def cli(
    *args: str,
    home: Path,
    sim: RunningSimulator | None = None,
    run_sim: RunningSimulator | None = None,
) -> subprocess.CompletedProcess[str]:
    """The CLI in a worker thread (the simulator keeps serving); `sim` adds the endpoint
    flags, `run_sim` only its credentials (resume and stop take the recorded endpoint)."""
    keys = sim or run_sim

    def call() -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
            command(*args, sim=sim),
            capture_output=True,
            text=True,
            env=env_for(home, keys),
            timeout=120,
            check=False,
        )

    return await anyio.to_thread.run_sync(call)


@pytest.fixture
async def quick() -> AsyncIterator[RunningSimulator]:
    """Commands that finish in a few milliseconds."""
    async with serve(load_fleet(FLEET.format(scale=0.001, duration=2))) as sim:
        yield sim


@pytest.fixture
async def slow() -> AsyncIterator[RunningSimulator]:
    """Commands that run for hours: a run stays in flight until it is stopped."""
    async with serve(load_fleet(FLEET.format(scale=0.01, duration=10**6))) as sim:
        yield sim


def plan_file(home: Path) -> Path:
    path = home / "plan.yaml"
    path.write_text(PLAN)
    return path


async def test_runs_status_and_resuming_a_finished_run(tmp_path: Path, quick: RunningSimulator):
    done = await cli("run", str(plan_file(tmp_path)), home=tmp_path, sim=quick)
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = run_id_of(done.stdout)

    listed = await cli("runs", home=tmp_path)
    assert run_id in listed.stdout
    assert "finished" in listed.stdout

    latest = await cli("status", home=tmp_path)  # no RUN: the latest one
    assert f"run {run_id}" in latest.stdout
    assert "finished, exit 0" in latest.stdout
    assert "batches: 3 accepted" in latest.stdout  # 2 in the canary's, 10 in 2 of 5

    again = await cli("resume", run_id, home=tmp_path, run_sim=quick)
    assert again.returncode == 0
    assert "is finished; nothing to resume" in again.stdout
    assert "Outcome by wave" in again.stdout
    assert quick.stats.count("RunCommand") == 3  # nothing was sent again


async def test_status_of_an_unknown_run_and_an_empty_state_dir(tmp_path: Path):
    missing = await cli("status", "no-such-run", home=tmp_path)
    assert missing.returncode == 2
    assert "no-such-run" in missing.stderr
    empty = await cli("runs", home=tmp_path)
    assert empty.returncode == 0
    assert "no runs under" in empty.stdout


async def test_a_changed_plan_is_refused_unless_forced(tmp_path: Path, slow: RunningSimulator):
    """Killed mid-run, the plan file edited: resume refuses (2) and names the file;
    --force resumes the plan as recorded (the edit is not what runs)."""
    plan = plan_file(tmp_path)
    async with await anyio.open_process(
        command("run", str(plan), "-v", "--log-format", "console", sim=slow),
        env=env_for(tmp_path, slow),
        stderr=subprocess.STDOUT,  # the plain log lines are on stderr
    ) as process:
        seen = await until_line(process, "batch ")
        process.send_signal(signal.SIGKILL)
        await process.wait()
    run_id = run_id_of(seen)
    plan.write_text(PLAN.replace("echo ok", "echo changed"))

    refused = await cli("resume", run_id, home=tmp_path, run_sim=slow)
    assert refused.returncode == 2
    assert f"the plan file {plan} changed since the run started" in refused.stderr
    assert "--force" in refused.stderr

    async with await anyio.open_process(
        command("resume", run_id, "--force"), env=env_for(tmp_path, slow)
    ) as process:
        seen = await until_line(process, "resuming plan journal")
        # While it runs, another process holds the run: a second resume is refused.
        locked = await cli("resume", run_id, "--force", home=tmp_path, run_sim=slow)
        assert locked.returncode == 7
        assert f"run {run_id} is in use by pid {process.pid}" in locked.stderr
        status = await cli("status", run_id, home=tmp_path)
        assert f"running (pid {process.pid}" in status.stdout
        stopped = await cli("stop", run_id, home=tmp_path)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert await process.wait() == 3
    record = read_journal(journal_path(tmp_path, run_id))
    assert record.state == "finished"
    assert record.halt is not None
    assert record.halt.reason == "stopped"
    contents = {inv.spec.content for inv in slow.simulation.invocations.values()}
    assert contents == {"echo ok"}  # the recorded plan ran, never the edited one


async def test_a_second_run_process_on_a_locked_run_exits_7(
    tmp_path: Path, quick: RunningSimulator
):
    done = await cli("run", str(plan_file(tmp_path)), home=tmp_path, sim=quick)
    run_id = run_id_of(done.stdout)
    with RunLock.acquire(tmp_path / "runs" / run_id, run_id):
        stop = await cli("stop", run_id, "--wait", "0", home=tmp_path)
        assert stop.returncode != 0
        resume = await cli("resume", run_id, home=tmp_path)
        # A finished run needs no lock to print its summary.
        assert resume.returncode == 0


async def test_resuming_an_embedded_simulator_run_is_refused(tmp_path: Path):
    async with await anyio.open_process(
        command("run", str(plan_file(tmp_path)), "--sim", "-v", "--log-format", "console"),
        env=env_for(tmp_path),
        stderr=subprocess.STDOUT,  # the plain log lines are on stderr
    ) as process:
        seen = await until_line(process, "batch ")
        process.send_signal(signal.SIGKILL)
        await process.wait()
    refused = await cli("resume", run_id_of(seen), home=tmp_path)
    assert refused.returncode == 2
    assert "embedded simulator" in refused.stderr


async def test_stop_when_the_process_is_gone_stops_what_it_sent(
    tmp_path: Path, slow: RunningSimulator
):
    async with await anyio.open_process(
        command("run", str(plan_file(tmp_path)), "-v", "--log-format", "console", sim=slow),
        env=env_for(tmp_path, slow),
        stderr=subprocess.STDOUT,  # the plain log lines are on stderr
    ) as process:
        seen = await until_line(process, "batch ")
        process.send_signal(signal.SIGKILL)
        await process.wait()
    run_id = run_id_of(seen)
    sent = slow.stats.count("RunCommand")
    stopped = await cli("stop", run_id, home=tmp_path, run_sim=slow)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "stopping plan journal" in stopped.stdout
    assert slow.stats.count("RunCommand") == sent  # nothing new went out
    assert slow.stats.count("StopInvocation") >= 1
    record = read_journal(journal_path(tmp_path, run_id))
    assert record.state == "finished"
    assert record.counts()[Outcome.STOPPED] == 2  # the canary, stopped


async def test_the_first_ctrl_c_drains_and_a_resume_does_the_rest(
    tmp_path: Path, quick: RunningSimulator
):
    """SIGINT after the canary's batch: no more batches, the canary's instances finish
    and are recorded, exit 130; `resume` runs the rest; every instance once."""
    async with await anyio.open_process(
        command("run", str(plan_file(tmp_path)), "-v", "--log-format", "console", sim=quick),
        env=env_for(tmp_path, quick),
        stderr=subprocess.STDOUT,  # the plain log lines are on stderr
    ) as process:
        seen = await until_line(process, "batch 0/0")
        process.send_signal(signal.SIGINT)
        assert process.stdout is not None
        rest = b"".join([chunk async for chunk in process.stdout]).decode()
        assert await process.wait() == 130
    run_id = run_id_of(seen)
    assert "nothing more is sent" in rest
    assert f"continue it with: orchestrator resume {run_id}" in rest
    record = read_journal(journal_path(tmp_path, run_id))
    assert record.state == "interrupted"
    assert record.counts()[Outcome.SUCCEEDED] == 2
    assert quick.stats.count("RunCommand") == 1

    resumed = await cli("resume", run_id, home=tmp_path, run_sim=quick)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    counts = quick.simulation.execution_counts()
    assert {i: sum(n.values()) for i, n in counts.items()} == dict.fromkeys(counts, 1)
    assert len(counts) == 12
