"""Every exit code of docs/errors-and-exit-codes.md through the real CLI in a subprocess.

CI pipelines branch on these numbers, so each is reached here the way a pipeline would
meet it: `python -m orchestrator` in a subprocess, against a simulator this test owns
and a fleet it writes, with the state dir in the test's own directory. Each test checks
the code and the one line that tells a person (or a log search) why.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import anyio
import pytest

from orchestrator.journal import RunLock
from orchestrator.sim import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    FaultKind,
    RunningSimulator,
    load_fleet,
    serve,
)
from tests.e2e.cli_io import run_id_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from anyio.abc import Process

pytestmark = pytest.mark.anyio

# Three healthy web servers and one that always fails with exit 3. `duration` and
# `time_scale` make runs either finish in milliseconds or outlive the test.
FLEET = """
region: cn-hangzhou
seed: 11
time_scale: {scale}
quotas: {{invocations_daily: {daily}, commands: 20, max_instances_per_call: 50}}
instances:
  - {{id: i-good1, zone: cn-hangzhou-h, tags: {{app: web, health: good}}}}
  - {{id: i-good2, zone: cn-hangzhou-i, tags: {{app: web, health: good}}}}
  - {{id: i-good3, zone: cn-hangzhou-h, tags: {{app: web, health: good}}}}
  - {{id: i-bad1, zone: cn-hangzhou-i, tags: {{app: web, health: bad}}}}
behaviour:
  stop_delay: 1
  default: {{duration: {duration}, delivery_delay: 0.5, output: "ok\\n"}}
  rules:
    - match: {{tags: {{health: bad}}}}
      fail_rate: 1
      fail_exit_code: 3
      fail_output: "boom\\n"
"""

PLAN = """\
name: exits
targets: {{tags: {tags}}}
command:
  content: echo ok
  timeout: 86400                # the CLI polls on real time: a long run must outlive a poll
waves:
  - {{name: all, size: 100%, max_errors: {max_errors}}}
limits:
  qps: {{RunCommand: 50, Describe: 100}}
"""

GOOD = "{health: good}"
EVERY = "{app: web}"
WRONG_SECRET = "not-the-simulators-secret"
# Off a terminal the CLI logs JSON lines, as a pipeline sees them; with -v, one per batch.
DISPATCHED = '"batch.dispatched"'

Keys = tuple[str, str]


def keys_of(sim: RunningSimulator) -> Keys:
    return sim.access_key_id, sim.access_key_secret


def env_for(home: Path, keys: Keys | None) -> dict[str, str]:
    """No credentials but `keys`; journals, locks and markers in the test's directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env |= {"HOME": str(home), "PYTHONUNBUFFERED": "1", "ORCHESTRATOR_STATE_DIR": str(home)}
    if keys is not None:
        env["ALIBABA_CLOUD_ACCESS_KEY_ID"], env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = keys
    return env


def command(*args: str, sim: RunningSimulator | None = None) -> list[str]:
    where = ["--endpoint", sim.url, "--region", sim.region] if sim is not None else []
    return [sys.executable, "-m", "orchestrator", *args, *where]


async def cli(
    *args: str,
    home: Path,
    sim: RunningSimulator | None = None,
    keys: Keys | None = None,
) -> tuple[int, str]:
    """The CLI in a worker thread (the simulator keeps serving in the event loop): its
    exit code and its stdout and stderr together. `sim` adds the endpoint flags and, unless
    `keys` are given, its credentials (a resume or stop takes the recorded endpoint)."""

    def call() -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
            command(*args, sim=sim),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env_for(home, keys or (keys_of(sim) if sim else None)),
            timeout=60,
            check=False,
        )

    done = await anyio.to_thread.run_sync(call)
    return done.returncode, done.stdout


async def until_line(process: Process, text: str) -> str:
    """Read the process's output until it holds `text`; all of it so far."""
    assert process.stdout is not None
    seen = ""
    with anyio.fail_after(30):
        async for chunk in process.stdout:
            seen += chunk.decode()
            if text in seen:
                return seen
    raise AssertionError(f"{text!r} never came:\n{seen}")


async def rest_of(process: Process) -> str:
    assert process.stdout is not None
    with anyio.fail_after(30):
        return b"".join([chunk async for chunk in process.stdout]).decode()


def plan_file(home: Path, *, tags: str = GOOD, max_errors: str = "0") -> Path:
    path = home / "plan.yaml"
    path.write_text(PLAN.format(tags=tags, max_errors=max_errors))
    return path


@pytest.fixture
async def quick() -> AsyncIterator[RunningSimulator]:
    """Commands that finish in a few milliseconds."""
    async with serve(load_fleet(FLEET.format(scale=0.001, duration=2, daily=1000))) as sim:
        yield sim


@pytest.fixture
async def slow() -> AsyncIterator[RunningSimulator]:
    """Commands that run for days: a run stays in flight until something ends it."""
    async with serve(load_fleet(FLEET.format(scale=0.01, duration=10**6, daily=1000))) as sim:
        yield sim


async def test_0_when_every_instance_succeeds(tmp_path: Path, quick: RunningSimulator):
    code, out = await cli("run", str(plan_file(tmp_path)), home=tmp_path, sim=quick)
    assert code == 0, out
    assert '3 instances: succeeded, exit 0, "ok"' in out


async def test_1_when_an_instance_fails_and_max_errors_tolerates_it(
    tmp_path: Path, quick: RunningSimulator
):
    plan = plan_file(tmp_path, tags=EVERY, max_errors="1")
    code, out = await cli("run", str(plan), home=tmp_path, sim=quick)
    assert code == 1, out
    assert "i-bad1  exit 3  ExitCodeNonzero  boom" in out


