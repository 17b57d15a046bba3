"""Rollback through the real CLI, against a simulator the test owns: `on_breach: rollback`
and `orchestrator rollback RUN`.

The fleet: three instances in the small zone, where the first wave goes (i-ok1 succeeds
at once, i-bad1 fails and breaches the wave, i-slow1 is still running and is stopped)
and three in the other zone, which the halt leaves never sent. The simulator's records
of what ran where prove that the rollback's content ran exactly once on each instance
the run touched (succeeded, failed, stopped) and never on one it did not reach. The
CLI runs in subprocesses; the simulator serves in the test's process, so it outlives
every run (a rollback killed half-way is resumed against the same simulator).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

from orchestrator.journal import RunLock, journal_path, list_runs, read_journal
from orchestrator.rollout import Outcome
from orchestrator.sim import RunningSimulator, load_fleet, serve

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from orchestrator.journal import JournalRecord

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).parents[2]

FLEET = """
region: cn-hangzhou
seed: 11
time_scale: 0.001
quotas: {invocations_daily: 1000, commands: 20, max_instances_per_call: 50}
instances:
  - {id: i-ok1, zone: cn-hangzhou-h, tags: {app: rb}}
  - {id: i-bad1, zone: cn-hangzhou-h, tags: {app: rb}}
  - {id: i-slow1, zone: cn-hangzhou-h, tags: {app: rb}}
  - {id: i-late1, zone: cn-hangzhou-i, tags: {app: rb}}
  - {id: i-late2, zone: cn-hangzhou-i, tags: {app: rb}}
  - {id: i-late3, zone: cn-hangzhou-i, tags: {app: rb}}
  - {id: i-off1, zone: cn-hangzhou-i, tags: {app: nothing}, agent: offline}
behaviour:
  default: {duration: 1, delivery_delay: 0.2, output: "ok\\n"}
  rules:
    - match: {instances: [i-bad1]}
      duration: 20
      fail_rate: 1
    - match: {instances: [i-slow1]}
      duration: 3000              # 3 s of real time: still running at the breach
"""
TOUCHED = ("i-ok1", "i-bad1", "i-slow1")
NEVER_SENT = ("i-late1", "i-late2", "i-late3")
UNDO = "echo undo {{version}}"
UNDONE = "echo undo 1.2.3"  # as sent: the command's parameters put in

# The small zone first (by_zone): a first wave of exactly its three instances.
PLAN = """\
name: rb-plan
region: cn-hangzhou
targets: {tags: {app: rb}}
command:
  parameters: {version: "1.2.3"}
  content: echo install {{version}}
  timeout: 86400
order: by_zone
waves:
  - {name: first, size: 3}
  - {name: rest, size: 100%}
rollback:
  content: echo undo {{version}}
  timeout: 86400
limits:
  batch_size: 1
  qps: {RunCommand: 50, Describe: 100}
