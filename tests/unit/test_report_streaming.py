"""The reports are written piece by piece (a result, a test case at a time) and their bytes
are those of the whole document serialised at once: report.json as `json.dumps` of the
whole dictionary lays it out, junit.xml as ElementTree lays out the whole tree."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

import pytest

from orchestrator.plan import Amount, Wave
from orchestrator.report import (
    ReportCollector,
    build_report,
    group_results,
    names_of,
    render_json,
    write_reports,
)
from orchestrator.rollout import InstanceResult, Outcome, RolloutResult, RunFinished, WaveSummary
from tests.unit.test_report import NASTY, at, facts_of, feed, full_run, plan_with_secrets

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrator.report import RunFacts


def whole_json(facts: RunFacts, collector: ReportCollector) -> bytes:
    """report.json as one `json.dumps` of the whole report dictionary."""
    results = collector.result.results if collector.result else ()
    report = build_report(facts, collector, group_results(results, names_of(facts)))
    return render_json(report).encode("utf-8", errors="replace")


def whole_junit(written: bytes) -> bytes:
    """`written` parsed into one tree and serialised at once, as ElementTree lays it out."""
    root = ET.fromstring(written)  # noqa: S314 - our own file
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def unusual_run() -> tuple[RunFacts, ReportCollector]:
    """A wave with no results (an empty suite and an empty list), results that are not
    ASCII, carry a lone surrogate, newlines and XML's forbidden characters, a verify."""
    verify = InstanceResult("i-b", Outcome.FAILED, wave="all", exit_code=3, output="v\n")
    results = (
        InstanceResult("i-a", Outcome.SUCCEEDED, wave="all", exit_code=0, output="héllo ✓\n"),
        InstanceResult(
            "i-b",
            Outcome.FAILED,
            wave="all",
            status="Failed",
            exit_code=1,
            error_code="ScriptFailed",
            error_info=NASTY,
            start_time=at(1),
            finish_time=at(2),
            output=f'line 1\n{NASTY}\n"quoted" \\ back\n',
            verify=verify,
        ),
        InstanceResult("i-c", Outcome.NOT_SENT, wave="all", error_info="halted"),
    )
    waves = (WaveSummary(0, "all", 3), WaveSummary(1, "never", 0))
    result = RolloutResult("r-unusual", results, waves, started_at=at(0), in_flight=("i-d",))
    collector = feed(ReportCollector(), [RunFinished(result)])
    plan = plan_with_secrets([Wave("all", Amount(3)), Wave("never", Amount(100, percent=True))])
    return facts_of(plan, None, 1, run_id="r-unusual"), collector


def never_started() -> tuple[RunFacts, ReportCollector]:
    plan = plan_with_secrets([Wave("all", Amount(100, percent=True))])
    return facts_of(plan, None, 2, run_id="r-none"), ReportCollector()


def halted() -> tuple[RunFacts, ReportCollector]:
    facts, collector, _ = full_run()
    return facts, collector


@pytest.mark.parametrize("run", [halted, unusual_run, never_started])
def test_report_json_is_byte_for_byte_the_whole_document(tmp_path: Path, run: object) -> None:
    assert callable(run)
    facts, collector = run()
    written = write_reports(tmp_path, facts, collector).json.read_bytes()
    assert written == whole_json(facts, collector)


@pytest.mark.parametrize("run", [halted, unusual_run, never_started])
def test_junit_is_byte_for_byte_the_whole_tree(tmp_path: Path, run: object) -> None:
    assert callable(run)
    facts, collector = run()
    written = write_reports(tmp_path, facts, collector).junit.read_bytes()
    assert written == whole_junit(written)
    assert written.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n<testsuites ")


def test_an_empty_suite_and_an_empty_run_close_themselves(tmp_path: Path) -> None:
    facts, collector = unusual_run()
    junit = write_reports(tmp_path / "unusual", facts, collector).junit.read_text()
    assert '<testsuite name="wave never" ' in junit
    assert next(line for line in junit.splitlines() if "wave never" in line).endswith(" />")
    facts, collector = never_started()
    junit = write_reports(tmp_path / "none", facts, collector).junit.read_text()
    assert junit.splitlines()[1].startswith("<testsuites ")
    assert junit.splitlines()[1].endswith(" />")
