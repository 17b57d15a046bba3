"""What the e2e tests of child runs and overrides share (`test_cli_retry`, `test_cli_overrides`).

A fleet of five instances, two of which always fail; the CLI in a subprocess against a
simulator the test serves in its own process (it outlives every run, so a run can be
retried or resumed and the simulator's execution counts cover them all).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from orchestrator.journal import journal_path, read_journal
from tests.e2e.cli_io import run_id_of

if TYPE_CHECKING:
    from orchestrator.journal import JournalRecord
    from orchestrator.sim import RunningSimulator

ROOT = Path(__file__).parents[2]

FLEET = """
region: cn-hangzhou
seed: 5
time_scale: 0.001
quotas: {invocations_daily: 1000, commands: 20, max_instances_per_call: 50}
instances:
  - {id: i-bad1, zone: cn-hangzhou-h, tags: {app: retry}}
  - {id: i-ok1, zone: cn-hangzhou-i, tags: {app: retry}}
  - {id: i-bad2, zone: cn-hangzhou-j, tags: {app: retry}}
  - {id: i-ok2, zone: cn-hangzhou-j, tags: {app: retry}}
  - {id: i-ok3, zone: cn-hangzhou-j, tags: {app: retry}}
behaviour:
  default: {duration: 2, delivery_delay: 0.5, output: "ok\\n"}
  rules:
    - match: {instances: [i-bad1, i-bad2]}
      fail_rate: 1
"""
BAD = ("i-bad1", "i-bad2")
GOOD = ("i-ok1", "i-ok2", "i-ok3")


def env_for(home: Path, sim: RunningSimulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env |= {"HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env["ORCHESTRATOR_STATE_DIR"] = str(home / "state")
    env["ALIBABA_CLOUD_ACCESS_KEY_ID"] = sim.access_key_id
    env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = sim.access_key_secret
    return env


async def cli(*args: str, home: Path, sim: RunningSimulator) -> subprocess.CompletedProcess[str]:
    """The CLI in a worker thread (the simulator keeps serving), stdout and stderr apart."""

    def call() -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
            [sys.executable, "-m", "orchestrator", *args],
            capture_output=True,
            text=True,
            env=env_for(home, sim),
            cwd=ROOT,
            timeout=120,
            check=False,
        )

    return await anyio.to_thread.run_sync(call)


async def start(
    plan_text: str, home: Path, sim: RunningSimulator, *extra: str, codes: tuple[int, ...] = (1, 3)
) -> str:
    """Run the plan to its end against `sim`; its run id. It ends with one of `codes`
    (by default: some instances failed, or the run halted)."""
    plan = home / "plan.yaml"
    plan.write_text(plan_text)
    done = await cli("run", str(plan), "--endpoint", sim.url, *extra, home=home, sim=sim)
    assert done.returncode in codes, done
    return run_id_of(done.stdout)


def executions(sim: RunningSimulator) -> dict[str, int]:
    """Instance id → times the command started there, over every invocation."""
    counts = sim.simulation.execution_counts()
    return {instance: sum(counts.get(instance, {}).values()) for instance in (*BAD, *GOOD)}


def journal_of(home: Path, run_id: str) -> JournalRecord:
    return read_journal(journal_path(home / "state", run_id))


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator", *args]


async def kill_once_waiting(args: list[str], home: Path, sim: RunningSimulator) -> str:
    """Start the CLI with `args`, SIGKILL it once it waits for an approval (its first
    wave passed and is in the journal); the run id."""
    async with await anyio.open_process(args, env=env_for(home, sim), cwd=ROOT) as process:
        try:
            assert process.stdout is not None
            assert process.stderr is not None
            out, err = "", ""
            with anyio.fail_after(60):
                async for chunk in process.stdout:
                    out += chunk.decode()
                    if re.search(r"^run \S+: plan ", out, re.MULTILINE):
                        break
                async for chunk in process.stderr:
                    err += chunk.decode()
                    if "waiting for approval of wave" in err:
                        break
            process.send_signal(signal.SIGKILL)
            await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
    return run_id_of(out)