on_breach: ON_BREACH
"""


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with serve(load_fleet(FLEET)) as running:
        yield running


def env_for(home: Path, sim: RunningSimulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env |= {"HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env["ORCHESTRATOR_STATE_DIR"] = str(home / "state")
    env["ALIBABA_CLOUD_ACCESS_KEY_ID"] = sim.access_key_id
    env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = sim.access_key_secret
    return env


def argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator", *args]


async def cli(*args: str, home: Path, sim: RunningSimulator) -> subprocess.CompletedProcess[str]:
    """The CLI in a worker thread (the simulator keeps serving), stdout and stderr apart."""

    def call() -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
            argv(*args),
            capture_output=True,
            text=True,
            env=env_for(home, sim),
            cwd=ROOT,
            timeout=120,
            check=False,
        )

    return await anyio.to_thread.run_sync(call)


def write_plan(home: Path, on_breach: str, text: str = PLAN) -> Path:
    plan = home / "plan.yaml"
    plan.write_text(text.replace("ON_BREACH", on_breach))
    return plan


def run_ids(output: str) -> list[str]:
    return re.findall(r"^run (\S+): plan ", output, re.MULTILINE)


def journal_of(home: Path, run_id: str) -> JournalRecord:
    return read_journal(journal_path(home / "state", run_id))


def ran(sim: RunningSimulator, content: str) -> Counter[str]:
    """Instance id → times a command with this content started there."""
    invocations = sim.simulation.invocations
    counts: Counter[str] = Counter()
    for instance, per in sim.simulation.execution_counts().items():
        for invoke_id, times in per.items():
            if invocations[invoke_id].spec.content == content:
                counts[instance] += times
    return counts


def anything_ran(sim: RunningSimulator) -> set[str]:
    return {i for i, per in sim.simulation.execution_counts().items() if sum(per.values())}


def assert_the_parent_touched_exactly(home: Path, parent: str) -> None:
    record = journal_of(home, parent)
    assert record.halt is not None
    assert record.halt.reason == "breach"
    outcomes = {i: r.outcome for i, r in record.results.items()}
    assert outcomes["i-ok1"] is Outcome.SUCCEEDED
    assert outcomes["i-bad1"] is Outcome.FAILED
    assert outcomes["i-slow1"] is Outcome.STOPPED
    assert {outcomes[i] for i in NEVER_SENT} == {Outcome.NOT_SENT}


def assert_rolled_back_once(sim: RunningSimulator) -> None:
    """The rollback ran once on each touched instance, never elsewhere; the never-sent
    ones ran nothing at all."""
    assert ran(sim, UNDONE) == Counter(dict.fromkeys(TOUCHED, 1))
    assert anything_ran(sim) == set(TOUCHED)


async def kill_after_first_batch(home: Path, sim: RunningSimulator, *args: str) -> str:
    """Start the CLI with `args` and SIGKILL it right after its first batch went out;
    the run id it printed."""
    run_id, buffered = "", ""
    async with await anyio.open_process(
        argv(*args, "-v", "--log-format", "console"),
        env=env_for(home, sim),
        stderr=subprocess.STDOUT,  # the per-batch lines are on stderr
    ) as process:
        assert process.stdout is not None
        async for chunk in process.stdout:
            buffered += chunk.decode()
            run_id = run_id or next(iter(run_ids(buffered)), "")
            if run_id and re.search(r"^batch ", buffered, re.MULTILINE):
                process.send_signal(signal.SIGKILL)
                break
        await process.wait()
    assert process.returncode == -signal.SIGKILL, buffered
    return run_id


def touched_by(home: Path, run_id: str) -> set[str]:
    record = journal_of(home, run_id)
    kinds = {Outcome.SUCCEEDED, Outcome.FAILED, Outcome.STOPPED}
    return {i for i, result in record.results.items() if result.outcome in kinds}


async def test_on_breach_rollback_rolls_back_exactly_the_touched_instances(
    tmp_path: Path, sim: RunningSimulator
):
    """Exit 3 (the rollout halted); the rollback run, a run of its own with its own
    journal and reports, ran on the succeeded, failed and stopped instances only."""
    plan = write_plan(tmp_path, "rollback")
    reports = tmp_path / "reports"
    done = await cli(
        "run", str(plan), "--endpoint", sim.url, "--report-dir", str(reports),
        home=tmp_path, sim=sim,
    )  # fmt: skip
    assert done.returncode == 3, done
    parent, child = run_ids(done.stdout)
    assert_the_parent_touched_exactly(tmp_path, parent)
    assert_rolled_back_once(sim)
    assert f"rolling back the 3 instances run {parent} touched, as run {child}" in done.stdout
    last = done.stdout.strip().splitlines()[-1]
    # i-bad1 fails its rollback too (the fleet says so); the others were rolled back.
    assert last == (
        f"run {parent} halted (exit 3); rollback run {child} rolled back 2 of 3 instances: "
        f"`orchestrator status {child}` shows the others"
    )

    record = journal_of(tmp_path, child)
    assert record.state == "finished"
    assert (record.header.origin.kind, record.header.origin.parent) == ("rollback", parent)
    # Resolved again and put in the plan's order, as any run's targets are.
    assert sorted(i.instance_id for i in record.header.instances) == sorted(TOUCHED)
    assert [w.name for w in record.header.waves] == ["rollback"]
    assert record.counts()[Outcome.SUCCEEDED] == 2
    assert (reports / "report.json").is_file()
    assert (reports / "rollback" / "report.json").is_file()
    assert child in (reports / "rollback" / "report.json").read_text()
    # Each report counts its own run's calls: together, every call the process made.
    calls = [
        json.loads((where / "report.json").read_text())["api"]["calls"]
        for where in (reports, reports / "rollback")
    ]
    seen = {action: sum(n.values()) for action, n in sim.stats.snapshot().items()}
    assert dict(Counter(calls[0]) + Counter(calls[1])) == seen
    # The rollback's own batches, not the run's too.
    assert calls[1]["RunCommand"] == sum(row.purpose == "run" for row in record.batches)

    # It is rolled back once: by hand again is refused, and nothing more runs.
    again = await cli("rollback", parent, home=tmp_path, sim=sim)
    assert again.returncode == 2, again
    assert f"run {child} rolled it back already" in again.stderr
    assert_rolled_back_once(sim)


async def test_rollback_by_hand_on_a_finished_run(tmp_path: Path, sim: RunningSimulator):
    """`orchestrator rollback RUN` after a run that breached with stop_in_flight: the calls
    go where the run's went (no --endpoint), on exactly the touched instances."""
    plan = write_plan(tmp_path, "stop_in_flight")
    done = await cli("run", str(plan), "--endpoint", sim.url, home=tmp_path, sim=sim)
    assert done.returncode == 3, done
    (parent,) = run_ids(done.stdout)
    assert ran(sim, UNDONE) == Counter()  # no rollback without on_breach: rollback

    rolled = await cli("rollback", parent, home=tmp_path, sim=sim)
    assert rolled.returncode == 1, rolled  # i-bad1's rollback fails: the fleet says so
    assert f"rollback of {parent}: the 3 instances it touched" in rolled.stdout
    (child,) = run_ids(rolled.stdout)
    assert_the_parent_touched_exactly(tmp_path, parent)
    assert_rolled_back_once(sim)
    record = journal_of(tmp_path, child)
    assert (record.header.origin.kind, record.header.origin.parent) == ("rollback", parent)

    status = await cli("status", child, home=tmp_path, sim=sim)
    assert status.returncode == 0, status
    assert f"rollback of {parent} (3 instances)" in status.stdout

    # Neither rolled back nor retried: the journal records the plan it rolled back.
    for command in ("rollback", "retry"):
        refused = await cli(command, child, home=tmp_path, sim=sim)
        assert refused.returncode == 2, refused
        assert f"it is itself the rollback of run {parent}" in refused.stderr
    assert_rolled_back_once(sim)


