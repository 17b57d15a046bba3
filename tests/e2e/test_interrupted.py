"""Every early end of `orchestrator run` is an interrupted end, through the real CLI.

An API outage past the commands' deadline (exit 4), credentials revoked mid-run (exit 5),
SIGTERM (130: the first drains, the second exits at once): each time the journal's state
is `interrupted` (resumable), the summary and every report are written (report.json
status `interrupted`, with what is in flight), stderr says in one line why it ended, no
traceback, and the LAST line on stdout is the resume command. After an outage or a
revoked key, `orchestrator resume RUN` finishes the run and nothing ran twice.
`python -m orchestrator` runs in a subprocess against a simulator this test owns; the
CLI's own clock is real time, so the plans here have 1 s timeouts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import pytest

from orchestrator.journal import journal_path, read_journal
from orchestrator.sim import FaultKind, RunningSimulator, load_fleet, serve
from tests.e2e.cli_io import run_id_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from anyio.abc import ByteReceiveStream, Process

pytestmark = pytest.mark.anyio

IDS = ("i-web1", "i-web2", "i-web3")
FLEET = """
region: cn-hangzhou
seed: 4
time_scale: 0.01
instances:
  - {{id: i-web1, zone: cn-hangzhou-h, tags: {{app: web}}}}
  - {{id: i-web2, zone: cn-hangzhou-i, tags: {{app: web}}}}
  - {{id: i-web3, zone: cn-hangzhou-h, tags: {{app: web}}}}
behaviour:
  default: {{duration: {duration}, delivery_delay: 0.5, output: "ok\\n"}}
"""

# Real seconds on the CLI's side: an outage is given up on about 3 s after dispatch
# (delivery_timeout 1 + timeout 1 + a slack of delivery_timeout).
PLAN = """\
name: interrupted
targets: {{tags: {{app: web}}}}
command:
  content: echo ok
  timeout: {timeout}
waves:
  - {{name: all, size: 100%}}
limits:
  delivery_timeout: {delivery}
  qps: {{RunCommand: 50, Describe: 100}}
"""

DISPATCHED = '"batch.dispatched"'  # off a terminal, -v logs a JSON line per batch
DRAINING = "nothing more is sent"


def keys_of(sim: RunningSimulator) -> tuple[str, str]:
    return sim.access_key_id, sim.access_key_secret


def env_for(home: Path, keys: tuple[str, str] | None) -> dict[str, str]:
    """No credentials but `keys`; journals, locks and markers in the test's directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env |= {"HOME": str(home), "PYTHONUNBUFFERED": "1", "ORCHESTRATOR_STATE_DIR": str(home)}
    if keys is not None:
        env["ALIBABA_CLOUD_ACCESS_KEY_ID"], env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = keys
    return env


def command(*args: str, sim: RunningSimulator | None = None) -> list[str]:
    where = ["--endpoint", sim.url, "--region", sim.region] if sim is not None else []
    return [sys.executable, "-m", "orchestrator", *args, *where]


@dataclass(frozen=True, slots=True)
class Ended:
    code: int
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        return self.stdout.rstrip().splitlines()[-1]


def plan_file(home: Path, *, timeout: int = 1, delivery: float = 1) -> Path:
    path = home / "plan.yaml"
    path.write_text(PLAN.format(timeout=timeout, delivery=delivery))
    return path


@pytest.fixture
async def quick() -> AsyncIterator[RunningSimulator]:
    """Commands that end within 5 ms of real time."""
    async with serve(load_fleet(FLEET.format(duration=0.5))) as sim:
        yield sim


async def cli(*args: str, home: Path, sim: RunningSimulator) -> Ended:
    """The CLI in a worker thread (the simulator keeps serving), stdout and stderr apart."""

    def call() -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
            command(*args, sim=sim if args[0] == "run" else None),
            capture_output=True,
            text=True,
            env=env_for(home, keys_of(sim)),
            timeout=60,
            check=False,
        )

    done = await anyio.to_thread.run_sync(call)
    return Ended(done.returncode, done.stdout, done.stderr)


