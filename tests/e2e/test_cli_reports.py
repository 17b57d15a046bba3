"""The reports of real CLI runs, read as a CI script reads them: report.json's plan path,
targets and clock; the `run.finished` log line against report.json; the summary of a
resumed run, its waves in plan order."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from junitparser import JUnitXml

from orchestrator.sim import load_fleet, serve

if TYPE_CHECKING:
    from orchestrator.sim import RunningSimulator

ROOT = Path(__file__).parents[2]
DEMO_PLAN = "plans/canary-then-full.yaml"  # relative, as an operator types it
DEMO_TIME_SCALE = 0.05  # plans/fleets/demo.yaml


def env_for(home: Path, sim: RunningSimulator | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env |= {"HOME": str(home), "ORCHESTRATOR_STATE_DIR": str(home / "state")}
    if sim is not None:
        env["ALIBABA_CLOUD_ACCESS_KEY_ID"] = sim.access_key_id
        env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = sim.access_key_secret
    return env


def cli(
    *args: str, home: Path, sim: RunningSimulator | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        env=env_for(home, sim),
        cwd=ROOT,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, str]:
    """The README's rollout on the demo fleet (`--sim`), JSON lines on stderr: its
    report.json, its report dir, and its stderr."""
    home = tmp_path_factory.mktemp("demo")
    reports = home / "reports"
    done = cli(
        "run", DEMO_PLAN, "--sim", "--log-format", "json", "--report-dir", str(reports),
        home=home,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((reports / "report.json").read_text()), reports, done.stderr


def run_finished(stderr: str) -> dict[str, Any]:
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    (line,) = [line for line in lines if line["event"] == "run.finished"]
    assert isinstance(line, dict)
    return line


def test_plan_path_is_the_absolute_path_of_the_file_given(demo_run):
    report, _, _ = demo_run
    assert report["plan"]["path"] == str(ROOT / DEMO_PLAN)


def test_selected_is_every_target_before_exclusions(demo_run):
    report, _, _ = demo_run
    targets = report["targets"]
    accounted = targets["runnable"] + len(targets["skipped"]) + len(targets["excluded"])
    assert targets["selected"] == accounted


def test_run_finished_agrees_with_report_json(demo_run):
    """The log line counts the instances skipped before dispatch (the demo fleet has
    offline and stopped ones) and says null, not "", for no halt code."""
    report, _, stderr = demo_run
    line = run_finished(stderr)
    before = len(report["targets"]["skipped"])
    assert before > 0
    assert line["skipped"] == report["counts"]["skipped"] + before
    assert line["skipped_before_dispatch"] == before
    assert line["instances"] == len(report["results"]) + before
    assert (line["halt_reason"], line["halt_code"], line["halt_wave"]) == (None, None, None)


def test_a_sim_run_names_its_scaled_clock_and_shows_real_durations(demo_run):
    """`--sim` runs on the demo fleet's scaled clock: report.json says so, with the
    fleet's time_scale, and every duration shown to people is the real one (derived
    from the run's own numbers: no wall-clock duration is asserted)."""
    report, reports, stderr = demo_run
    assert report["clock"] == {"kind": "scaled", "time_scale": DEMO_TIME_SCALE}
    assert report["real_duration_s"] == pytest.approx(report["duration_s"] * DEMO_TIME_SCALE)
    junit = JUnitXml.fromfile(str(reports / "junit.xml"))
    assert float(junit.time) == pytest.approx(report["real_duration_s"], abs=1e-3)
    summary = (reports / "summary.md").read_text()
    assert f"took {report['real_duration_s']:,.1f} s (" in summary
    assert f"time_scale {DEMO_TIME_SCALE:g})" in summary
    line = run_finished(stderr)
    assert (line["clock"], line["time_scale"]) == ("scaled", DEMO_TIME_SCALE)
    assert line["real_duration_s"] == pytest.approx(line["duration_s"] * DEMO_TIME_SCALE)


# Zone i is the smaller: `by_zone` sends it first, so the canary is in zone i while the
# targets (and the journal's results) are in zone order, h first.
BY_ZONE_FLEET = """
region: cn-hangzhou
seed: 4
time_scale: 0.001
quotas: {invocations_daily: 100000, commands: 500, max_instances_per_call: 50}
generate:
  - {count: 8, zones: [cn-hangzhou-h], tags: {app: web}}
  - {count: 4, zones: [cn-hangzhou-i], tags: {app: web}}
behaviour:
  default: {duration: 2, delivery_delay: 0.5, output: "ok\\n"}
"""

BY_ZONE_PLAN = """\
name: by-zone
targets: {tags: {app: web}}
command: {content: echo ok, timeout: 600}
order: by_zone
waves:
  - {name: canary, size: 2}
  - {name: rest, size: 100%}
"""


def wave_rows(summary: str) -> list[str]:
    """The wave column of the summary's `Outcome by wave` table."""
    names = re.findall(r"^│ (\S+)\s+│", summary, flags=re.MULTILINE)
    return [name for name in names if name != "wave"]


@pytest.mark.anyio
async def test_the_summary_of_a_finished_run_lists_its_waves_in_plan_order(tmp_path: Path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(BY_ZONE_PLAN)
    async with serve(load_fleet(BY_ZONE_FLEET)) as sim:
        where = ["--endpoint", sim.url, "--region", sim.region]

        def call(*args: str) -> subprocess.CompletedProcess[str]:
            return cli(*args, home=tmp_path, sim=sim)

        ran = await anyio.to_thread.run_sync(lambda: call("run", str(plan), *where))
        assert ran.returncode == 0, ran.stdout + ran.stderr
        run_id = ran.stdout.split()[1].rstrip(":")
        again = await anyio.to_thread.run_sync(lambda: call("resume", run_id))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "is finished" in again.stdout
    assert wave_rows(ran.stdout) == ["canary", "rest", "all"]
    assert wave_rows(again.stdout) == ["canary", "rest", "all"]


@pytest.mark.anyio
async def test_report_counts_every_call_the_run_made_by_action(tmp_path: Path):
    """report.json's `api.calls` are every request the simulator saw from the run: the
    targets step, the live-run guard and the quota check included (85 were reported of
    145 made, the targets step left out)."""
    plan = tmp_path / "plan.yaml"
    plan.write_text(BY_ZONE_PLAN)
    reports = tmp_path / "reports"
    async with serve(load_fleet(BY_ZONE_FLEET)) as sim:
        where = ["--endpoint", sim.url, "--region", sim.region, "--report-dir", str(reports)]
        ran = await anyio.to_thread.run_sync(
            lambda: cli("run", str(plan), *where, home=tmp_path, sim=sim)
        )
        seen = {action: sum(n.values()) for action, n in sim.stats.snapshot().items()}
    assert ran.returncode == 0, ran.stdout + ran.stderr
    calls = json.loads((reports / "report.json").read_text())["api"]["calls"]
    assert calls == seen
    assert {"DescribeInstances", "DescribeCloudAssistantStatus"} <= calls.keys()
