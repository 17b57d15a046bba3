"""What is written stays written: the journal's main file after a SIGKILL (checkpoints),
a run rebuilt from the API when its journal is lost or damaged (`orchestrator recover`),
and a stop whose own process was killed half-way (the recorded stop intent).

Real subprocesses against a simulator the test owns; what reached the simulator is read
from its execution counts and its request counts.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import anyio
import pytest

from orchestrator.journal import journal_path, read_journal
from orchestrator.rollout import Outcome
from orchestrator.sim import RunningSimulator, load_fleet, serve
from tests.e2e.cli_io import run_id_of, until_line

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


pytestmark = pytest.mark.anyio

INSTANCES = 12
FLEET = """
region: cn-hangzhou
seed: 5
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
name: durable
targets: {tags: {app: web}}
command:
  content: echo ok
  timeout: 86400
waves:
  - {name: canary, size: 2}
  - {name: rest, size: 100%}
limits:
  batch_size: 2
  qps: {RunCommand: 50, Describe: 100}
"""


def env_for(home: Path, sim: RunningSimulator | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env |= {"HOME": str(home), "PYTHONUNBUFFERED": "1"}
    if sim is not None:
        env["ALIBABA_CLOUD_ACCESS_KEY_ID"] = sim.access_key_id
        env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = sim.access_key_secret
    return env


def command(*args: str, state: Path, sim: RunningSimulator | None = None) -> list[str]:
    where = ["--endpoint", sim.url, "--region", sim.region] if sim is not None else []
    return [sys.executable, "-m", "orchestrator", *args, *where, "--state-dir", str(state)]


async def cli(
    *args: str, home: Path, state: Path, sim: RunningSimulator, where: bool = False
) -> subprocess.CompletedProcess[str]:
    """The CLI in a worker thread (the simulator keeps serving); `where` adds the
    endpoint flags, otherwise only the credentials go (resume takes the recorded ones)."""

    def call() -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
            command(*args, state=state, sim=sim if where else None),
            capture_output=True,
            text=True,
            env=env_for(home, sim),
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


async def run_killed_at(
    home: Path, sim: RunningSimulator, text: str, *, plan_text: str = PLAN
) -> str:
    """`orchestrator run` SIGKILLed right after it printed `text`; the run id."""
    plan = home / "plan.yaml"
    plan.write_text(plan_text)
    args = ("run", str(plan), "-v", "--log-format", "console")
    async with await anyio.open_process(
        command(*args, state=home / "state", sim=sim),
        env=env_for(home, sim),
        stderr=subprocess.STDOUT,  # the plain log lines are on stderr
    ) as process:
        seen = await until_line(process, text)
        process.send_signal(signal.SIGKILL)
        await process.wait()
    return run_id_of(seen)


def ran_once_each(sim: RunningSimulator) -> dict[str, int]:
    """Instance → times the command started there; asserts none ran twice."""
    runs = {i: sum(per.values()) for i, per in sim.simulation.execution_counts().items()}
    assert all(n == 1 for n in runs.values()), runs
    return runs


async def test_a_cache_of_only_journal_sqlite_holds_the_header_and_the_passed_wave(
    tmp_path: Path, quick: RunningSimulator
):
    """Killed once wave 1 passed (the next wave's start is printed after `after_wave`):
    journal.sqlite alone, without its -wal and -shm, has the header and wave 1's results
    (checkpointed), and a resume from it sends nothing that ran."""
    run_id = await run_killed_at(tmp_path, quick, "wave rest:")
    kept = tmp_path / "restored"
    only = journal_path(kept, run_id)
    only.parent.mkdir(parents=True)
    shutil.copyfile(journal_path(tmp_path / "state", run_id), only)  # no -wal, no -shm

    record = read_journal(only)
    assert record.header.run_id == run_id
    assert len(record.header.instances) == INSTANCES
    assert record.waves[0].state == "passed"
    assert record.waves[0].counts[Outcome.SUCCEEDED] == 2

    resumed = await cli("resume", run_id, home=tmp_path, state=kept, sim=quick)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert len(ran_once_each(quick)) == INSTANCES
    final = read_journal(only)
    assert final.state == "finished"
    assert final.counts()[Outcome.SUCCEEDED] == INSTANCES


async def test_a_stop_killed_half_way_sticks_and_a_resume_sends_nothing_new(
    tmp_path: Path, quick: RunningSimulator
):
    """The run killed in the pause after its canary (the rest never sent); `orchestrator
    stop RUN` of the gone process killed right after its first line; `resume` then sends
    no RunCommand, says why, and ends halted `stopped` (exit 3)."""
    paused = PLAN.replace("{name: canary, size: 2}", "{name: canary, size: 2, pause: 20}")
    run_id = await run_killed_at(tmp_path, quick, "pause after wave canary", plan_text=paused)
    state = tmp_path / "state"
    sent = quick.stats.count("RunCommand")
    assert sent == 1  # the canary's batch only

    async with await anyio.open_process(
        command("stop", run_id, state=state), env=env_for(tmp_path, quick)
    ) as process:
        first = await until_line(process, "\n")
        process.send_signal(signal.SIGKILL)
        await process.wait()
    assert process.returncode == -signal.SIGKILL, first
    status = await cli("status", run_id, home=tmp_path, state=state, sim=quick)
    assert "a stop was asked" in status.stdout, status.stdout

    resumed = await cli("resume", run_id, home=tmp_path, state=state, sim=quick)
    assert resumed.returncode == 3, resumed.stdout + resumed.stderr
    assert "a stop of this run was recorded" in resumed.stdout, resumed.stdout
    assert quick.stats.count("RunCommand") == sent  # nothing new went out
    record = read_journal(journal_path(state, run_id))
    assert record.state == "finished"
    assert record.halt is not None
    assert record.halt.reason == "stopped"
    assert record.counts()[Outcome.NOT_SENT] == INSTANCES - 2
    assert len(ran_once_each(quick)) == 2


async def lose_journal(state: Path, run_id: str, how: str) -> None:
    """The journal `deleted` (with its -wal and -shm), or its main file `garbled`."""
    path = journal_path(state, run_id)
    if how == "deleted":
        for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
            (path.parent / name).unlink(missing_ok=True)
    else:
        path.write_bytes(b"not a journal at all\n" * 64)


@pytest.mark.parametrize("how", ["deleted", "garbled"])
async def test_recover_rebuilds_a_lost_journal_and_a_resume_runs_each_instance_once(
    tmp_path: Path, quick: RunningSimulator, how: str
):
    """Killed mid-rollout (two of the rest's batches sent), the journal lost: `recover`
    lists the run's invocations (no RunCommand), `resume` follows them and sends the
    rest; every instance ran exactly once and every result is in the journal."""
    run_id = await run_killed_at(tmp_path, quick, "batch 1/1")
    state = tmp_path / "state"
    await lose_journal(state, run_id, how)
    if how == "garbled":
        status = await cli("status", run_id, home=tmp_path, state=state, sim=quick)
        assert status.returncode == 2
        assert f"orchestrator recover {run_id} --plan PLAN" in status.stderr, status.stderr
    sent = quick.stats.count("RunCommand")

    plan = str(tmp_path / "plan.yaml")
    recovered = await cli(
        "recover", run_id, "--plan", plan, home=tmp_path, state=state, sim=quick, where=True
    )
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    assert quick.stats.count("RunCommand") == sent  # recover only lists
    assert f"orchestrator resume {run_id}" in recovered.stdout
    record = read_journal(journal_path(state, run_id))
    assert len(record.batches) >= 3  # the canary's and at least two of the rest's
    assert {row.state.value for row in record.batches} == {"accepted"}
    if how == "garbled":
        assert (journal_path(state, run_id).parent / "journal.sqlite.damaged").is_file()

    resumed = await cli("resume", run_id, home=tmp_path, state=state, sim=quick)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert len(ran_once_each(quick)) == INSTANCES
    final = read_journal(journal_path(state, run_id))
    assert final.state == "finished"
    assert len(final.results) == INSTANCES
    assert final.counts()[Outcome.SUCCEEDED] == INSTANCES
    assert quick.stats.count("RunCommand") == 6  # 1 + 5 batches, each sent once


async def test_recover_refuses_when_the_batches_cannot_be_proven_the_same(
    tmp_path: Path, quick: RunningSimulator
):
    """A plan that cuts other batches than the run did: recover says so, writes nothing
    and sends nothing (a resume could otherwise send to an instance that ran)."""
    run_id = await run_killed_at(tmp_path, quick, "batch 1/1")
    state = tmp_path / "state"
    await lose_journal(state, run_id, "deleted")
    other = tmp_path / "other.yaml"
    other.write_text(PLAN.replace("batch_size: 2", "batch_size: 3"))
    refused = await cli(
        "recover", run_id, "--plan", str(other), home=tmp_path, state=state, sim=quick, where=True
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "cannot be proven" in refused.stderr, refused.stderr
    assert not journal_path(state, run_id).exists()


async def test_recover_of_a_readable_journal_points_to_resume(
    tmp_path: Path, quick: RunningSimulator
):
    run_id = await run_killed_at(tmp_path, quick, "batch 0/0")
    plan = str(tmp_path / "plan.yaml")
    state = tmp_path / "state"
    refused = await cli(
        "recover", run_id, "--plan", plan, home=tmp_path, state=state, sim=quick, where=True
    )
    assert refused.returncode == 2
    assert f"orchestrator resume {run_id}" in refused.stderr, refused.stderr


def test_recover_refuses_a_run_id_that_is_a_path(tmp_path: Path):
    state = tmp_path / "state"
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    done = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        command("recover", "../elsewhere", "--plan", str(plan), state=state),
        capture_output=True,
        text=True,
        env=env_for(tmp_path),
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "a run id is a plain name" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "elsewhere").exists()
    assert not state.exists()