@pytest.mark.parametrize("case", ["bad plan", "missing run"])
async def test_2_for_a_bad_plan_or_a_missing_run(
    tmp_path: Path, quick: RunningSimulator, case: str
):
    if case == "bad plan":
        plan = tmp_path / "plan.yaml"
        plan.write_text("name: x\ntargets: {tags: {app: web}}\ncommand: {timeout: 30}\n")
        code, out = await cli("run", str(plan), home=tmp_path, sim=quick)
        expected = f"{plan}:3: command: "
    else:
        code, out = await cli("resume", "no-such-run", home=tmp_path)
        expected = f"error: run no-such-run not found in {tmp_path}"
    assert code == 2, out
    assert expected in out
    assert quick.stats.count("RunCommand") == 0


async def test_3_when_a_wave_breaches(tmp_path: Path, quick: RunningSimulator):
    plan = plan_file(tmp_path, tags=EVERY, max_errors="0")
    code, out = await cli("run", str(plan), home=tmp_path, sim=quick)
    assert code == 3, out
    assert "halted (breach): wave all breached: 1 error > max_errors 0" in out


async def test_3_when_orchestrator_stop_stops_a_live_run(tmp_path: Path, slow: RunningSimulator):
    """`stop` from another process succeeds (0); the run it stopped exits 3."""
    run = command("run", str(plan_file(tmp_path)), "-v", sim=slow)
    async with await anyio.open_process(
        run, env=env_for(tmp_path, keys_of(slow)), stderr=subprocess.STDOUT
    ) as process:
        seen = await until_line(process, DISPATCHED)
        stop_code, stopped = await cli("stop", run_id_of(seen), home=tmp_path, keys=keys_of(slow))
        assert stop_code == 0, stopped
        rest = await rest_of(process)
        assert await process.wait() == 3, seen + rest
    assert "halted (stopped): stopped by orchestrator stop" in rest


async def test_4_when_the_endpoint_cannot_be_reached(tmp_path: Path):
    """Nothing listens on port 1: connections are refused, retried, then given up."""
    code, out = await cli(
        "run",
        str(plan_file(tmp_path)),
        "--endpoint",
        "http://127.0.0.1:1",
        "--region",
        "cn-hangzhou",
        home=tmp_path,
        keys=(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
    )
    assert code == 4, out
    assert "error: DescribeInstances: ClientConnectorError talking to http://127.0.0.1:1" in out


async def test_4_when_the_api_refuses_the_run(tmp_path: Path, quick: RunningSimulator):
    """A RAM user without ecs:RunCommand: the API's own code, and nothing ran."""
    quick.faults.fail_next(FaultKind.API_ERROR, action="RunCommand", code="Operation.Forbidden")
    code, out = await cli("run", str(plan_file(tmp_path)), home=tmp_path, sim=quick)
    assert code == 4, out
    assert "halted (refused): Operation.Forbidden The operation is not permitted." in out
    assert quick.simulation.execution_counts() == {}


async def test_5_when_the_access_key_secret_is_wrong(tmp_path: Path, quick: RunningSimulator):
    code, out = await cli(
        "run",
        str(plan_file(tmp_path)),
        home=tmp_path,
        sim=quick,
        keys=(quick.access_key_id, WRONG_SECRET),
    )
    assert code == 5, out
    assert "error: DescribeInstances: SignatureDoesNotMatch" in out
    assert WRONG_SECRET not in out


async def test_6_when_the_daily_quota_cannot_cover_the_run(tmp_path: Path):
    async with serve(load_fleet(FLEET.format(scale=0.001, duration=2, daily=2))) as sim:
        code, out = await cli("run", str(plan_file(tmp_path)), home=tmp_path, sim=sim)
        assert code == 6, out
        assert sim.stats.count("RunCommand") == 0
    assert (
        "needs 3 invocations (one per instance) but the daily quota max-axt-invocation-daily is 2"
        in out
    )


async def test_7_when_another_process_holds_the_run(tmp_path: Path, slow: RunningSimulator):
    """An unfinished run (its process killed), its lock held here: a resume refuses.
    (A finished run's resume only prints its summary and needs no lock.)"""
    run = command("run", str(plan_file(tmp_path)), "-v", sim=slow)
    async with await anyio.open_process(
        run, env=env_for(tmp_path, keys_of(slow)), stderr=subprocess.STDOUT
    ) as process:
        seen = await until_line(process, DISPATCHED)
        process.send_signal(signal.SIGKILL)
        await process.wait()
    run_id = run_id_of(seen)
    with RunLock.acquire(tmp_path / "runs" / run_id, run_id):
        code, out = await cli("resume", run_id, home=tmp_path, keys=keys_of(slow))
    assert code == 7, out
    assert f"run {run_id} is in use by pid {os.getpid()}" in out


async def test_130_when_interrupted_twice(tmp_path: Path, slow: RunningSimulator):
    """The first SIGINT drains (the commands here would run for days), the second exits
    at once, as a CI runner's SIGINT then SIGTERM on a cancelled job."""
    run = command("run", str(plan_file(tmp_path)), "-v", sim=slow)
    async with await anyio.open_process(
        run, env=env_for(tmp_path, keys_of(slow)), stderr=subprocess.STDOUT
    ) as process:
        seen = await until_line(process, DISPATCHED)
        process.send_signal(signal.SIGINT)
        seen += await until_line(process, "nothing more is sent")
        process.send_signal(signal.SIGINT)
        rest = await rest_of(process)
        assert await process.wait() == 130, seen + rest
    assert f"continue it with: orchestrator resume {run_id_of(seen)}" in rest