async def test_refusals_send_nothing(tmp_path: Path, sim: RunningSimulator):
    """No rollback: section, a running parent, a --sim parent: exit 2; a run that
    touched nothing: exit 0, no run."""
    section = "rollback:\n  content: echo undo {{version}}\n  timeout: 86400\n"
    assert section in PLAN
    no_rollback = PLAN.replace(section, "")
    plan = write_plan(tmp_path, "stop_in_flight", no_rollback)
    done = await cli("run", str(plan), "--endpoint", sim.url, home=tmp_path, sim=sim)
    assert done.returncode == 3, done
    (parent,) = run_ids(done.stdout)
    refused = await cli("rollback", parent, home=tmp_path, sim=sim)
    assert refused.returncode == 2, refused
    assert "its plan rb-plan has no rollback: section" in refused.stderr

    with RunLock.acquire(tmp_path / "state" / "runs" / parent, parent):  # as if it ran
        running = await cli("rollback", parent, home=tmp_path, sim=sim)
    assert running.returncode == 2, running
    assert "it is running" in running.stderr

    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    plan = write_plan(tmp_path, "stop_in_flight")
    embedded = await cli("run", str(plan), "--new", "--sim", str(fleet), home=tmp_path, sim=sim)
    assert embedded.returncode == 3, embedded
    refused = await cli("rollback", run_ids(embedded.stdout)[0], home=tmp_path, sim=sim)
    assert refused.returncode == 2, refused
    assert "embedded simulator (--sim)" in refused.stderr

    offline = PLAN.replace("{app: rb}", "{app: nothing}").replace("rb-plan", "rb-offline")
    plan = write_plan(tmp_path, "rollback", offline)
    nothing_ran = await cli("run", str(plan), "--endpoint", sim.url, home=tmp_path, sim=sim)
    assert nothing_ran.returncode == 1, nothing_ran  # skipped: agent offline
    (quiet,) = run_ids(nothing_ran.stdout)
    runs = len(list_runs(tmp_path / "state"))
    nothing = await cli("rollback", quiet, home=tmp_path, sim=sim)
    assert nothing.returncode == 0, nothing
    assert "touched no instance" in nothing.stdout
    assert len(list_runs(tmp_path / "state")) == runs  # no run for it
    assert ran(sim, UNDONE) == Counter()
    assert "i-off1" not in anything_ran(sim)


