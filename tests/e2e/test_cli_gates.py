"""Wave gates through the real CLI in a subprocess, against a simulator the test owns: a
breach exits 3 and says why with the numbers; `--approve-all` runs a gated plan
unattended; `orchestrator approve RUN WAVE` from another process lets a waiting run go
on (or, with --deny, halts it)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

from orchestrator.sim import FleetSpec, RunningSimulator, load_fleet, serve

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

ROOT = Path(__file__).parents[2]
SMALL = ROOT / "plans" / "fleets" / "small.yaml"

pytestmark = pytest.mark.anyio


def env_for(home: Path, sim: RunningSimulator | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env["HOME"] = str(home)
    env["ORCHESTRATOR_STATE_DIR"] = str(home / "state")  # journals stay in the test's dir
    if sim is not None:
        env["ALIBABA_CLOUD_ACCESS_KEY_ID"] = sim.access_key_id
        env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = sim.access_key_secret
    return env


def command(*args: str, sim: RunningSimulator | None = None) -> list[str]:
    extra = ["--endpoint", sim.url, "--region", sim.region] if sim is not None else []
    if args[0] == "run":  # these tests read the gate lines people read
        extra += ["--log-format", "console"]
    return [sys.executable, "-m", "orchestrator", *args, *extra]


async def acli(
    *args: str, home: Path, sim: RunningSimulator | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI in a worker thread, so the simulator keeps serving in the event loop."""

    def call() -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
            command(*args, sim=sim),
            capture_output=True,
            text=True,
            env=env_for(home, sim),
            cwd=ROOT,
            timeout=120,
            check=False,
        )

    return await anyio.to_thread.run_sync(call)


