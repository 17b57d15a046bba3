"""`orchestrator validate`, `plan` and `run` in a real subprocess, against a simulator the
test owns (so it can count the calls), or the embedded one: exit codes and output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from orchestrator.sim import FleetSpec, RunningSimulator, load_fleet

ROOT = Path(__file__).parents[2]
SMALL = ROOT / "plans" / "fleets" / "small.yaml"


def cli(
    *args: str, home: Path, sim: RunningSimulator | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m orchestrator ARGS`; with `sim`, credentials and endpoint point at it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env["HOME"] = str(home)
    env["ORCHESTRATOR_STATE_DIR"] = str(home / "state")  # journals stay in the test's dir
    extra: list[str] = []
    if sim is not None:
        env["ALIBABA_CLOUD_ACCESS_KEY_ID"] = sim.access_key_id
        env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = sim.access_key_secret
        extra = ["--endpoint", sim.url, "--region", sim.region]
    return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "orchestrator", *args, *extra],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


async def acli(*args: str, home: Path, sim: RunningSimulator) -> subprocess.CompletedProcess[str]:
    """`cli` in a worker thread, so the simulator keeps serving in the event loop."""
    return await anyio.to_thread.run_sync(lambda: cli(*args, home=home, sim=sim))


def write_plan(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(body)
    return path


PLAN = """\
name: e2e
targets: {{tags: {tags}}}
command:
  content: |
    nginx -v
  timeout: 30
limits:
  qps: {{RunCommand: 50, Describe: 100}}
  delivery_timeout: 30