def assert_interrupted(ended: Ended, home: Path, *, code: int, in_flight: tuple[str, ...]):
    """The guarantees of an interrupted end; the run id."""
    assert ended.code == code, ended
    run_id = run_id_of(ended.stdout)
    assert ended.last_line == f"continue it with: orchestrator resume {run_id}", ended.stdout
    assert "Traceback" not in ended.stdout + ended.stderr
    assert read_journal(journal_path(home, run_id)).state == "interrupted"
    report = json.loads((home / "reports" / "report.json").read_text())
    assert report["status"] == "interrupted"
    assert report["exit_code"] == code
    assert sorted(report["in_flight"]) == list(in_flight)
    assert (home / "reports" / "junit.xml").is_file()
    assert (home / "reports" / "summary.md").is_file()
    assert "3 instances" in ended.stdout or in_flight, ended.stdout  # the summary
    return run_id


async def resume_finishes_it(run_id: str, home: Path, sim: RunningSimulator) -> None:
    sim.faults.clear()
    resumed = await cli("resume", run_id, home=home, sim=sim)
    assert resumed.code == 0, resumed
    assert read_journal(journal_path(home, run_id)).state == "finished"
    counts = sim.simulation.execution_counts()
    assert {i: list(runs.values()) for i, runs in counts.items()} == {i: [1] for i in IDS}


async def test_an_outage_past_the_deadline_ends_interrupted_and_resumes(
    tmp_path: Path, quick: RunningSimulator
):
    """Every DescribeInvocations fails (503): exit 4 once no command can still run."""
    quick.faults.fail_next(
        FaultKind.API_ERROR, 10_000, action="DescribeInvocations", code="ServiceUnavailable"
    )
    # The outage is for tracking: the guard's look for other live runs of the plan
    # (DescribeInvocations too, before the first send) is not what is tested here.
    reports = ["--report-dir", str(tmp_path / "reports"), "--allow-concurrent"]
    ended = await cli("run", str(plan_file(tmp_path)), *reports, home=tmp_path, sim=quick)
    run_id = assert_interrupted(ended, tmp_path, code=4, in_flight=IDS)
    error = next(line for line in ended.stderr.splitlines() if line.startswith("error:"))
    assert error.startswith("error: tracking gave up after "), ended.stderr
    assert "DescribeInvocations: ServiceUnavailable" in error
    # Several polls failed, and were logged at a bounded rate.
    assert quick.stats.count("DescribeInvocations") >= 10
    assert ended.stderr.count('"rollout.poll_failed"') <= 2, ended.stderr
    await resume_finishes_it(run_id, tmp_path, quick)


async def test_credentials_revoked_mid_run_end_interrupted_and_resume(
    tmp_path: Path, quick: RunningSimulator
):
    quick.faults.fail_next(
        FaultKind.API_ERROR, action="DescribeInvocations", code="InvalidAccessKeyId.NotFound"
    )
    # The outage is for tracking: the guard's look for other live runs of the plan
    # (DescribeInvocations too, before the first send) is not what is tested here.
    reports = ["--report-dir", str(tmp_path / "reports"), "--allow-concurrent"]
    ended = await cli("run", str(plan_file(tmp_path)), *reports, home=tmp_path, sim=quick)
    run_id = assert_interrupted(ended, tmp_path, code=5, in_flight=IDS)
    assert "error: tracking stopped: DescribeInvocations: InvalidAccessKeyId.NotFound" in (
        ended.stderr
    )
    await resume_finishes_it(run_id, tmp_path, quick)


async def test_an_outage_before_the_first_send_says_how_to_continue(
    tmp_path: Path, quick: RunningSimulator
):
    """The quota check never gets an answer (503 past its retries): nothing was sent,
    exit 4, and the last line says how to start the same run again."""
    quick.faults.fail_next(
        FaultKind.API_ERROR, 10_000, action="DescribeAccountAttributes", code="ServiceUnavailable"
    )
    ended = await cli("run", str(plan_file(tmp_path)), home=tmp_path, sim=quick)
    assert ended.code == 4, ended
    run_id = run_id_of(ended.stdout)
    assert ended.last_line == f"nothing was sent; continue it with: orchestrator resume {run_id}"
    assert "Traceback" not in ended.stdout + ended.stderr
    assert quick.stats.count("RunCommand") == 0
    await resume_finishes_it(run_id, tmp_path, quick)


