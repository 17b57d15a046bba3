"""The operator's loop through the real CLI (issue 12): what a new user trips on.

`approve` refuses a wave that does not wait; `status` says a run waits for an approval,
and how to give it; `runs` says which runs halted, and never cuts a run id; an
interrupted `--sim` run says how to run a demo that can be resumed; `--sim` with
`--endpoint` is refused; `--log-format console` off a terminal keeps stdout for the
command's output. `python -m orchestrator` runs in subprocesses, against a simulator the
test owns or the embedded one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

from orchestrator.api import InstanceStatus
from orchestrator.ecs import Instance
from orchestrator.journal import RunHeader, WaveRow, create_journal, journal_path, read_journal
from orchestrator.rollout import InstanceFinished, InstanceResult, Outcome
from orchestrator.sim import RunningSimulator, load_fleet, serve
from tests.e2e.cli_io import run_id_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from anyio.abc import ByteReceiveStream, Process

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).parents[2]
SMALL = ROOT / "plans" / "fleets" / "small.yaml"

GATED = """\
name: loop-gated
targets: {tags: {app: web}}
command:
  content: nginx -v
  timeout: 30
waves:
  - {name: canary, size: 1, approval: true}
  - {name: rest, size: 100%}
limits:
  qps: {RunCommand: 50, Describe: 100}
"""

UNGATED = GATED.replace("name: loop-gated", "name: loop-plain").replace(", approval: true", "")

HANGS = """
region: cn-hangzhou
seed: 4
time_scale: 0.01
instances:
  - {id: i-web1, zone: cn-hangzhou-h, tags: {app: web}}
  - {id: i-web2, zone: cn-hangzhou-i, tags: {app: web}}
behaviour:
  default: {duration: 1000000, delivery_delay: 0.5, output: "ok\\n"}
"""

LONG_PLAN = """\
name: loop-hangs
targets: {tags: {app: web}}
command:
  content: echo ok
  timeout: 86400
waves:
  - {name: all, size: 100%}
limits:
  delivery_timeout: 60
  qps: {RunCommand: 50, Describe: 100}
