"""Two runs of one plan, through the real CLI in subprocesses, against one simulator the
test owns: only one of them may run the script on an instance.

The simulator runs on a ManualClock, so the instances keep running until the test moves
its time: the first run is still live, whatever the machine's speed, when the second
one starts. Three guards are proved: the per-plan lock of a state dir (two runs started
together), the API guard (two state dirs: two CI jobs; also on a part of the
instances), and the refusal to start over a run of the plan left interrupted.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
import pytest

from orchestrator.sim import RunningSimulator, load_fleet, serve
from orchestrator.testing import ManualClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from anyio.abc import Process, TaskGroup

pytestmark = pytest.mark.anyio

# x: web only, y: web and grp b, z: grp b only. `app: web` is x + y, `grp: b` is y + z.
FLEET = """
region: cn-hangzhou
seed: 5
quotas: {invocations_daily: 100000, commands: 500, max_instances_per_call: 50}
generate:
  - {count: 4, zones: [cn-hangzhou-h], tags: {app: web, part: x}}
  - {count: 4, zones: [cn-hangzhou-h], tags: {app: web, grp: b, part: y}}
  - {count: 4, zones: [cn-hangzhou-i], tags: {grp: b, part: z}}
behaviour:
  default: {duration: 600, delivery_delay: 0, output: "ok\\n"}
"""

PLAN = """\
name: twice
targets: {{tags: {targets}}}
command:
  content: echo ok
  timeout: 86400
waves:
  - {{name: all, size: 100%}}
limits:
  batch_size: 4
  qps: {{RunCommand: 50, Describe: 100}}