async def test_an_outage_during_the_live_run_guard_refuses_the_run(
    tmp_path: Path, quick: RunningSimulator
):
    """The guard cannot ask the API whether the plan runs elsewhere: the run does not
    start (a guard that cannot look must not let it through), exit 4, nothing sent."""
    quick.faults.fail_next(
        FaultKind.API_ERROR, 10_000, action="DescribeInvocations", code="ServiceUnavailable"
    )
    ended = await cli("run", str(plan_file(tmp_path)), home=tmp_path, sim=quick)
    assert ended.code == 4, ended
    assert "could not look for another live run of plan interrupted" in ended.stderr
    assert "nothing was sent" in ended.stderr
    assert "Traceback" not in ended.stdout + ended.stderr
    assert quick.stats.count("RunCommand") == 0


# --- signals -------------------------------------------------------------------------


async def until_text(stream: ByteReceiveStream, text: str, seen: list[str]) -> None:
    """Read `stream` into `seen` until what was read holds `text`."""
    with anyio.fail_after(30):
        async for chunk in stream:
            seen.append(chunk.decode())
            if text in "".join(seen):
                return
    raise AssertionError(f"{text!r} never came:\n{''.join(seen)}")


async def to_end(process: Process, out: list[str], err: list[str]) -> Ended:
    """Both streams to their end (read together: neither pipe may fill), then the code."""
    assert process.stdout is not None
    assert process.stderr is not None

    async def drain(stream: ByteReceiveStream, into: list[str]) -> None:
        into.extend([chunk.decode() async for chunk in stream])

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            group.start_soon(drain, process.stdout, out)
            group.start_soon(drain, process.stderr, err)
        code = await process.wait()
    return Ended(code, "".join(out), "".join(err))


async def signalled(
    args: list[str], home: Path, sim: RunningSimulator | None, *, twice: bool
) -> Ended:
    """Run until a batch went out, then SIGTERM (and, once it drains, SIGTERM again)."""
    env = env_for(home, keys_of(sim) if sim is not None else None)
    async with await anyio.open_process(args, env=env) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        out: list[str] = []
        err: list[str] = []
        await until_text(process.stderr, DISPATCHED, err)
        process.send_signal(signal.SIGTERM)
        if twice:
            await until_text(process.stdout, DRAINING, out)
            process.send_signal(signal.SIGTERM)
        return await to_end(process, out, err)


async def test_sigterm_drains_then_ends_interrupted(tmp_path: Path):
    """The first SIGTERM: nothing more is sent, what runs (2 s) is followed to its end."""
    async with serve(load_fleet(FLEET.format(duration=200))) as sim:
        plan = plan_file(tmp_path, timeout=600, delivery=60)
        reports = ["--report-dir", str(tmp_path / "reports")]
        args = command("run", str(plan), "-v", *reports, sim=sim)
        ended = await signalled(args, tmp_path, sim, twice=False)
    assert_interrupted(ended, tmp_path, code=130, in_flight=())
    assert '3 instances: succeeded, exit 0, "ok"' in ended.stdout
    assert "interrupted" in ended.stderr.splitlines()[-1], ended.stderr


async def test_a_second_sigterm_exits_at_once_interrupted(tmp_path: Path):
    """Commands that run for days: the second SIGTERM leaves them running, listed."""
    async with serve(load_fleet(FLEET.format(duration=10**6))) as sim:
        plan = plan_file(tmp_path, timeout=86400, delivery=60)
        reports = ["--report-dir", str(tmp_path / "reports")]
        args = command("run", str(plan), "-v", *reports, sim=sim)
        ended = await signalled(args, tmp_path, sim, twice=True)
    assert_interrupted(ended, tmp_path, code=130, in_flight=IDS)
    assert "interrupted" in ended.stderr.splitlines()[-1], ended.stderr


async def test_an_interrupted_sim_run_says_it_cannot_be_resumed(tmp_path: Path):
    """`--sim`: the simulator's state ends with the process, so no resume is offered."""
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET.format(duration=10**6))
    plan = plan_file(tmp_path, timeout=86400, delivery=60)
    args = command("run", str(plan), "-v", "--sim", str(fleet))
    ended = await signalled(args, tmp_path, None, twice=True)
    assert ended.code == 130, ended
    run_id = run_id_of(ended.stdout)
    assert ended.last_line.startswith(
        f"run {run_id} ran against the embedded simulator: it cannot be resumed"
    ), ended.stdout
    assert "`orchestrator sim` in another shell" in ended.last_line
    assert "orchestrator resume" not in ended.stdout
