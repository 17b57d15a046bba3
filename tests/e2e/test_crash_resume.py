"""The proof of the journal: `orchestrator run` killed with SIGKILL at seeded random
moments, then `orchestrator resume`, and every instance ran exactly once.

Each of 20 rounds starts a fresh simulator (so its execution counts belong to one run)
that drops, resets or fails some RunCommand answers after acting on them, runs the CLI in
a subprocess with `-v` (a line per batch sent and per instance finished), and kills it
with SIGKILL right after the k-th of those lines, k drawn from a seeded RNG: sometimes
during dispatch, sometimes while only tracking is left. Then `orchestrator resume RUN`
runs to its end, and the simulator's execution counts must show every instance run
exactly once, the journal must hold every instance's result, and the resume's summary
must account for every instance.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import pytest

from orchestrator.journal import journal_path, read_journal
from orchestrator.rollout import Outcome
from orchestrator.sim import FaultSpec, RunningSimulator, load_fleet, serve

if TYPE_CHECKING:
    from pathlib import Path

    from anyio.abc import Process

pytestmark = pytest.mark.anyio

ROUNDS = 20
ROUND_DEADLINE = 120.0  # real seconds; a round takes about 5
AT_ONCE = 4  # rounds side by side, each with its own simulator and state dir
INSTANCES = 40
BATCHES = 9  # waves of 4 and 36 instances, in batches of at most 5: 1 + 8

FLEET = f"""
region: cn-hangzhou
seed: 3
time_scale: 0.002
quotas: {{invocations_daily: 100000, commands: 500, max_instances_per_call: 50}}
generate:
  - count: {INSTANCES}
    zones: [cn-hangzhou-h, cn-hangzhou-i]
    tags: {{app: crash}}
behaviour:
  default: {{duration: {{min: 20, max: 200}}, delivery_delay: 1, output: "ok\\n"}}
"""

PLAN = """\
name: crash
targets: {tags: {app: crash}}
command:
  content: echo ok
  timeout: 600
waves:
  - {name: canary, size: 10%}
  - {name: rest, size: 100%}
limits:
  batch_size: 5
  qps: {RunCommand: 20, Describe: 50}
"""


@dataclass(frozen=True, slots=True)
class Kill:
    """Where a round's SIGKILL landed."""

    after_lines: int
    batches_seen: int
    finished_seen: int


def env_for(home: Path, sim: RunningSimulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env |= {
        "HOME": str(home),
        "PYTHONUNBUFFERED": "1",
        "ALIBABA_CLOUD_ACCESS_KEY_ID": sim.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": sim.access_key_secret,
    }
    return env


def cli(*args: str, state: Path) -> list[str]:
    return [sys.executable, "-m", "orchestrator", *args, "--state-dir", str(state)]


async def run_and_kill(process: Process, kill_after: int) -> tuple[str, Kill]:
    """Read the run's lines; SIGKILL it right after the `kill_after`-th progress line
    (a batch sent, or an instance finished). Returns the run id and where it died."""
    assert process.stdout is not None
    run_id, progress, batches, finished = "", 0, 0, 0
    buffered = ""
    async for chunk in process.stdout:
        buffered += chunk.decode()
        *lines, buffered = buffered.split("\n")
        for line in lines:
            if not run_id and (found := re.match(r"run (\S+): plan", line)):
                run_id = found.group(1)
            if line.startswith("batch "):
                batches += 1
            elif re.match(r"i-\S+: \w+", line):
                finished += 1
            else:
                continue
            progress += 1
            if progress == kill_after:
                process.send_signal(signal.SIGKILL)
                await process.wait()
                return run_id, Kill(kill_after, batches, finished)
    await process.wait()
    return run_id, Kill(kill_after, batches, finished)


async def one_round(seed: int, tmp_path: Path) -> Kill:
    rng = random.Random(seed)
    home = tmp_path / f"round-{seed}"
    state = home / "state"
    home.mkdir()
    plan = home / "plan.yaml"
    plan.write_text(PLAN)
    # Kill after one of the progress lines a whole run prints: 9 batches, 40 instances.
    kill_after = rng.randint(1, BATCHES + INSTANCES - 1)
    async with serve(load_fleet(FLEET)) as sim:
        sim.faults.set(
            FaultSpec(
                seed=seed,
                drop_rate=0.15,
                reset_rate=0.05,
                error_rate=0.05,
                actions=frozenset({"RunCommand", "DescribeInvocations"}),
            )
        )
        env = env_for(home, sim)
        async with await anyio.open_process(
            cli(
                "run",
                str(plan),
                "-v",
                "--log-format",
                "console",
                "--endpoint",
                sim.url,
                "--region",
                sim.region,
                state=state,
            ),
            env=env,
            stderr=subprocess.STDOUT,  # the plain log lines are on stderr
        ) as process:
            run_id, kill = await run_and_kill(process, kill_after)
        assert process.returncode == -signal.SIGKILL, f"round {seed}: the run ended on its own"
        assert run_id, f"round {seed}: the run printed no run id"

        resumed = await anyio.run_process(cli("resume", run_id, state=state), env=env, check=False)
        output = resumed.stdout.decode()
        assert resumed.returncode == 0, f"round {seed}:\n{output}\n{resumed.stderr.decode()}"
        # The killed process's lock was left behind, detected as stale and taken over.
        assert "took over the lock of pid" in output, output

        counts = sim.simulation.execution_counts()
        runs = {instance: sum(per.values()) for instance, per in counts.items()}
        assert len(runs) == INSTANCES, f"round {seed}: {INSTANCES - len(runs)} never ran"
        twice = {instance: n for instance, n in runs.items() if n != 1}
        assert not twice, f"round {seed}: ran more than once: {twice}"

        record = read_journal(journal_path(state, run_id))
        assert record.state == "finished"
        assert record.exit_code == 0
        assert len(record.results) == INSTANCES
        assert record.counts()[Outcome.SUCCEEDED] == INSTANCES
        assert set(record.results) == set(runs)
        # The resume's summary accounts for every instance.
        assert re.search(rf"all\s*│\s*{INSTANCES}\s*│", output), output
    return kill


@pytest.mark.timeout(600)
async def test_sigkill_at_random_moments_then_resume_runs_everything_exactly_once(
    tmp_path: Path,
):
    kills: dict[int, Kill] = {}
    limiter = anyio.CapacityLimiter(AT_ONCE)

    async def round_of(seed: int) -> None:
        async with limiter:
            with anyio.fail_after(ROUND_DEADLINE):  # a hang fails the round, never stalls CI
                kills[seed] = await one_round(seed, tmp_path)

    async with anyio.create_task_group() as group:
        for seed in range(ROUNDS):
            group.start_soon(round_of, seed)
    assert len(kills) == ROUNDS
    during_dispatch = [k for k in kills.values() if k.batches_seen < BATCHES]
    during_tracking = [k for k in kills.values() if k.batches_seen == BATCHES]
    # The seeded moments cover both phases (the seeds are fixed: this is not luck).
    assert len(during_dispatch) >= 3, kills
    assert len(during_tracking) >= 3, kills