"""
WEB = "{app: web}"  # 8 instances, 2 batches
GRP_B = "{grp: b}"  # 8 instances, 4 of them also in WEB
BATCHES = 2
FINISH = 10_000.0  # simulated seconds: every command has ended after this


@dataclass
class Cli:
    """A CLI process whose output is read as it comes."""

    process: Process
    out: str = ""
    err: str = ""
    batches: int = 0
    dispatched: anyio.Event = field(default_factory=anyio.Event)  # or it exited
    code: int | None = None

    @property
    def run_id(self) -> str:
        found = re.search(r"^run (\S+): ", self.out, re.MULTILINE)
        assert found, self.out + self.err
        return found.group(1)

    async def read(self) -> None:
        """Read until the process ends; killed if the test ends first (a failed test
        must not leave a run behind)."""
        assert self.process.stdout is not None
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._errors)
                buffered = ""
                async for chunk in self.process.stdout:
                    buffered += chunk.decode()
                    *lines, buffered = buffered.split("\n")
                    for line in lines:
                        self._line(line)
            self.out += buffered
            self.code = await self.process.wait()
        finally:
            if self.process.returncode is None:
                self.process.kill()
            with anyio.CancelScope(shield=True):
                await self.process.aclose()
            self.dispatched.set()

    def _line(self, line: str) -> None:
        self.out += line + "\n"

    def _logged(self, line: str) -> None:
        if line.startswith("batch "):
            self.batches += 1
            if self.batches == BATCHES:
                self.dispatched.set()

    async def _errors(self) -> None:
        """stderr: the plain log lines (a batch sent), and the errors."""
        assert self.process.stderr is not None
        buffered = ""
        async for chunk in self.process.stderr:
            text = chunk.decode()
            self.err += text
            buffered += text
            *lines, buffered = buffered.split("\n")
            for line in lines:
                self._logged(line)


def env_for(home: Path, sim: RunningSimulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    return env | {
        "HOME": str(home),
        "PYTHONUNBUFFERED": "1",
        "ALIBABA_CLOUD_ACCESS_KEY_ID": sim.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": sim.access_key_secret,
    }


def argv(*args: str, state: Path, sim: RunningSimulator | None) -> list[str]:
    where = ["--endpoint", sim.url, "--region", sim.region] if sim is not None else []
    return [sys.executable, "-m", "orchestrator", *args, *where, "--state-dir", str(state)]


def plan_file(home: Path, targets: str = WEB, name: str = "plan.yaml") -> Path:
    path = home / name
    path.write_text(PLAN.format(targets=targets))
    return path


async def start(group: TaskGroup, home: Path, sim: RunningSimulator, *args: str) -> Cli:
    """`orchestrator ARGS -v` (`run` against `sim`), read in the background."""
    shown = ("-v", "--log-format", "console")
    process = await anyio.open_process(
        argv(*args, *shown, state=home / "state", sim=sim if args[0] == "run" else None),
        env=env_for(home, sim),
        stdin=subprocess.DEVNULL,
    )
    cli = Cli(process)
    group.start_soon(cli.read)
    return cli


def executions(sim: RunningSimulator) -> dict[str, int]:
    return {i: sum(per.values()) for i, per in sim.simulation.execution_counts().items()}


def web_ids(sim: RunningSimulator) -> set[str]:
    instances = sim.simulation.instances.values()
    return {i.instance_id for i in instances if dict(i.tags).get("app") == "web"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def sim(clock: ManualClock) -> AsyncIterator[RunningSimulator]:
    async with serve(load_fleet(FLEET), clock=clock) as running:
        yield running


@pytest.mark.timeout(180)
async def test_two_runs_started_together_in_one_state_dir_run_each_instance_once(
    tmp_path: Path, sim: RunningSimulator, clock: ManualClock
):
    plan = plan_file(tmp_path)
    with anyio.fail_after(150):
        async with anyio.create_task_group() as group:
            both = [await start(group, tmp_path, sim, "run", str(plan)) for _ in range(2)]
            for cli in both:  # each has sent everything, or was refused
                await cli.dispatched.wait()
            clock.advance(FINISH)
    codes = sorted(cli.code for cli in both if cli.code is not None)
    assert codes == [0, 7], [cli.out + cli.err for cli in both]
    ran, refused = sorted(both, key=lambda cli: cli.code or 0)
    assert f"is in use by run {ran.run_id}" in refused.err, refused.err
    assert f"orchestrator status {ran.run_id}" in refused.err, refused.err
    assert "Traceback" not in refused.err
    assert executions(sim) == dict.fromkeys(web_ids(sim), 1)


@pytest.mark.timeout(180)
async def test_a_second_state_dir_sees_the_live_run_through_the_api(
    tmp_path: Path, sim: RunningSimulator, clock: ManualClock
):
    """Two CI jobs, each with a fresh state dir: the second is refused (nothing sent);
    with --allow-concurrent it runs, and every instance then runs twice."""
    first_home, second_home = tmp_path / "job-1", tmp_path / "job-2"
    first_home.mkdir()
    second_home.mkdir()
    plan = plan_file(second_home)
    with anyio.fail_after(150):
        async with anyio.create_task_group() as group:
            first = await start(group, first_home, sim, "run", str(plan_file(first_home)))
            await first.dispatched.wait()
            sent = sim.stats.count("RunCommand")
            refused = await start(group, second_home, sim, "run", str(plan))
            await refused.dispatched.wait()  # exited, or (wrongly) sent everything
            sent_by_refused = sim.stats.count("RunCommand") - sent
            forced = await start(group, second_home, sim, "run", str(plan), "--allow-concurrent")
            await forced.dispatched.wait()
            clock.advance(FINISH)
    assert refused.code == 7, refused.out + refused.err
    assert sent_by_refused == 0
    assert f"run {first.run_id}" in refused.err, refused.err
    assert "8 of this run's 8 instances" in refused.err, refused.err
    assert "nothing was sent" in refused.err, refused.err
    assert "--allow-concurrent" in refused.err
    assert "Traceback" not in refused.err
    assert (first.code, forced.code) == (0, 0), forced.out + forced.err
    assert executions(sim) == dict.fromkeys(web_ids(sim), 2)


@pytest.mark.timeout(180)
async def test_an_overlap_on_part_of_the_instances_is_refused_and_counted(
    tmp_path: Path, sim: RunningSimulator, clock: ManualClock
):
    """The plan edited between two jobs (other targets, same name): live on 4 of the 8
    instances the second targets, it is refused, and the message says it was edited."""
    first_home, second_home = tmp_path / "job-1", tmp_path / "job-2"
    first_home.mkdir()
    second_home.mkdir()
    edited = plan_file(second_home, targets=GRP_B)
    with anyio.fail_after(150):
        async with anyio.create_task_group() as group:
            first = await start(group, first_home, sim, "run", str(plan_file(first_home)))
            await first.dispatched.wait()
            refused = await start(group, second_home, sim, "run", str(edited))
            await refused.dispatched.wait()
            clock.advance(FINISH)
    assert refused.code == 7, refused.out + refused.err
    assert f"run {first.run_id}" in refused.err, refused.err
    assert "4 of this run's 8 instances" in refused.err, refused.err
    assert "edited" in refused.err, refused.err
    assert first.code == 0
    assert executions(sim) == dict.fromkeys(web_ids(sim), 1)


@pytest.mark.timeout(180)
async def test_a_run_over_an_interrupted_run_of_the_plan_is_refused(
    tmp_path: Path, sim: RunningSimulator, clock: ManualClock
):
    """kill -9 half-way; `run` again: exit 7 with the resume hint; `resume` finishes it,
    each instance once; over another killed run, `run --new` goes on."""
    plan = str(plan_file(tmp_path))
    with anyio.fail_after(150):
        async with anyio.create_task_group() as group:
            killed = await start(group, tmp_path, sim, "run", plan)
            await killed.dispatched.wait()
            killed.process.send_signal(signal.SIGKILL)
        async with anyio.create_task_group() as group:
            again = await start(group, tmp_path, sim, "run", plan)
            await again.dispatched.wait()
            clock.advance(FINISH)  # what the killed run sent ends (and `again`, if it ran)
    assert killed.code == -signal.SIGKILL
    run_id = killed.run_id
    assert again.code == 7, again.out + again.err
    assert (
        f"run {run_id} of this plan is interrupted: resume it (orchestrator resume {run_id}), "
        "or start a new run with --new"
    ) in again.err, again.err
    assert sim.stats.count("RunCommand") == BATCHES  # nothing was sent

    with anyio.fail_after(150):
        async with anyio.create_task_group() as group:
            resumed = await start(group, tmp_path, sim, "resume", run_id)
    assert resumed.code == 0, resumed.out + resumed.err
    assert executions(sim) == dict.fromkeys(web_ids(sim), 1)

    with anyio.fail_after(150):
        async with anyio.create_task_group() as group:
            killed = await start(group, tmp_path, sim, "run", plan)
            await killed.dispatched.wait()
            killed.process.send_signal(signal.SIGKILL)
        clock.advance(FINISH)
        async with anyio.create_task_group() as group:
            fresh = await start(group, tmp_path, sim, "run", plan, "--new")
            await fresh.dispatched.wait()
            clock.advance(FINISH)
    assert fresh.code == 0, fresh.out + fresh.err
    assert executions(sim) == dict.fromkeys(web_ids(sim), 3)


@pytest.mark.timeout(120)
async def test_an_interrupted_embedded_simulator_run_never_blocks(tmp_path: Path):
    """A --sim run cannot be resumed (its simulator ended with it): a new run goes on."""
    plan, fleet = plan_file(tmp_path), tmp_path / "fleet.yaml"
    fleet.write_text(FLEET.replace("seed: 5", "seed: 5\ntime_scale: 0.002"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env |= {"HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    state = tmp_path / "state"
    args = ("run", str(plan), "--sim", str(fleet), "-v", "--log-format", "console")
    with anyio.fail_after(100):
        async with await anyio.open_process(
            argv(*args, state=state, sim=None), env=env, stderr=subprocess.STDOUT
        ) as p:
            assert p.stdout is not None
            seen = ""
            async for chunk in p.stdout:
                seen += chunk.decode()
                if "batch " in seen:
                    break
            p.send_signal(signal.SIGKILL)
            await p.wait()
        again = await anyio.run_process(argv(*args, state=state, sim=None), env=env, check=False)
    assert again.returncode == 0, again.stdout.decode() + again.stderr.decode()