"""


def env_for(home: Path, sim: RunningSimulator | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env |= {"HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env["ORCHESTRATOR_STATE_DIR"] = str(home / "state")  # journals stay in the test's dir
    if sim is not None:
        env["ALIBABA_CLOUD_ACCESS_KEY_ID"] = sim.access_key_id
        env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = sim.access_key_secret
    return env | extra


def command(*args: str, sim: RunningSimulator | None = None) -> list[str]:
    where = ["--endpoint", sim.url, "--region", sim.region] if sim is not None else []
    return [sys.executable, "-m", "orchestrator", *args, *where]


async def cli(
    *args: str, home: Path, sim: RunningSimulator | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """The CLI in a worker thread (the simulator keeps serving), stdout and stderr apart."""

    def call() -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
            command(*args, sim=sim),
            capture_output=True,
            text=True,
            env=env_for(home, sim, **env),
            cwd=ROOT,
            timeout=120,
            check=False,
        )

    return await anyio.to_thread.run_sync(call)


def write(home: Path, name: str, text: str) -> Path:
    path = home / name
    path.write_text(text)
    return path


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    """The small fleet on a fast scaled clock: a whole run takes well under a second."""
    fleet = load_fleet(SMALL.read_text().replace("time_scale: 0.01", "time_scale: 0.001"))
    async with serve(fleet) as running:
        yield running


async def until_text(stream: ByteReceiveStream, text: str, seen: list[str]) -> None:
    """Read `stream` into `seen` until what was read holds `text`."""
    with anyio.fail_after(60):
        async for chunk in stream:
            seen.append(chunk.decode())
            if text in "".join(seen):
                return
    raise AssertionError(f"{text!r} never came:\n{''.join(seen)}")


# --- 1 and 2: approve refuses a wave that does not wait; status says it waits ---------


async def test_a_waiting_run_status_says_how_to_approve_and_approve_refuses_other_waves(
    tmp_path: Path, sim: RunningSimulator
):
    plan = write(tmp_path, "plan.yaml", GATED)
    run = command("run", str(plan), "--log-format", "console", sim=sim)
    async with await anyio.open_process(run, env=env_for(tmp_path, sim), cwd=ROOT) as process:
        try:
            await approve_while_it_waits(process, tmp_path, sim)
        finally:
            if process.returncode is None:  # a failed test must not leave the run waiting
                process.kill()
    assert sim.stats.count("RunCommand") == 2


async def approve_while_it_waits(process: Process, tmp_path: Path, sim: RunningSimulator) -> None:
    """`status` and `runs` say the run waits at canary; `approve` refuses the other waves
    and lets canary go on."""
    state = tmp_path / "state"
    assert process.stdout is not None
    assert process.stderr is not None
    out: list[str] = []
    await until_text(process.stdout, "targets:", out)
    run_id = run_id_of("".join(out))
    await until_text(process.stderr, "waiting for approval of wave canary", [])
    # On disk before the line was printed (`before_approval`): nothing to wait for.
    assert read_journal(journal_path(state, run_id)).waiting_for == "canary"

    status = await cli("status", run_id, home=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "waiting for the approval of wave canary" in status.stdout, status.stdout
    assert f"`orchestrator approve {run_id} canary --state-dir {state}`" in status.stdout
    listed = await cli("runs", home=tmp_path)
    assert "waiting for approval of canary" in listed.stdout, listed.stdout

    # The last wave asks nothing (nothing follows it); a mistyped one does not exist.
    for wave, what in (("rest", "asks no approval"), ("cannary", "has no wave cannary")):
        refused = await cli("approve", run_id, wave, home=tmp_path)
        assert refused.returncode == 2, refused
        assert what in refused.stderr, refused.stderr
        assert "the waves that wait for one: canary" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    assert not (state / "runs" / run_id / "approvals" / "rest").exists()
    assert sim.stats.count("RunCommand") == 1  # still waiting

    approved = await cli("approve", run_id, "canary", home=tmp_path)
    assert approved.returncode == 0, approved.stderr
    async with anyio.create_task_group() as group:
        group.start_soon(until_text, process.stdout, "API calls", out)
        group.start_soon(until_text, process.stderr, "wave canary approved", [])
    assert await process.wait() == 0
    assert read_journal(journal_path(state, run_id)).waiting_for is None
    assert "waiting for the" not in (await cli("status", run_id, home=tmp_path)).stdout
    late = await cli("approve", run_id, "canary", home=tmp_path)
    assert late.returncode == 2, late
    assert "is finished: no wave of it waits any more" in late.stderr


async def test_approving_a_run_whose_plan_asks_no_approval_says_none_waits(
    tmp_path: Path, sim: RunningSimulator
):
    plan = write(tmp_path, "plan.yaml", UNGATED)
    done = await cli("run", str(plan), home=tmp_path, sim=sim)
    assert done.returncode == 0, done.stderr
    run_id = run_id_of(done.stdout)
    # The approvals directory is there as if the run had once waited: only the plan
    # can tell that no wave does.
    (tmp_path / "state" / "runs" / run_id / "approvals").mkdir()
    refused = await cli("approve", run_id, "canary", home=tmp_path)
    assert refused.returncode == 2, refused
    assert "asks no approval; none of its waves waits for an approval" in refused.stderr


# --- 2: runs and status say a run halted, and why -------------------------------------

BREACH = """\
name: loop-breach
targets: {tags: {app: worker}}
command:
  content: nginx -v
  timeout: 86400
waves:
  - {name: first, size: 2}
  - {name: rest, size: 100%}
limits:
  qps: {RunCommand: 50, Describe: 100}
