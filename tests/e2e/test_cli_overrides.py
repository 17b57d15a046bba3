"""`run PLAN --param NAME=VALUE --limit SELECTOR` (and `plan`, the dry run) through the real CLI.

`--param` reaches every instance (the simulator keeps each invocation's Parameters), a
resume and a retry of the run send the same value, and the value is in no report, log
line or output (only the journal keeps it, as it keeps the plan's text); a bad one is
refused before anything is sent. `--limit` narrows the targets (the rest are excluded,
so `selected` still counts them), and refuses a limit that matches none of them or names
an instance the plan does not target.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from orchestrator.journal import list_runs
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

VALUE = "1.2.4-7c1e0d-never-reported"

PARAMS = """\
name: override-plan
region: cn-hangzhou
targets: {tags: {app: retry}}
command:
  content: "echo installing {{version}}"
  parameters: {version: 1.2.3}
  timeout: 30
waves:
  - {name: all, size: 100%, max_errors: 100%}
limits:
  qps: {RunCommand: 50, Describe: 100}
"""

GATED = PARAMS.replace(
    "  - {name: all, size: 100%, max_errors: 100%}",
    "  - {name: canary, size: 1, max_errors: 100%, approval: true}\n"
    "  - {name: rest, size: 100%, max_errors: 100%}",
)


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with serve(load_fleet(FLEET)) as running:
        yield running


def sent_parameters(sim: RunningSimulator) -> list[dict[str, str]]:
    """The Parameters of every RunCommand the simulator accepted, in order."""
    return [dict(i.spec.parameters) for i in sim.simulation.invocations.values()]


def every_text(*roots: Path) -> str:
    """Every file under `roots`, as text (what a reader of the reports could see)."""
    found = [p for root in roots for p in sorted(root.rglob("*")) if p.is_file()]
    assert found
    return "\n".join(p.read_text(errors="replace") for p in found)


async def test_a_param_reaches_every_instance_and_no_report_log_or_output(
    tmp_path: Path, sim: RunningSimulator
):
    reports, outputs = tmp_path / "reports", tmp_path / "outputs"
    flags = ("--param", f"version={VALUE}", "-v", "--log-format", "json")
    done_flags = (*flags, "--report-dir", str(reports), "--output-dir", str(outputs))
    plan = tmp_path / "plan.yaml"
    plan.write_text(PARAMS)
    done = await cli("run", str(plan), "--endpoint", sim.url, *done_flags, home=tmp_path, sim=sim)
    assert done.returncode == 1, done  # the two bad instances fail
    run_id = run_id_of(done.stdout)
    assert sent_parameters(sim) == [{"version": VALUE}]

    assert VALUE not in done.stdout + done.stderr
    assert VALUE not in every_text(reports, outputs)
    report = json.loads((reports / "report.json").read_text())
    assert report["plan"]["overrides"] == {"params": ["version"], "limit": []}
    assert report["origin"] == {"kind": "run", "parent": None, "only": []}
    assert "overrides: --param version" in (reports / "summary.md").read_text()
    for shown in ("status", run_id), ("runs",):
        seen = await cli(*shown, home=tmp_path, sim=sim)
        assert VALUE not in seen.stdout + seen.stderr
    status = await cli("status", run_id, home=tmp_path, sim=sim)
    assert "overrides: --param version" in status.stdout
    # The journal keeps it, as it keeps the plan's text: a resume sends what was sent.
    assert journal_of(tmp_path, run_id).header.origin.params == {"version": VALUE}


async def test_a_resume_and_a_retry_send_the_value_the_run_started_with(
    tmp_path: Path, sim: RunningSimulator
):
    plan = tmp_path / "plan.yaml"
    plan.write_text(GATED)
    run = command("run", str(plan), "--endpoint", sim.url, "--log-format", "console")
    run_id = await kill_once_waiting([*run, "--param", f"version={VALUE}"], tmp_path, sim)
    assert sent_parameters(sim) == [{"version": VALUE}]  # the canary

    resumed = await cli("resume", run_id, "--approve-all", home=tmp_path, sim=sim)
    assert resumed.returncode == 1, resumed
    assert sent_parameters(sim) == [{"version": VALUE}] * 2
    assert executions(sim) == dict.fromkeys((*BAD, *GOOD), 1)

    retried = await cli("retry", run_id, "--approve-all", home=tmp_path, sim=sim)
    assert retried.returncode == 1, retried
    assert sent_parameters(sim)[2:] == [{"version": VALUE}] * 2  # its canary, its rest
    assert executions(sim) == {**dict.fromkeys(BAD, 2), **dict.fromkeys(GOOD, 1)}
    assert VALUE not in retried.stdout + retried.stderr


@pytest.mark.parametrize(
    ("plan_text", "param", "said"),
    [
        (
            PARAMS,
            "nope=1",
            "--param nope: the plan declares no parameter nope (its parameters: version)",
        ),
        (
            PARAMS.replace("  parameters: {version: 1.2.3}\n", "").replace("{{version}}", "1"),
            "version=1",
            "--param version: the plan declares no parameters",
        ),
        (
            PARAMS,
            "version=LTAI5tAbCdEfGhIjKlMnOp",
            "--param version: holds what looks like an access key ID",
        ),
        (PARAMS, "version", "--param: give NAME=VALUE"),
        (PARAMS, "version=" + "x" * 30_000, "after Base64 (and parameters)"),
    ],
)
async def test_a_bad_param_is_refused_and_nothing_is_sent(
    tmp_path: Path, sim: RunningSimulator, plan_text: str, param: str, said: str
):
    plan = tmp_path / "plan.yaml"
    plan.write_text(plan_text)
    for verb in ("run", "plan"):
        done = await cli(
            verb, str(plan), "--endpoint", sim.url, "--param", param, home=tmp_path, sim=sim
        )
        assert done.returncode == 2, done
        assert said in done.stderr, done.stderr
        assert "LTAI5tAbCdEfGhIjKlMnOp" not in done.stdout + done.stderr
    assert sim.stats.count("RunCommand") == 0
    assert list_runs(tmp_path / "state") == []


async def test_a_limit_narrows_the_targets_and_the_rest_are_excluded(
    tmp_path: Path, sim: RunningSimulator
):
    reports = tmp_path / "reports"
    flags = ("--limit", "zone=cn-hangzhou-j", "--limit", "i-ok1", "--report-dir", str(reports))
    run_id = await start(PARAMS, tmp_path, sim, *flags)
    record = journal_of(tmp_path, run_id)
    assert sorted(i.instance_id for i in record.header.instances) == [
        "i-bad2",
        "i-ok1",
        "i-ok2",
        "i-ok3",
    ]
    assert record.header.origin.limit == ("zone=cn-hangzhou-j", "i-ok1")
    assert executions(sim) == {**dict.fromkeys(("i-bad2", *GOOD), 1), "i-bad1": 0}
    report = json.loads((reports / "report.json").read_text())
    assert report["targets"]["selected"] == 5
    assert report["targets"]["excluded"] == ["i-bad1"]
    assert report["plan"]["overrides"]["limit"] == ["zone=cn-hangzhou-j", "i-ok1"]

    # A tag selector: every instance of the fleet has app=retry.
    dry = await cli(
        "plan",
        str(tmp_path / "plan.yaml"),
        "--endpoint",
        sim.url,
        "--limit",
        "tag=app=retry",
        home=tmp_path,
        sim=sim,
    )
    assert dry.returncode == 0, dry
    assert "targets: 5 selected, 5 will run, 0 skipped, 0 excluded" in dry.stdout


@pytest.mark.parametrize(
    ("selector", "said"),
    [
        ("zone=cn-hangzhou-x", "--limit zone=cn-hangzhou-x matches none of the plan's 5 targets"),
        (
            "i-elsewhere",
            "--limit i-elsewhere: not one of the plan's 5 targets (a limit only narrows them)",
        ),
        ("web", "--limit web: give an instance id (i-…), zone=ZONE or tag=KEY=VALUE"),
        ("tag=app", "--limit tag=app: give an instance id"),
    ],
)
async def test_a_limit_that_does_not_narrow_is_refused(
    tmp_path: Path, sim: RunningSimulator, selector: str, said: str
):
    plan = tmp_path / "plan.yaml"
    plan.write_text(PARAMS)
    for verb in ("run", "plan"):
        done = await cli(
            verb, str(plan), "--endpoint", sim.url, "--limit", selector, home=tmp_path, sim=sim
        )
        assert done.returncode == 2, done
        assert said in done.stderr, done.stderr
    assert sim.stats.count("RunCommand") == 0
    assert list_runs(tmp_path / "state") == []


async def test_the_dry_run_shows_what_the_overrides_do(tmp_path: Path, sim: RunningSimulator):
    plan = tmp_path / "plan.yaml"
    plan.write_text(PARAMS)
    flags = ("--param", f"version={VALUE}", "--limit", "zone=cn-hangzhou-j")
    dry = await cli("plan", str(plan), "--endpoint", sim.url, *flags, home=tmp_path, sim=sim)
    assert dry.returncode == 0, dry
    assert "targets: 5 selected, 3 will run, 0 skipped, 2 excluded" in dry.stdout
    assert "overrides: --param version, --limit zone=cn-hangzhou-j" in dry.stdout
    assert VALUE not in dry.stdout + dry.stderr
    assert sim.stats.count("RunCommand") == 0