def write_plan(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(body)
    return path


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    """The small fleet on a fast scaled clock: a whole run takes well under a second."""
    fleet: FleetSpec = load_fleet(
        SMALL.read_text().replace("time_scale: 0.01", "time_scale: 0.001")
    )
    async with serve(fleet) as running:
        yield running


# app=worker: i-legacy1 (fails, exit 127, zone j), i-hang1 (hangs, zone h) and i-old1
# (fine, zone j) run; spread order puts them legacy1, hang1, old1.
BREACH = """\
name: e2e-breach
targets: {tags: {app: worker}}
command:
  content: nginx -v
  timeout: 86400                # the CLI polls on real time: the hang must outlive a poll
waves:
  - {name: first, size: 2}
  - {name: rest, size: 100%}
limits:
  qps: {RunCommand: 50, Describe: 100}
"""


async def test_a_breach_exits_3_and_the_summary_says_why(tmp_path: Path, sim: RunningSimulator):
    """The 1st error breaches max_errors 0: the hung instance is stopped, the last wave
    never starts, exit 3, and the summary line has every number."""
    plan = write_plan(tmp_path, BREACH)
    done = await acli("run", str(plan), "--state-dir", str(tmp_path), home=tmp_path, sim=sim)
    out = done.stdout + done.stderr  # the summary, and the gate's log lines
    assert done.returncode == 3, out
    assert (
        "halted (breach): wave first breached: 1 error > max_errors 0; 1 in-flight stopped; "
        "wave rest not started"
    ) in out
    assert "gate first: breach" in out
    assert "StopInvocation sent to 1 running instances" in out
    assert "i-legacy1  exit 127" in out
    assert sim.stats.count("RunCommand") == 1
    assert sim.stats.count("StopInvocation", "ok") == 1
    assert "i-old1" not in sim.simulation.execution_counts()


GATED = """\
name: e2e-gated
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


async def test_approve_all_runs_a_gated_plan_unattended(tmp_path: Path, sim: RunningSimulator):
    """--approve-all: the approval is asked and granted at once; exit 0."""
    plan = write_plan(tmp_path, GATED)
    done = await acli(
        "run", str(plan), "--approve-all", "--state-dir", str(tmp_path), home=tmp_path, sim=sim
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "waiting for approval of wave canary" in done.stderr  # a log line
    assert "wave canary approved" in done.stderr
    assert sim.stats.count("RunCommand") == 2


@pytest.mark.parametrize(("deny", "exit_code"), [(False, 0), (True, 3)])
async def test_the_approve_command_answers_a_waiting_run(
    tmp_path: Path, sim: RunningSimulator, deny: bool, exit_code: int
):
    """Off a terminal the run waits; `orchestrator approve RUN canary` from another
    process lets it go on (exit 0), `--deny` halts it (exit 3)."""
    plan = write_plan(tmp_path, GATED)
    state = tmp_path / "state"
    run = command("run", str(plan), "--state-dir", str(state), sim=sim)
    async with await anyio.open_process(
        run,
        env=env_for(tmp_path, sim),
        cwd=ROOT,
        stderr=subprocess.STDOUT,  # the gate's log lines are on stderr
    ) as process:
        assert process.stdout is not None
        seen = ""
        with anyio.fail_after(60):
            async for chunk in process.stdout:
                seen += chunk.decode()
                if "waiting for approval of wave canary" in seen:
                    break
            match = re.search(r"^run (\S+): plan e2e-gated", seen, re.MULTILINE)
            assert match is not None, seen
            run_id = match.group(1)
            assert f"orchestrator approve {run_id} canary --state-dir {state}" in seen
            assert sim.stats.count("RunCommand") == 1  # it waits before wave 2
            answer = ["--deny"] if deny else []
            approved = await acli(
                "approve", run_id, "canary", "--state-dir", str(state), *answer, home=tmp_path
            )
            assert approved.returncode == 0, approved.stderr
            assert ("refused" if deny else "approved") in approved.stdout
            rest = b"".join([chunk async for chunk in process.stdout]).decode()
            assert await process.wait() == exit_code, seen + rest
    if deny:
        assert "halted (denied): wave canary was not approved; wave rest not started" in rest
        assert sim.stats.count("RunCommand") == 1
    else:
        assert "wave canary approved" in rest
        assert sim.stats.count("RunCommand") == 2


async def test_approving_a_run_that_does_not_wait_exits_2(tmp_path: Path):
    """A mistyped run id (or another --state-dir) is an error, not a marker nobody reads."""
    done = await acli(
        "approve", "no-such-run", "canary", "--state-dir", str(tmp_path), home=tmp_path
    )
    assert done.returncode == 2
    assert "is not waiting for an approval" in done.stderr
    bad = await acli("approve", "../escape", "canary", "--state-dir", str(tmp_path), home=tmp_path)
    assert bad.returncode == 2
    assert "not a plain name" in bad.stderr


@pytest.mark.parametrize(("answer", "exit_code"), [(b"y\n", 0), (b"n\n", 3)])
async def test_on_a_terminal_the_run_asks_and_the_answer_decides(
    tmp_path: Path, sim: RunningSimulator, answer: bytes, exit_code: int
):
    """On a TTY: `Approve wave canary? [y/N]`; y goes on (exit 0), anything else halts."""
    import pty  # noqa: PLC0415 - POSIX only, like the terminal it stands for

    plan = write_plan(tmp_path, GATED)
    controller, terminal = pty.openpty()
    run = command("run", str(plan), "--state-dir", str(tmp_path / "state"), sim=sim)
    env = env_for(tmp_path, sim) | {"TERM": "xterm", "COLUMNS": "120"}
    seen = b""
    async with await anyio.open_process(
        run, stdin=terminal, stdout=terminal, stderr=terminal, env=env, cwd=ROOT
    ) as process:
        os.close(terminal)
        try:
            with anyio.fail_after(60):
                while b"Approve wave canary? [y/N]" not in seen:
                    await anyio.wait_readable(controller)
                    seen += os.read(controller, 65536)
                assert sim.stats.count("RunCommand") == 1
                os.write(controller, answer)
                while True:
                    await anyio.wait_readable(controller)
                    try:
                        chunk = os.read(controller, 65536)
                    except OSError:  # the terminal closed: the run is over
                        break
                    if not chunk:
                        break
                    seen += chunk
                assert await process.wait() == exit_code, seen.decode(errors="replace")
        finally:
            if process.returncode is None:  # a failed test must not leave the run waiting
                process.kill()
            os.close(controller)
    assert sim.stats.count("RunCommand") == (2 if exit_code == 0 else 1)