"""


@pytest.fixture
def fleet() -> FleetSpec:
    """The small fleet on its own scaled clock: a whole run takes well under a second."""
    return load_fleet(SMALL.read_text().replace("time_scale: 0.01", "time_scale: 0.001"))


@pytest.fixture
async def sim(fleet: FleetSpec):
    from orchestrator.sim import serve  # noqa: PLC0415

    async with serve(fleet) as running:
        yield running


def test_validate_accepts_the_shipped_plans(tmp_path: Path):
    """Every example plan is valid, offline."""
    plans = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "plans").glob("*.yaml"))
    done = cli("validate", *plans, home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(": ok") == len(plans)


def test_validate_reports_every_problem_and_exits_2(tmp_path: Path):
    """A broken plan: exit 2, each problem as FILE:LINE: field: what (code)."""
    plan = write_plan(tmp_path, "name: x\ntargets: {}\ncommand:\n  content: hi\n  timeout: -1\n")
    done = cli("validate", str(plan), home=tmp_path)
    assert done.returncode == 2
    assert f"{plan}:" in done.stderr
    assert "command.timeout" in done.stderr
    assert "targets" in done.stderr


@pytest.mark.anyio
async def test_bad_plan_makes_no_call(tmp_path: Path, sim: RunningSimulator):
    """`run` with an invalid plan exits 2 before calling anything."""
    plan = write_plan(tmp_path, "name: x\ntargets: {tags: {app: web}}\ncommand: {}\n")
    done = await acli("run", str(plan), home=tmp_path, sim=sim)
    assert done.returncode == 2
    assert "content-or-script" in done.stderr
    assert sim.stats.snapshot() == {}


@pytest.mark.anyio
async def test_dry_run_sends_no_run_command(tmp_path: Path, sim: RunningSimulator):
    """`plan` resolves targets through real calls but never sends RunCommand."""
    plan = write_plan(tmp_path, PLAN.format(tags="{app: web}"))
    done = await acli("plan", str(plan), home=tmp_path, sim=sim)
    assert done.returncode == 0, done.stderr
    assert "5 selected, 3 will run, 2 skipped" in done.stdout
    assert "no RunCommand was sent" in done.stdout
    assert "quota: 3 invocations of" in done.stdout
    assert sim.stats.count("DescribeInstances") >= 1
    assert sim.stats.count("RunCommand") == 0


@pytest.mark.anyio
async def test_run_succeeds_and_exits_0(tmp_path: Path, sim: RunningSimulator):
    """All runnable instances succeed: exit 0, and each ran exactly once."""
    plan = write_plan(tmp_path, PLAN.format(tags="{app: web}"))
    done = await acli("run", str(plan), home=tmp_path, sim=sim)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "succeeded" in done.stdout
    counts = sim.simulation.execution_counts()
    assert {i: sum(c.values()) for i, c in counts.items()} == {
        "i-web1": 1,
        "i-web2": 1,
        "i-web3": 1,
    }


@pytest.mark.anyio
async def test_failures_exit_1_with_exit_code_and_output(tmp_path: Path, sim: RunningSimulator):
    """A failing instance: exit 1; the summary shows its exit code and last output line.
    (`max_errors: 100%`: no gate halts this run; a breach exits 3, see test_cli_gates.)"""
    body = PLAN.format(tags="{app: worker, env: prod}")
    plan = write_plan(tmp_path, body + "waves:\n  - {name: all, size: 100%, max_errors: 100%}\n")
    done = await acli("run", str(plan), home=tmp_path, sim=sim)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Failed" in done.stdout
    assert "i-legacy1  exit 127" in done.stdout
    assert "command not found" in done.stdout


@pytest.mark.anyio
async def test_quota_too_small_exits_6_before_any_run_command(tmp_path: Path):
    """A daily quota smaller than the run: exit 6, and no RunCommand was sent."""
    from orchestrator.sim import serve  # noqa: PLC0415

    text = SMALL.read_text().replace("invocations_daily: 1000", "invocations_daily: 2")
    async with serve(load_fleet(text)) as sim:
        plan = write_plan(tmp_path, PLAN.format(tags="{app: web}"))
        done = await acli("run", str(plan), home=tmp_path, sim=sim)
        assert done.returncode == 6, done.stdout + done.stderr
        assert "max-axt-invocation-daily" in done.stderr
        assert sim.stats.count("RunCommand") == 0


@pytest.mark.anyio
async def test_quota_refused_part_way_halts_with_exit_6(tmp_path: Path):
    """Told to ignore the quota check, the run meets Invocation.ExceedQuota: it halts,
    says why, and exits 6; the refused instances are not sent."""
    from orchestrator.sim import serve  # noqa: PLC0415

    text = SMALL.read_text().replace("invocations_daily: 1000", "invocations_daily: 2")
    async with serve(load_fleet(text)) as sim:
        plan = write_plan(tmp_path, PLAN.format(tags="{app: web}"))
        done = await acli("run", str(plan), "--ignore-quota", home=tmp_path, sim=sim)
        assert done.returncode == 6, done.stdout + done.stderr
        assert "Invocation.ExceedQuota" in done.stdout
        assert "not_sent" in done.stdout
        assert sim.simulation.execution_counts() == {}


def test_readme_rollout_runs_against_the_embedded_simulator(tmp_path: Path):
    """README's first command: the canary-then-full plan on the demo fleet, exit 0. Off a
    terminal the progress is JSON lines on stderr (never a bar), the summary on stdout."""
    done = cli("run", "plans/canary-then-full.yaml", "--sim", home=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines()]
    started = [e for e in events if e["event"] == "wave.started"]
    assert [e["wave"] for e in started] == ["canary", "early", "rest"]
    assert events[-1]["event"] == "run.finished"
    assert "Outcome by wave" in done.stdout


@pytest.mark.anyio
async def test_ctrl_c_twice_exits_at_once_with_a_summary(tmp_path: Path):
    """The first SIGINT stops dispatching and waits for what runs (10 minutes here); the
    second exits at once: what is known is summarised, the resume command shown, 130."""
    from orchestrator.sim import serve  # noqa: PLC0415

    # Real-time agents that take a while, so the run is surely still going.
    text = (
        SMALL.read_text()
        .replace("time_scale: 0.01", "time_scale: 1")
        .replace("duration: 2", "duration: 600")
    )
    async with serve(load_fleet(text)) as sim:
        plan = write_plan(
            tmp_path, PLAN.format(tags="{app: web}").replace("timeout: 30", "timeout: 900")
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
        env |= {
            "HOME": str(tmp_path),
            "ORCHESTRATOR_STATE_DIR": str(tmp_path / "state"),
            "ALIBABA_CLOUD_ACCESS_KEY_ID": sim.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": sim.access_key_secret,
        }
        command = [
            sys.executable,
            "-m",
            "orchestrator",
            "run",
            str(plan),
            "--log-format",
            "console",
            "--endpoint",
            sim.url,
            "--region",
            sim.region,
        ]
        # The plain log lines are on stderr.
        async with await anyio.open_process(
            command, env=env, cwd=ROOT, stderr=subprocess.STDOUT
        ) as process:
            assert process.stdout is not None
            seen = ""
            with anyio.fail_after(60):
                async for chunk in process.stdout:
                    seen += chunk.decode()
                    if "instances in" in seen:  # the wave has started dispatching
                        break
                # Interrupt once the batch is really out, so there is something in flight.
                while sim.stats.count("RunCommand") == 0:
                    await anyio.wait_all_tasks_blocked()
                process.send_signal(signal.SIGINT)
                async for chunk in process.stdout:
                    seen += chunk.decode()
                    if "nothing more is sent" in seen:
                        break
                process.send_signal(signal.SIGINT)
                rest = b"".join([chunk async for chunk in process.stdout]).decode()
                assert await process.wait() == 130
        assert "Outcome by wave" in seen + rest
        assert "3 instances were still running" in seen + rest
        assert "continue it with: orchestrator resume" in seen + rest