@pytest.mark.timeout(180)
async def test_a_rollback_killed_half_way_is_resumed_and_rolls_back_each_once(
    tmp_path: Path, sim: RunningSimulator
):
    """SIGKILL the rollback right after its first batch went out; `orchestrator resume`
    of the rollback run finishes it, and each touched instance rolled back once."""
    plan = write_plan(tmp_path, "stop_in_flight")
    done = await cli("run", str(plan), "--endpoint", sim.url, home=tmp_path, sim=sim)
    assert done.returncode == 3, done
    (parent,) = run_ids(done.stdout)

    child = await kill_after_first_batch(tmp_path, sim, "rollback", parent)
    assert journal_of(tmp_path, child).state != "finished"

    status = await cli("status", child, home=tmp_path, sim=sim)
    assert f"orchestrator resume {child}" in status.stdout, status
    resumed = await cli("resume", child, home=tmp_path, sim=sim)
    assert resumed.returncode == 1, resumed  # i-bad1's rollback fails
    record = journal_of(tmp_path, child)
    assert record.state == "finished"
    assert set(record.results) == set(TOUCHED)
    assert_rolled_back_once(sim)


async def test_the_demo_rolls_back_on_the_embedded_simulator(tmp_path: Path, sim: RunningSimulator):
    """`orchestrator run plans/rollback-demo.yaml --sim`: exit 3, then its rollback, on
    the same simulator, in the same process."""
    done = await cli(
        "run", "plans/rollback-demo.yaml", "--sim", "--log-format", "console", "-q",
        home=tmp_path, sim=sim,
    )  # fmt: skip
    assert done.returncode == 3, done
    parent, child = run_ids(done.stdout)
    parent_record, child_record = journal_of(tmp_path, parent), journal_of(tmp_path, child)
    touched = [
        i.instance_id
        for i in parent_record.header.instances
        if parent_record.results[i.instance_id].outcome
        in {Outcome.SUCCEEDED, Outcome.FAILED, Outcome.STOPPED}
    ]
    assert sorted(i.instance_id for i in child_record.header.instances) == sorted(touched)
    assert len(touched) < len(parent_record.header.instances)  # some were never sent
    assert set(child_record.results) == set(touched)
    assert f"run {parent} halted (exit 3)" in done.stdout.strip().splitlines()[-1]


@pytest.mark.timeout(180)
async def test_a_resumed_run_that_breaches_rolls_back_too(tmp_path: Path, sim: RunningSimulator):
    """A run of an on_breach: rollback plan killed after its first batch; its resume
    breaches, and its rollback follows there, on what the run touched, once each."""
    plan = write_plan(tmp_path, "rollback")
    parent = await kill_after_first_batch(tmp_path, sim, "run", str(plan), "--endpoint", sim.url)
    resumed = await cli("resume", parent, home=tmp_path, sim=sim)
    assert resumed.returncode == 3, resumed
    (child,) = run_ids(resumed.stdout)
    touched = touched_by(tmp_path, parent)
    assert "i-bad1" in touched
    assert not touched & set(NEVER_SENT)
    assert ran(sim, UNDONE) == Counter(dict.fromkeys(touched, 1))
    assert anything_ran(sim) == touched
    record = journal_of(tmp_path, child)
    assert (record.header.origin.kind, record.header.origin.parent) == ("rollback", parent)
    assert record.header.target["endpoint"] == sim.url  # where the run's calls went
    assert f"run {parent} halted (exit 3); rollback run {child}" in resumed.stdout


async def test_a_param_override_reaches_the_rollback(tmp_path: Path, sim: RunningSimulator):
    """`run --param version=2.0.0`: the rollback puts in the value the run had."""
    plan = write_plan(tmp_path, "rollback")
    done = await cli(
        "run", str(plan), "--endpoint", sim.url, "--param", "version=2.0.0",
        home=tmp_path, sim=sim,
    )  # fmt: skip
    assert done.returncode == 3, done
    _, child = run_ids(done.stdout)
    assert ran(sim, "echo undo 2.0.0") == Counter(dict.fromkeys(TOUCHED, 1))
    assert ran(sim, UNDONE) == Counter()
    assert dict(journal_of(tmp_path, child).header.origin.params) == {"version": "2.0.0"}
