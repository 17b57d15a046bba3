"""`orchestrator retry RUN` through the real CLI, against a simulator the test owns.

A run whose instances partly fail, then `retry`: exactly the failed ones run again (the
simulator's execution counts prove the succeeded ones never did), the new run is linked
to its parent in its journal, and a retry of a retry works. `--only` chooses outcomes;
a parent that runs, is interrupted or ran against `--sim` is refused; nothing to retry
is exit 0 and no run. The CLI runs in subprocesses; the simulator serves in the test's
process, so it outlives every run and counts every execution.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from orchestrator.journal import (
    RunHeader,
    RunLock,
    WaveRow,
    create_journal,
    journal_path,
    list_runs,
)
from orchestrator.rollout import Outcome
from orchestrator.sim import RunningSimulator, load_fleet, serve
from tests.e2e.child_runs import (
    BAD,
    FLEET,
    GOOD,
    cli,
    command,
    executions,
    journal_of,
    kill_once_waiting,
    start,
)
from tests.e2e.cli_io import run_id_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.anyio

# Every wave tolerates every error: the run ends with some instances failed, exit 1.
TOLERANT = """\
name: retry-plan
region: cn-hangzhou
targets: {tags: {app: retry}}
command:
  content: echo ok
  timeout: 30
waves:
  - {name: all, size: 100%, max_errors: 100%}
limits:
  qps: {RunCommand: 50, Describe: 100}
"""

# One zone after the other, the smallest first: a canary of one (i-bad1, alone in its
# zone) that halts the run; the other four are never sent.
HALTING = """\
name: retry-halts
region: cn-hangzhou
targets: {tags: {app: retry}}
command:
  content: echo ok
  timeout: 30
order: by_zone
waves:
  - {name: canary, size: 1}
  - {name: rest, size: 100%, max_errors: 100%}
limits:
  qps: {RunCommand: 50, Describe: 100}