"""


async def test_a_halted_run_is_listed_halted_with_its_reason(tmp_path: Path, sim: RunningSimulator):
    plan = write(tmp_path, "plan.yaml", BREACH)
    done = await cli("run", str(plan), home=tmp_path, sim=sim)
    assert done.returncode == 3, done.stdout + done.stderr
    run_id = run_id_of(done.stdout)
    listed = await cli("runs", home=tmp_path)
    row = next(line for line in listed.stdout.splitlines() if run_id in line)
    assert "halted (breach)" in row, listed.stdout
    assert "finished" not in row
    status = await cli("status", run_id, home=tmp_path)
    assert "state: halted (breach), exit 3" in status.stdout, status.stdout
    assert "halted (breach): wave first breached: 1 error > max_errors 0" in status.stdout


# --- 3: run ids are never cut --------------------------------------------------------


async def long_named_runs(state: Path, count: int) -> list[str]:
    """Journals of runs with the longest plan names, each with every outcome listed."""
    name = "a-plan-name-of-24-chars-"  # `new_run_id` keeps 24 characters of it
    ids = []
    for n in range(count):
        run_id = f"{name}-20260501T12000{n}Z-{n:04x}"
        outcomes = list(Outcome)
        instances = tuple(
            Instance(f"i-{k:05d}", "x", InstanceStatus.RUNNING, "z", "r", "linux")
            for k in range(len(outcomes))
        )
        header = RunHeader(
            run_id=run_id,
            plan_name=name,
            plan_path="plan.yaml",
            plan_text="name: x\n",
            plan_sha256="00" * 32,
            target={"region": "cn-hangzhou"},
            created_at=datetime(2026, 5, 1, 12, 0, n, tzinfo=UTC),
            instances=instances,
            skipped=(),
            waves=(WaveRow(0, "all", len(instances), 1),),
        )
        async with create_journal(journal_path(state, run_id), header) as writer:
            for instance, outcome in zip(instances, outcomes, strict=True):
                writer(InstanceFinished(InstanceResult(instance.instance_id, outcome, "all")))
        ids.append(run_id)
    return ids


@pytest.mark.parametrize("columns", ["100", "60"])
async def test_runs_never_cuts_a_run_id_in_a_pipe(tmp_path: Path, columns: str):
    ids = await long_named_runs(tmp_path / "state", 3)
    listed = await cli("runs", home=tmp_path, COLUMNS=columns)
    assert listed.returncode == 0, listed.stderr
    for run_id in ids:
        assert run_id in listed.stdout, listed.stdout


# --- 4: an interrupted --sim run says how to run a demo that can be resumed -----------


async def test_an_interrupted_sim_run_says_how_to_run_a_resumable_demo(tmp_path: Path):
    fleet = write(tmp_path, "fleet.yaml", HANGS)
    plan = write(tmp_path, "plan.yaml", LONG_PLAN)
    args = command("run", str(plan), "-v", "--sim", str(fleet))
    out: list[str] = []
    async with await anyio.open_process(args, env=env_for(tmp_path), cwd=ROOT) as process:
        try:
            await interrupt_twice(process, out)
        finally:
            if process.returncode is None:
                process.kill()
    stdout = "".join(out)
    run_id = run_id_of(stdout)
    drain = next(line for line in stdout.splitlines() if "nothing more is sent" in line)
    assert "cannot be resumed" in drain, drain
    last = stdout.rstrip().splitlines()[-1]
    assert f"run {run_id} ran against the embedded simulator: it cannot be resumed" in last
    assert "start `orchestrator sim` in another shell and run with `--endpoint URL`" in last
    assert "orchestrator resume" not in stdout

    # Neither `status` nor `resume` offers a resume that cannot work.
    status = await cli("status", run_id, home=tmp_path)
    assert "orchestrator resume" not in status.stdout, status.stdout
    assert "`orchestrator sim` in another shell" in status.stdout
    resumed = await cli("resume", run_id, home=tmp_path)
    assert resumed.returncode == 2
    assert "`orchestrator sim` in another shell" in resumed.stderr


async def interrupt_twice(process: Process, out: list[str]) -> None:
    """SIGTERM once a batch went out, again once it drains; stdout into `out`."""
    assert process.stdout is not None
    assert process.stderr is not None
    await until_text(process.stderr, '"batch.dispatched"', [])
    process.send_signal(signal.SIGTERM)
    await until_text(process.stdout, "nothing more is sent", out)
    process.send_signal(signal.SIGTERM)
    with anyio.fail_after(60):
        out += [chunk.decode() async for chunk in process.stdout]
        assert await process.wait() == 130


# --- 5: --sim with --endpoint is refused ----------------------------------------------


@pytest.mark.parametrize("sub", ["run", "plan", "instances"])
async def test_sim_and_endpoint_together_are_refused(tmp_path: Path, sub: str):
    plan = write(tmp_path, "plan.yaml", UNGATED)
    args = [] if sub == "instances" else [str(plan)]
    done = await cli(sub, *args, "--sim", "--endpoint", "http://127.0.0.1:9", home=tmp_path)
    assert done.returncode == 2, done
    assert "argument --endpoint: not allowed with argument --sim" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "state").exists()  # nothing ran


# --- 6: --log-format console off a terminal: stdout holds only the output -------------


async def test_console_log_lines_off_a_terminal_go_to_stderr(tmp_path: Path, sim: RunningSimulator):
    plan = write(tmp_path, "plan.yaml", GATED)
    done = await cli(
        "run", str(plan), "--log-format", "console", "-v", "--approve-all", home=tmp_path, sim=sim
    )
    assert done.returncode == 0, done.stderr
    for line in (
        "wave canary: 1 instances in 1 batches",
        "batch 0/0: 1 instances",
        "gate canary: pass",
        "waiting for approval of wave canary",
        "wave rest done: 2 ok",
    ):
        assert line in done.stderr, done.stderr
        assert line not in done.stdout, done.stdout
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"run {run_id_of(done.stdout)}: plan loop-gated")
    assert lines[1].startswith("targets: ")
    assert lines[2].startswith("Outcome by wave"), done.stdout
    assert lines[-1].startswith("API calls: ")