"""


# A canary that waits for a person, then the rest: a run can be killed while it waits.
GATED = TOLERANT.replace("name: retry-plan", "name: retry-gated").replace(
    "  - {name: all, size: 100%, max_errors: 100%}",
    "  - {name: canary, size: 1, max_errors: 100%, approval: true}\n"
    "  - {name: rest, size: 100%, max_errors: 100%}",
)


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with serve(load_fleet(FLEET)) as running:
        yield running


async def test_a_retry_runs_exactly_the_failed_instances_and_names_its_parent(
    tmp_path: Path, sim: RunningSimulator
):
    parent = await start(TOLERANT, tmp_path, sim)
    assert executions(sim) == dict.fromkeys((*BAD, *GOOD), 1)

    # No --endpoint: the calls go where the parent's went.
    reports = tmp_path / "reports"
    retried = await cli("retry", parent, "--report-dir", str(reports), home=tmp_path, sim=sim)
    assert retried.returncode == 1, retried  # they fail again: the fleet says so
    assert f"retry of {parent} (failed, undelivered, not_sent: 2 instances)" in retried.stdout
    child = run_id_of(retried.stdout)
    assert executions(sim) == {**dict.fromkeys(BAD, 2), **dict.fromkeys(GOOD, 1)}

    record = journal_of(tmp_path, child)
    assert [i.instance_id for i in record.header.instances] == list(BAD)
    assert record.header.origin.kind == "retry"
    assert record.header.origin.parent == parent
    assert record.header.origin.only == ("failed", "undelivered", "not_sent")
    assert record.header.plan_text == journal_of(tmp_path, parent).header.plan_text
    assert {r.outcome for r in record.results.values()} == {Outcome.FAILED}
    report = json.loads((reports / "report.json").read_text())
    assert report["origin"] == {
        "kind": "retry",
        "parent": parent,
        "only": ["failed", "undelivered", "not_sent"],
    }
    assert report["targets"]["selected"] == 2
    summary = (reports / "summary.md").read_text()
    assert f"retry of run {parent} (failed, undelivered, not\\_sent)" in summary, summary
    # And to scripts: status, show and runs say it too.
    for listing in ("status", "show"):
        shown = json.loads((await cli(listing, child, "--json", home=tmp_path, sim=sim)).stdout)
        assert shown["origin"]["kind"] == "retry", shown
        assert shown["origin"]["parent"] == parent
    listed = json.loads((await cli("runs", "--json", home=tmp_path, sim=sim)).stdout)["runs"]
    assert {(r["kind"], r["parent"]) for r in listed} == {("run", None), ("retry", parent)}

    # A retry of the retry: its parent is the retry, and the same two run once more.
    again = await cli("retry", child, home=tmp_path, sim=sim)
    assert again.returncode == 1, again
    grandchild = run_id_of(again.stdout)
    assert journal_of(tmp_path, grandchild).header.origin.parent == child
    assert executions(sim) == {**dict.fromkeys(BAD, 3), **dict.fromkeys(GOOD, 1)}


async def test_only_not_sent_retries_what_a_halt_left_unsent(tmp_path: Path, sim: RunningSimulator):
    parent = await start(HALTING, tmp_path, sim)
    record = journal_of(tmp_path, parent)
    assert record.halt is not None
    assert executions(sim)["i-bad1"] == 1
    never_sent = [i for i, n in executions(sim).items() if n == 0]
    assert len(never_sent) == 4

    retried = await cli("retry", parent, "--only", "not_sent", home=tmp_path, sim=sim)
    assert retried.returncode == 1, retried  # i-bad2 fails, the rest wave tolerates it
    child = journal_of(tmp_path, run_id_of(retried.stdout))
    assert sorted(i.instance_id for i in child.header.instances) == sorted(never_sent)
    assert executions(sim) == dict.fromkeys((*BAD, *GOOD), 1)  # i-bad1 not again

    # The child sent to every instance it had.
    only = ("--only", "not_sent")
    nothing = await cli("retry", child.header.run_id, *only, home=tmp_path, sim=sim)
    assert nothing.returncode == 0, nothing
    assert "nothing to retry" in nothing.stdout
    assert len(list_runs(tmp_path / "state")) == 2  # no journal for it


async def test_nothing_to_retry_and_bad_only_words(tmp_path: Path, sim: RunningSimulator):
    parent = await start(TOLERANT, tmp_path, sim)
    stopped = await cli("retry", parent, "--only", "stopped", home=tmp_path, sim=sim)
    assert stopped.returncode == 0, stopped
    assert f"run {parent} has no stopped instances: nothing to retry" in stopped.stdout
    bad = await cli("retry", parent, "--only", "failed,succeeded", home=tmp_path, sim=sim)
    assert bad.returncode == 2, bad
    assert "--only succeeded: give one or more of failed, undelivered, not_sent, stopped" in (
        bad.stderr
    )
    assert len(list_runs(tmp_path / "state")) == 1
    assert executions(sim) == dict.fromkeys((*BAD, *GOOD), 1)


async def test_a_running_an_interrupted_and_a_sim_parent_are_refused(
    tmp_path: Path, sim: RunningSimulator
):
    parent = await start(TOLERANT, tmp_path, sim)
    state = tmp_path / "state"
    with RunLock.acquire(state / "runs" / parent, parent):  # as its live process would
        running = await cli("retry", parent, home=tmp_path, sim=sim)
    assert running.returncode == 2, running
    assert "it is running" in running.stderr
    assert f"wait for it or stop it (orchestrator stop {parent})" in running.stderr

    record = journal_of(tmp_path, parent)
    interrupted = "retry-plan-interrupted"
    header = RunHeader(
        run_id=interrupted,
        plan_name=record.header.plan_name,
        plan_path=record.header.plan_path,
        plan_text=record.header.plan_text,
        plan_sha256=record.header.plan_sha256,
        target=record.header.target,
        created_at=datetime.now(UTC),
        instances=record.header.instances,
        skipped=(),
        waves=(WaveRow(0, "all", len(record.header.instances), 1),),
    )
    async with create_journal(journal_path(state, interrupted), header):
        pass  # its process "died" before anything was sent: never finished
    refused = await cli("retry", interrupted, home=tmp_path, sim=sim)
    assert refused.returncode == 2, refused
    assert f"it is interrupted; resume it (orchestrator resume {interrupted})" in refused.stderr

    demo = tmp_path / "fleet.yaml"
    demo.write_text(FLEET)
    plan = tmp_path / "plan.yaml"
    ran = await cli("run", str(plan), "--new", "--sim", str(demo), home=tmp_path, sim=sim)
    assert ran.returncode == 1, ran
    refused = await cli("retry", run_id_of(ran.stdout), home=tmp_path, sim=sim)
    assert refused.returncode == 2, refused
    assert "embedded simulator (--sim)" in refused.stderr
    assert executions(sim) == dict.fromkeys((*BAD, *GOOD), 1)


async def test_a_resumed_retry_runs_the_same_plan_on_the_same_instances(
    tmp_path: Path, sim: RunningSimulator
):
    parent = await start(GATED, tmp_path, sim, "--approve-all")
    assert executions(sim) == dict.fromkeys((*BAD, *GOOD), 1)

    # The retry's canary (one of the two) runs, then it waits for a person: killed there.
    child = await kill_once_waiting(
        command("retry", parent, "--log-format", "console"), tmp_path, sim
    )
    assert journal_of(tmp_path, child).state != "finished"
    status = await cli("status", child, home=tmp_path, sim=sim)
    assert f"retry of {parent} (failed, undelivered, not_sent: 2 instances)" in status.stdout
    listed = await cli("runs", home=tmp_path, sim=sim)
    assert f"retry of {parent}" in listed.stdout, listed.stdout

    # The resume derives the retry's plan (the parent's, on the two) and cuts the same
    # batches: it goes on, and neither instance runs twice in it.
    resumed = await cli("resume", child, "--approve-all", home=tmp_path, sim=sim)
    assert resumed.returncode == 1, resumed
    record = journal_of(tmp_path, child)
    assert record.state == "finished"
    assert sorted(record.results) == sorted(BAD)
    assert executions(sim) == {**dict.fromkeys(BAD, 2), **dict.fromkeys(GOOD, 1)}
