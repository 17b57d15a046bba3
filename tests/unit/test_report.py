"""Reports for CI: report.json (checked against docs/report-format.md both ways),
junit.xml (read back with a real JUnit parser), summary.md (parsed as Markdown), the
step summary, atomic writes, the collector, and OutputFiles. Inputs are a hand-built run
fed to the collector in the order a run emits its events, and real rollouts against
the simulator (local agent mode: the scripts really run)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite
from markdown_it import MarkdownIt

from orchestrator.api import InstanceStatus
from orchestrator.cli._execute import exit_code
from orchestrator.clock import ClockInfo, ScaledClock, SystemClock, clock_info
from orchestrator.ecs import Instance
from orchestrator.plan import Amount, Command, Plan, Targets, Verify, Wave
from orchestrator.report import (
    REPORT_SCHEMA_VERSION,
    OutputFiles,
    ReportCollector,
    RunFacts,
    group_results,
    names_of,
    write_reports,
)
from orchestrator.report._json import public_endpoint
from orchestrator.report._write import safe_name
from orchestrator.rollout import (
    ApprovalGranted,
    ApprovalRequested,
    BatchDispatched,
    BatchRefused,
    BatchState,
    BreachStopSent,
    Event,
    FileApprover,
    GateDecided,
    GateDecision,
    GateEvaluated,
    Halt,
    InstanceFinished,
    InstanceOutput,
    InstanceRejected,
    InstanceResult,
    Outcome,
    PreApproved,
    RecordingSink,
    RolloutResult,
    RunFinished,
    RunStarted,
    Throttled,
    Verdict,
    VerifyFinished,
    VerifyStarted,
    WaveFinished,
    WaveStarted,
    WaveSummary,
    run_rollout,
)
from orchestrator.sim import load_fleet
from orchestrator.targets import Resolution, SkipReason, resolve
from orchestrator.targets import Skipped as SkippedTarget
from orchestrator.testing import ManualClock, simulated

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
FORMAT = ROOT / "docs" / "report-format.md"
T0 = datetime(2026, 11, 23, 13, 7, 33, tzinfo=UTC)
SECRET_PARAM = "s3cr3t-param-value-9f2"
SECRET_SCRIPT = "hunter2-inline-secret-77"
SECRET_KEY = "AKID-secret-key-4a1"
SECRET_TOKEN = "security-token-8c3"
NASTY = "ctl \x00\x01\x07\x1b[31m red ]]> and <tag> & `tick` | pipe \ufffe\ud800 end"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def instance(instance_id: str, hostname: str = "") -> Instance:
    return Instance(
        instance_id,
        f"name-{instance_id}",
        InstanceStatus.RUNNING,
        "cn-hangzhou-h",
        "cn-hangzhou",
        "linux",
        hostname=hostname,
    )


def plan_with_secrets(waves: Sequence[Wave]) -> Plan:
    return Plan(
        name="nginx-1.27",
        targets=Targets(),
        command=Command(
            content=f"export TOKEN={SECRET_SCRIPT}\necho {{{{password}}}}",
            parameters={"password": SECRET_PARAM},
            name="deploy",
            timeout=300,
        ),
        waves=tuple(waves),
    )


def facts_of(
    plan: Plan, resolution: Resolution | None, code: int, run_id: str = "r-full"
) -> RunFacts:
    return RunFacts(
        run_id=run_id,
        plan=plan,
        plan_path="plans/nginx.yaml",
        plan_sha256="ab" * 32,
        region="cn-hangzhou",
        endpoint=f"https://{SECRET_KEY}:{SECRET_KEY}@ecs.cn-hangzhou.aliyuncs.com/?SecurityToken={SECRET_TOKEN}",
        resolution=resolution,
        exit_code=code,
    )


def feed(collector: ReportCollector, events: Iterable[Event]) -> ReportCollector:
    for event in events:
        collector(event)
    return collector


# --- a hand-built run with every part a report can have -------------------------------------

CANARY = [f"i-canary{n:04d}" for n in range(150)]  # one big group: more than 100 ids
EARLY = ["i-fail00001", "i-stop00001", "i-undl00001", "i-rejt00001", "i-verf00001"]
REST = ["i-rest00001", "i-rest00002"]
WAVES = (
    Wave("canary", Amount(150), approval=True, verify=Verify(content="true")),
    Wave("early", Amount(5)),
    Wave("rest", Amount(100, percent=True)),
)


def gate(wave: int, name: str, size: int, verdict: Verdict, **counts: int) -> GateDecision:
    errors = counts.get("failed", 0) + counts.get("undelivered", 0) + counts.get("verify_failed", 0)
    return GateDecision(
        wave,
        name,
        size,
        Amount(0),
        0,
        errors,
        verdict,
        "within max_errors",
        failed=counts.get("failed", 0),
        undelivered=counts.get("undelivered", 0),
        verify_failed=counts.get("verify_failed", 0),
    )


def full_run() -> tuple[RunFacts, ReportCollector, list[Event]]:
    """Three waves: canary passes (150 alike, verify fails on none) and is approved;
    early breaches (a failure with a nasty output, a stopped, an undelivered, a
    rejected, a failed verify's kind of result), rest never starts."""
    ok = [
        InstanceResult(
            i,
            Outcome.SUCCEEDED,
            wave="canary",
            zone_id="cn-hangzhou-h",
            invoke_id="t-canary",
            status="Success",
            exit_code=0,
            start_time=at(1),
            finish_time=at(3),
            output=f"{at(2).isoformat()} deployed on host-{i} ({i})\n",
            verify=InstanceResult(i, Outcome.SUCCEEDED, wave="canary", exit_code=0, output="ok"),
        )
        for i in CANARY
    ]
    check = InstanceResult(
        "i-verf00001",
        Outcome.FAILED,
        wave="early",
        invoke_id="t-verify",
        status="Failed",
        exit_code=4,
        error_code="ExitCodeNonzero",
        output="nginx -t: config | broken `here`\n",
    )
    early = [
        InstanceResult(
            "i-fail00001",
            Outcome.FAILED,
            wave="early",
            zone_id="cn-hangzhou-h",
            invoke_id="t-early0",
            status="Failed",
            exit_code=2,
            error_code="ExitCodeNonzero",
            error_info="the command execution exit code is not zero.",
            start_time=at(10),
            finish_time=at(12.5),
            output=f"starting\n{NASTY}\n",
        ),
        InstanceResult(
            "i-stop00001",
            Outcome.STOPPED,
            wave="early",
            invoke_id="t-early0",
            status="Terminated",
            error_info="stopped: wave early breached",
        ),
        InstanceResult(
            "i-undl00001",
            Outcome.UNDELIVERED,
            wave="early",
            invoke_id="t-early0",
            status="Failed",
            error_code="ClientNotRunning",
            error_info="the agent is not running | offline",
        ),
        InstanceResult(
            "i-rejt00001",
            Outcome.SKIPPED,
            wave="early",
            error_code="InvalidInstance.NotMatch",
            error_info="The instance is not running.",
        ),
        InstanceResult(
            "i-verf00001",
            Outcome.FAILED,
            wave="early",
            invoke_id="t-early0",
            status="Success",
            exit_code=0,
            error_code="VerifyFailed",
            error_info="verify failed: exit 4 (ExitCodeNonzero)",
            output="deployed\n",
            verify=check,
        ),
    ]
    rest = [
        InstanceResult(i, Outcome.NOT_SENT, wave="rest", error_info="halted: wave early breached")
        for i in REST
    ]
    breach = gate(1, "early", 5, Verdict.BREACH, failed=2, undelivered=1)
    halt = Halt(
        "breach",
        message=breach.summary(),
        wave="early",
        decision=breach,
        in_flight=1,
        stop_requested=1,
        stopped=1,
        not_started=("rest",),
    )
    result = RolloutResult(
        run_id="r-full",
        results=(*ok, *early, *rest),
        waves=(
            WaveSummary(0, "canary", 150, {Outcome.SUCCEEDED: 150}, at(0), at(8)),
            WaveSummary(
                1,
                "early",
                5,
                {Outcome.FAILED: 2, Outcome.STOPPED: 1, Outcome.UNDELIVERED: 1, Outcome.SKIPPED: 1},
                at(9),
                at(20),
            ),
            WaveSummary(2, "rest", 2, {Outcome.NOT_SENT: 2}),
        ),
        api_calls={"RunCommand": 4, "DescribeInvocations": 9, "StopInvocation": 1},
        throttles=2,
        started_at=at(0),
        finished_at=at(21),
        halt=halt,
    )
    events: list[Event] = [
        RunStarted("r-full", "nginx-1.27", 157, (150, 5, 2), at(0)),
        WaveStarted(0, "canary", 150, 3, at(0)),
    ]
    for n in range(3):
        ids = tuple(CANARY[n * 50 : (n + 1) * 50])
        events.append(BatchDispatched(0, n, "", f"tok-0-{n}", "t-canary", ids, at(0.5)))
    for r in ok:
        events += [
            InstanceOutput(r.instance_id, "canary", r.output, 0),
            InstanceFinished(replace(r, verify=None)),
        ]
    events += [
        VerifyStarted(0, "canary", 150, at(4)),
        BatchDispatched(0, 0, "", "tok-v-0", "t-vcanary", tuple(CANARY[:50]), at(4.5)),
        VerifyFinished(0, "canary", 150, 0, 0, "", at(7)),
        GateDecided(gate(0, "canary", 150, Verdict.PASS)),
        WaveFinished(0, "canary", {Outcome.SUCCEEDED: 150}, at(8)),
        ApprovalRequested("r-full", 0, "canary", "the plan asks", "--approve canary", at(8)),
        ApprovalGranted(0, "canary", at(8.5)),
        WaveStarted(1, "early", 5, 1, at(9)),
        BatchRefused(1, 0, "", "tok-1-0", BatchState.SPLIT, "InvalidInstance.NotMatch", "no"),
        BatchDispatched(1, 0, "0", "tok-1-0-0", "t-early0", tuple(EARLY[:3]), at(9.5)),
        BatchRefused(1, 0, "1", "tok-1-0-1", BatchState.REJECTED, "InvalidInstance.NotMatch", "no"),
        InstanceRejected(1, "i-rejt00001", "InvalidInstance.NotMatch", "no"),
        Throttled("DescribeInvocations", 5.0),
        Throttled("DescribeInvocations", 2.5),
        InstanceOutput("i-fail00001", "early", early[0].output, 17),
        InstanceFinished(early[0]),
        GateEvaluated(breach),
        BreachStopSent(1, "early", 1, 1, at(13)),
        GateDecided(breach),
        WaveFinished(1, "early", result.waves[1].counts, at(20)),
        RunFinished(result),
    ]
    resolution = Resolution(
        runnable=tuple(instance(i, hostname=f"host-{i}") for i in [*CANARY, *EARLY, *REST]),
        skipped=(
            SkippedTarget("i-gone00001", SkipReason.NOT_FOUND, "unknown | gone", ""),
            SkippedTarget("i-off000001", SkipReason.AGENT_OFFLINE, "no heartbeat", "cn-hangzhou-i"),
        ),
        excluded=("i-excl00001",),
    )
    facts = facts_of(plan_with_secrets(WAVES), resolution, 3)
    return facts, feed(ReportCollector(), events), events


# --- the documented schema ------------------------------------------------------------------


def documented() -> dict[str, str]:
    """report.json's fields as docs/report-format.md's tables list them: path → type."""
    text = FORMAT.read_text(encoding="utf-8")
    section = text.split("\n## report.json\n", 1)[1].split("\n## junit.xml\n", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]+?) \|", section, flags=re.MULTILINE)
    return dict(rows)


def walk(value: dict[str, Any], maps: set[str], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(path, value) for every key in the report; maps are not walked into."""
    for key, item in value.items():
        path = prefix + key
        # A result's verify has a result's fields: documented once, under results[].
        yield path.replace("results[].verify.", "results[]."), item
        if path in maps:
            continue
        if isinstance(item, dict):
            yield from walk(item, maps, path + ".")
        elif isinstance(item, list):
            for element in item:
                if isinstance(element, dict):
                    yield from walk(element, maps, path + "[].")


def fits(value: object, kind: str) -> bool:
    """Whether `value` has the documented type (`string or null`, `map of ...`)."""
    if value is None:
        return kind.endswith(" or null")
    base = kind.removesuffix(" or null")
    if base.startswith(("map", "object")):
        return isinstance(value, dict)
    if base.startswith("array"):
        return isinstance(value, list)
    if base == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if base == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return base == "string" and isinstance(value, str)


def check_against_the_doc(reports: Sequence[dict[str, Any]]) -> None:
    fields = documented()
    maps = {path for path, kind in fields.items() if kind.startswith("map")}
    seen: set[str] = set()
    for report in reports:
        for path, value in walk(report, maps):
            assert path in fields, f"report.json emits `{path}`, docs/report-format.md lacks it"
            assert fits(value, fields[path]), f"`{path}` = {value!r} is not {fields[path]}"
            seen.add(path)
    assert set(fields) - seen == set(), "documented but never emitted"


async def test_every_emitted_field_is_documented_with_its_type_and_vice_versa(tmp_path: Path):
    """The doc's tables and the writer agree, both ways, with the documented types, and
    in order: the doc lists the fields in the order they are written."""
    facts, collector, _ = full_run()
    paths = write_reports(tmp_path / "full", facts, collector)
    full = json.loads(paths.json.read_text(encoding="utf-8"))
    real, _ = await real_run(tmp_path / "real")
    check_against_the_doc([full, real])
    fields = documented()
    maps = {path for path, kind in fields.items() if kind.startswith("map")}
    written = list(dict.fromkeys(path for path, _ in walk(full, maps)))
    assert written == list(fields)


# --- report.json ----------------------------------------------------------------------------


def test_report_json_of_a_halted_run_holds_every_part(tmp_path: Path):
    facts, collector, _ = full_run()
    report = json.loads(write_reports(tmp_path, facts, collector).json.read_text())
    assert report["schema"] == f"orchestrator.report/{REPORT_SCHEMA_VERSION}"
    assert (report["run_id"], report["exit_code"], report["status"]) == ("r-full", 3, "halted")
    assert report["tool_version"] == "0.1.0"
    assert report["target"] == {
        "region": "cn-hangzhou",
        "endpoint": "https://ecs.cn-hangzhou.aliyuncs.com/",
    }
    assert (report["started_at"], report["finished_at"]) == (
        "2026-11-23T13:07:33.000Z",
        "2026-11-23T13:07:54.000Z",
    )
    assert report["duration_s"] == 21.0
    command = report["plan"]["command"]
    assert command["type"] == "RunShellScript"
    assert command["content_bytes"] == len(facts.plan.command.content.encode())
    assert report["halt"]["text"] == (
        "wave early breached: 3 errors > max_errors 0; 1 in-flight stopped; wave rest not started"
    )
    assert report["halt"]["not_started"] == ["rest"]
    assert report["counts"] == {
        "succeeded": 150,
        "failed": 2,
        "undelivered": 1,
        "stopped": 1,
        "skipped": 1,
        "not_sent": 2,
    }
    targets = report["targets"]
    assert (targets["selected"], targets["runnable"], targets["excluded"]) == (
        160,  # before exclusions: 157 runnable + 2 skipped + 1 excluded
        157,
        ["i-excl00001"],
    )
    assert targets["skipped"][1] == {
        "instance_id": "i-off000001",
        "reason": "agent_offline",
        "detail": "no heartbeat",
        "zone_id": "cn-hangzhou-i",
    }
    canary, early, rest = report["waves"]
    assert canary["approval"]["decision"] == "granted"
    assert canary["approval"]["decided_at"] == "2026-11-23T13:07:41.500Z"
    assert canary["verify"] == {
        "instances": 150,
        "passed": 150,
        "failed": 0,
        "inconclusive": 0,
        "problem": "",
        "started_at": "2026-11-23T13:07:37.000Z",
        "finished_at": "2026-11-23T13:07:40.000Z",
    }
    assert early["gate"]["verdict"] == "breach"
    assert (early["gate"]["errors"], early["gate"]["limit"]) == (3, "0")
    assert early["breach_stop"] == {
        "invocations": 1,
        "instances": 1,
        "at": "2026-11-23T13:07:46.000Z",
    }
    assert rest["started_at"] is None
    assert rest["gate"] is None
    assert rest["counts"]["not_sent"] == 2
    purposes = [(b["wave"], b["purpose"], b["instances"]) for b in report["batches"]]
    assert purposes == [
        ("canary", "run", 50),
        ("canary", "run", 50),
        ("canary", "run", 50),
        ("canary", "verify", 50),
        ("early", "run", 3),
    ]
    assert [(r["state"], r["split_path"]) for r in report["refused_batches"]] == [
        ("split", ""),
        ("rejected", "1"),
    ]
    by_id = {r["instance_id"]: r for r in report["results"]}
    verified = by_id["i-verf00001"]
    assert verified["verify"]["exit_code"] == 4
    assert "verify" not in verified["verify"]
    # A lone surrogate cannot be UTF-8: it is replaced, the rest is kept as it was.
    assert by_id["i-fail00001"]["output_tail"] == f"starting\n{NASTY}\n".replace("\ud800", "?")
    assert report["api"] == {
        "calls": {"DescribeInvocations": 9, "RunCommand": 4, "StopInvocation": 1},
        "throttles": 2,
        "throttled": {"DescribeInvocations": 2},
    }


def test_groups_in_report_json_are_capped_at_100_ids(tmp_path: Path):
    facts, collector, _ = full_run()
    report = json.loads(write_reports(tmp_path, facts, collector).json.read_text())
    first = report["groups"][0]
    assert (first["outcome"], first["count"], first["more"]) == ("succeeded", 150, 50)
    assert first["instance_ids"] == CANARY[:100]
    assert first["sample"] == "<time> deployed on <host> (<instance>)"
    assert sum(g["count"] for g in report["groups"]) == len(report["results"])


def test_no_secret_reaches_any_report(tmp_path: Path):
    """Neither the script, nor a parameter value, nor a credential in the endpoint."""
    facts, collector, _ = full_run()
    summary = tmp_path / "step.md"
    write_reports(tmp_path / "out", facts, collector, step_summary=summary)
    for path in [*(tmp_path / "out").iterdir(), summary]:
        text = path.read_text(encoding="utf-8")
        for secret in (SECRET_PARAM, SECRET_SCRIPT, SECRET_KEY, SECRET_TOKEN, "export TOKEN"):
            assert secret not in text, f"{secret} in {path.name}"


def test_ten_thousand_results_serialise_fast(tmp_path: Path):
    """One json.dumps at the end: 10,000 results with 2 KB outputs, written in seconds."""
    results = tuple(
        InstanceResult(
            f"i-bulk{n:08d}",
            Outcome.SUCCEEDED if n % 10 else Outcome.FAILED,
            wave="all",
            status="Success",
            exit_code=0 if n % 10 else 1,
            start_time=at(1),
            finish_time=at(2),
            output=f"{at(n).isoformat()} line\n" * 64,
        )
        for n in range(10_000)
    )
    result = RolloutResult("r-bulk", results, (WaveSummary(0, "all", 10_000),), started_at=at(0))
    collector = feed(ReportCollector(), [RunFinished(result)])
    facts = facts_of(plan_with_secrets([Wave("all", Amount(100, percent=True))]), None, 1)
    paths = write_reports(tmp_path, facts, collector)
    report = json.loads(paths.json.read_text())
    assert len(report["results"]) == 10_000
    assert [g["count"] for g in report["groups"]] == [9000, 1000]


# --- junit.xml ------------------------------------------------------------------------------


def suites_of(path: Path) -> dict[str, TestSuite]:
    return {str(suite.name): suite for suite in JUnitXml.fromfile(str(path))}


def cases_of(suite: TestSuite) -> dict[str, TestCase]:
    return {str(case.name): case for case in suite}


def test_junit_of_a_halted_run_reads_back_with_a_junit_parser(tmp_path: Path):
    facts, collector, _ = full_run()
    path = write_reports(tmp_path, facts, collector).junit
    document = JUnitXml.fromfile(str(path))
    assert document.name == "orchestrator run r-full"
    assert (document.tests, document.failures, document.errors, document.skipped) == (
        159,
        2,
        2,
        5,
    )
    suites = suites_of(path)
    assert list(suites) == ["wave canary", "wave early", "wave rest", "before dispatch"]
    counts = {name: (s.tests, s.failures, s.errors, s.skipped) for name, s in suites.items()}
    assert counts == {
        "wave canary": (150, 0, 0, 0),
        "wave early": (5, 2, 2, 1),
        "wave rest": (2, 0, 0, 2),
        "before dispatch": (0 + 2, 0, 0, 2),
    }
    early = cases_of(suites["wave early"])
    failed = early["i-fail00001"]
    assert failed.classname == "orchestrator.early"
    assert failed.time == 2.5
    (failure,) = failed.result
    assert isinstance(failure, Failure)
    assert (failure.message, failure.type) == ("exit 2 (ExitCodeNonzero)", "ExitCodeNonzero")
    # Control characters, U+FFFE and the lone surrogate are gone; `]]>`, `<tag>` and `&`
    # are text again after parsing.
    clean = "ctl [31m red ]]> and <tag> & `tick` | pipe  end"
    assert clean in (failure.text or "")
    assert failure.text.startswith("the command execution exit code is not zero.")
    assert clean in (failed.system_out or "")
    (verify_failure,) = early["i-verf00001"].result
    assert (verify_failure.message, verify_failure.type) == (
        "exit 4 (VerifyFailed)",
        "VerifyFailed",
    )
    assert "--- verify ---\nnginx -t: config | broken `here`" in (
        early["i-verf00001"].system_out or ""
    )
    (error,) = early["i-undl00001"].result
    assert isinstance(error, Error)
    assert (error.type, error.message) == (
        "ClientNotRunning",
        "undelivered: the agent is not running | offline",
    )
    (stopped,) = early["i-stop00001"].result
    assert (stopped.type, stopped.message) == (
        "Terminated",
        "stopped: stopped: wave early breached",
    )
    (rejected,) = early["i-rejt00001"].result
    assert isinstance(rejected, Skipped)
    assert rejected.message == "InvalidInstance.NotMatch: The instance is not running."
    canary = cases_of(suites["wave canary"])
    assert canary["i-canary0000"].result == []
    assert canary["i-canary0000"].system_out is None  # only failures carry output
    (gone,) = cases_of(suites["before dispatch"])["i-gone00001"].result
    assert gone.message == "not_found: unknown | gone"


# --- summary.md -----------------------------------------------------------------------------


def tables(markdown: str) -> list[list[list[str]]]:
    """Every table of a GFM document: rows of cells as rendered (HTML), header first."""
    parser = MarkdownIt("commonmark").enable("table")
    found: list[list[list[str]]] = []
    row: list[str] | None = None
    for token in parser.parse(markdown):
        if token.type == "table_open":
            found.append([])
        elif token.type == "tr_open":
            row = []
        elif token.type == "inline" and row is not None:
            row.append(parser.renderer.render(token.children or [], parser.options, {}))
        elif token.type == "tr_close" and row is not None:
            found[-1].append(row)
            row = None
    return found


def test_summary_md_is_valid_gfm_with_every_section(tmp_path: Path):
    facts, collector, _ = full_run()
    text = write_reports(tmp_path, facts, collector).markdown.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "# orchestrator run r-full: halted"
    for heading in (
        "## Outcome by wave",
        "## Gates",
        "## Halt",
        "## Output groups",
        "## Failed instances (2)",
        "## Undelivered or stopped instances (2)",
        "## Skipped instances (3)",
        "## API",
    ):
        assert f"\n{heading}\n" in text
    found = tables(text)
    for table in found:
        assert len({len(row) for row in table}) == 1, table  # no cell broke the table
    counts = found[0]
    assert counts[0] == [
        "wave",
        "succeeded",
        "failed",
        "undelivered",
        "stopped",
        "skipped",
        "not_sent",
        "total",
    ]
    assert counts[-1] == ["<strong>all</strong>", "150", "2", "1", "1", "3", "2", "159"]
    gates = found[1]
    assert gates[2][:2] == ["early", "breach"]
    assert "stop sent to 1 in-flight instances" in gates[2][2]
    assert "approval: granted" in gates[1][2]
    assert "1. **150 instances**: succeeded, exit 0" in text
    assert "```text\n   <time> deployed on <host> (<instance>)\n   ```" in text
    assert "wave early breached: 3 errors &gt; max" not in text  # escaped, not entity-encoded
    assert (
        "API\n\ncalls: DescribeInvocations 9, RunCommand 4, StopInvocation 1; throttled: 2" in text
    )


def test_summary_md_escapes_pipes_backticks_and_html(tmp_path: Path):
    facts, collector, _ = full_run()
    text = write_reports(tmp_path, facts, collector).markdown.read_text(encoding="utf-8")
    html = MarkdownIt("commonmark").enable("table").render(text)
    assert "<tag>" not in html  # an output's markup never becomes HTML
    assert "&lt;tag&gt;" in html
    undelivered = next(t for t in tables(text) if t[0][2] == "outcome")
    # The cell shows the literal pipe: escaped, it did not split the row.
    assert undelivered[2][4] == "the agent is not running | offline"
    failed = next(t for t in tables(text) if t[0][-1] == "last output line")
    verify_row = next(r for r in failed if r[0] == "i-verf00001")
    assert verify_row[-1] == "nginx -t: config | broken `here`"
    # A sample holding a backtick run sits in a longer fence.
    assert "\n   ```text\n   nginx -t: config | broken `here`\n   ```" in text


def test_summary_md_caps_its_lists(tmp_path: Path):
    """25 failures with 12 distinct exit codes: 20 listed, 10 groups shown, the rest counted."""
    results = tuple(
        InstanceResult(
            f"i-many{n:06d}", Outcome.FAILED, wave="all", exit_code=n % 12 + 1, output="bad"
        )
        for n in range(25)
    )
    result = RolloutResult("r-many", results, (WaveSummary(0, "all", 25),))
    collector = feed(ReportCollector(), [RunFinished(result)])
    facts = facts_of(plan_with_secrets([Wave("all", Amount(100, percent=True))]), None, 1)
    text = write_reports(tmp_path, facts, collector).markdown.read_text(encoding="utf-8")
    assert "\nand 2 more groups\n" in text
    assert "\nand 5 more failed instances\n" in text
    failed = next(t for t in tables(text) if t[0][-1] == "last output line")
    assert len(failed) == 1 + 20


def list_items_and_their_code(markdown: str) -> tuple[list[list[str]], list[str]]:
    """The code blocks of each top-level list item of `markdown`, and those outside any."""
    items: list[list[str]] = []
    outside: list[str] = []
    depth = 0
    for token in MarkdownIt("commonmark").parse(markdown):
        if token.type == "list_item_open":
            depth += 1
            if depth == 1:
                items.append([])
        elif token.type == "list_item_close":
            depth -= 1
        elif token.type in {"fence", "code_block"}:
            (items[-1] if depth else outside).append(token.content)
    return items, outside


@pytest.mark.parametrize("count", range(1, 13))
def test_each_output_group_keeps_its_sample_inside_its_list_item(tmp_path: Path, count: int):
    """From `10.` on the item's text starts a column later: a sample indented for `1.`
    would fall out of the list and end it."""
    results = tuple(
        InstanceResult(
            f"i-grp{n:07d}", Outcome.FAILED, wave="all", exit_code=n + 1, output=f"bad {n}"
        )
        for n in range(count)
    )
    result = RolloutResult("r-groups", results, (WaveSummary(0, "all", count),))
    collector = feed(ReportCollector(), [RunFinished(result)])
    facts = facts_of(plan_with_secrets([Wave("all", Amount(100, percent=True))]), None, 1)
    text = write_reports(tmp_path, facts, collector).markdown.read_text(encoding="utf-8")
    items, outside = list_items_and_their_code(text)
    assert outside == []
    shown = min(count, 10)
    assert len(items) == shown
    assert sorted(code for item in items for code in item) == sorted(
        f"bad {n}\n" for n in range(shown)
    )
    assert all(len(item) == 1 for item in items)


# --- files: the step summary, atomic writes -------------------------------------------------


def test_the_step_summary_is_appended_not_overwritten(tmp_path: Path):
    facts, collector, _ = full_run()
    summary = tmp_path / "step_summary.md"
    summary.write_text("# an earlier step\n", encoding="utf-8")
    paths = write_reports(tmp_path / "reports", facts, collector, step_summary=summary)
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("# an earlier step\n")
    assert text.endswith(paths.markdown.read_text(encoding="utf-8"))


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path: Path):
    facts, collector, _ = full_run()
    directory = tmp_path / "deep" / "reports"
    write_reports(directory, facts, collector)
    (directory / "report.json").write_text("stale", encoding="utf-8")
    paths = write_reports(directory, facts, collector)  # over the old files
    assert sorted(p.name for p in directory.iterdir()) == ["junit.xml", "report.json", "summary.md"]
    assert json.loads(paths.json.read_text())["run_id"] == "r-full"


def test_reports_of_a_run_that_never_started(tmp_path: Path):
    """The quota refused the run before any event: the reports still say what is known."""
    facts = facts_of(plan_with_secrets(WAVES), None, 6, run_id="r-none")
    paths = write_reports(tmp_path, facts, ReportCollector())
    report = json.loads(paths.json.read_text())
    assert (report["status"], report["exit_code"], report["results"]) == ("failed", 6, [])
    assert report["counts"]["succeeded"] == 0
    assert report["started_at"] is None
    document = JUnitXml.fromfile(str(paths.junit))
    assert document.tests == 0
    assert paths.markdown.read_text().startswith("# orchestrator run r-none: failed\n")


# --- which clock the times are on ---------------------------------------------------------


def test_a_scaled_clock_is_named_and_people_see_real_seconds(tmp_path: Path):
    """On the simulator's clock (`--sim`) the run's 21 s are simulated: at time_scale 0.5
    a person waited 10.5 s. report.json keeps `duration_s` as it was (finished_at -
    started_at, on the run's clock) and says which clock that is, with the real
    duration beside it; junit.xml and summary.md, read by people, show real seconds."""
    facts, collector, _ = full_run()
    waited = [0.0]
    clock = ScaledClock(0.5, real_time=lambda: waited[0])
    waited[0] = 3.0
    assert (clock.real_elapsed(), clock.monotonic()) == (3.0, 6.0)  # they differ, by design
    facts = replace(facts, clock=clock_info(clock))
    paths = write_reports(tmp_path, facts, collector)
    report = json.loads(paths.json.read_text())
    assert report["duration_s"] == 21.0
    assert report["real_duration_s"] == 10.5
    assert report["clock"] == {"kind": "scaled", "time_scale": 0.5}
    suites = suites_of(paths.junit)
    assert float(JUnitXml.fromfile(str(paths.junit)).time) == 10.5
    assert float(suites["wave canary"].time) == 4.0  # 8 s simulated
    assert cases_of(suites["wave early"])["i-fail00001"].time == 1.25  # 2.5 s simulated
    heading = paths.markdown.read_text().split("\n")[2]
    assert "took 10.5 s (21.0 s on the simulator's scaled clock, time_scale 0.5)" in heading


def test_a_real_clock_is_named_too(tmp_path: Path):
    facts, collector, _ = full_run()
    paths = write_reports(tmp_path, facts, collector)
    report = json.loads(paths.json.read_text())
    assert report["clock"] == {"kind": "real", "time_scale": 1.0}
    assert report["real_duration_s"] == report["duration_s"] == 21.0
    heading = paths.markdown.read_text().split("\n")[2]
    assert heading.endswith("took 21.0 s")


def test_only_a_scaled_clock_is_scaled():
    assert clock_info(ScaledClock(0.05)) == ClockInfo("scaled", 0.05)
    assert clock_info(SystemClock()) == ClockInfo("real", 1.0)
    assert clock_info(ManualClock()) == ClockInfo("real", 1.0)
    assert ClockInfo("scaled", 0.05).real_seconds(36.0) == pytest.approx(1.8)


# --- the collector --------------------------------------------------------------------------


def test_the_collector_never_raises_on_events_out_of_order():
    _, _, events = full_run()
    collector = ReportCollector()
    for event in reversed(events):
        collector(event)
    collector(ApprovalGranted(7, "ghost", at(1)))
    collector(VerifyFinished(8, "ghost", 1, 2, 3, "", at(1)))
    approval, verify = collector.wave(7).approval, collector.wave(8).verify
    assert approval is not None
    assert approval.decision == "granted"
    assert verify is not None
    assert verify.instances == 6
    assert collector.result is not None


def test_the_collector_keeps_no_outputs():
    """InstanceOutput passes through: only the result's bounded output is kept."""
    collector = ReportCollector()
    collector(RunStarted("r", "p", 1, (1,), at(0)))
    collector(InstanceOutput("i-abcdefgh1", "all", "UNIQUE-OUTPUT " * 10_000, 0))
    assert "UNIQUE-OUTPUT" not in repr(vars(collector))
    assert collector.run_id == "r"


# --- OutputFiles ----------------------------------------------------------------------------


def test_output_files_are_whole_or_cut_with_a_last_line_saying_so(tmp_path: Path):
    files = OutputFiles(tmp_path, cap_bytes=10)
    files(InstanceOutput("i-small0001", "canary", "hello\n", 0))
    files(InstanceOutput("i-large0001", "canary", "é" * 8, 0))  # 16 bytes: cut mid-character
    files(InstanceOutput("i-dropd0001", "rest", "head", 2048))
    files(RunStarted("r", "p", 1, (1,), at(0)))  # other events are ignored
    assert files.files == 3
    assert (tmp_path / "canary" / "i-small0001.log").read_bytes() == b"hello\n"
    large = (tmp_path / "canary" / "i-large0001.log").read_text(encoding="utf-8")
    assert large == "é" * 5 + "\n[... 6 bytes cut (cap 10) ...]\n"
    dropped = (tmp_path / "rest" / "i-dropd0001.log").read_text(encoding="utf-8")
    assert dropped == "head\n[... 2048 bytes dropped by the API ...]\n"


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "/abs", "a/b", ".hidden", "", "x" * 300, "i-ok\x00nul", "-dash", "é"],
)
def test_unsafe_names_never_become_paths(tmp_path: Path, name: str):
    files = OutputFiles(tmp_path / "out")
    files(InstanceOutput(name, name, "text", 0))
    (written,) = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert written.parent.parent == tmp_path / "out"
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", written.parent.name)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*\.log", written.name)
    assert written.read_text() == "text"


def test_safe_names_stay_and_unsafe_ones_do_not_collide():
    assert safe_name("i-bp1abc.x_y-1") == "i-bp1abc.x_y-1"
    assert safe_name("a/b") != safe_name("a_b")
    assert safe_name("a/b") != safe_name("a:b")


def test_an_output_that_cannot_be_written_is_counted_not_raised(tmp_path: Path):
    blocker = tmp_path / "out"
    blocker.write_text("a file where the directory should be", encoding="utf-8")
    files = OutputFiles(blocker)
    files(InstanceOutput("i-abcdefgh1", "all", "text", 0))
    assert (files.files, files.failed) == (0, 1)
    assert str(blocker) in files.problem


# --- real rollouts against the simulator ----------------------------------------------------

LOCAL = """
region: cn-hangzhou
seed: 4
time_scale: 0.01
agent_mode: local
instances:
  - {id: i-v1, zone: cn-hangzhou-h}
  - {id: i-v2, zone: cn-hangzhou-h}
  - {id: i-v3, zone: cn-hangzhou-h}
  - {id: i-v4, zone: cn-hangzhou-h}
  - {id: i-v5, zone: cn-hangzhou-h}
  - {id: i-v6, zone: cn-hangzhou-h}
  - {id: i-v7, zone: cn-hangzhou-h, status: Stopped}
"""
# Really run on the host: the date differs per instance, i-v3 fails with control
# characters in its output, the verify fails on i-v2.
SCRIPT = (
    'echo "deployed on {{ACS::InstanceId}} at $(date -u +%Y-%m-%dT%H:%M:%S.%NZ)"; '
    'echo "local time $(date)"; '
    'if [ "{{ACS::InstanceId}}" = i-v3 ]; then printf "bad \\001\\002 ]]> done\\n"; exit 7; fi'
)
CHECK = Verify(content='test "{{ACS::InstanceId}}" != "i-v2" || { echo "v2 is off"; exit 4; }')
LOCAL_WAVES = (
    Wave("first", Amount(3), max_errors=Amount(2), verify=CHECK, approval=True),
    Wave("rest", Amount(100, percent=True)),
)


async def real_run(directory: Path) -> tuple[dict[str, Any], Path]:
    """A resolved, really executed, verified and approved run; its reports in
    `directory` and the outputs in `directory/outputs`."""
    async with simulated(LOCAL) as env:
        targets = Targets(
            instances=("i-v1", "i-v2", "i-v3", "i-v4", "i-v5", "i-v6", "i-v7", "i-ghost0001"),
            exclude=("i-v6",),
        )
        plan = Plan(
            name="local",
            targets=targets,
            command=Command(content=SCRIPT, timeout=30),
            waves=LOCAL_WAVES,
        )
        resolution = await resolve(plan.targets, plan.command.type, env.client)
        collector = ReportCollector()
        outputs = OutputFiles(directory / "outputs")
        recorded = RecordingSink()

        def sink(event: Event) -> None:
            recorded(event)
            collector(event)
            outputs(event)

        result = await run_rollout(
            plan,
            env.client,
            resolution.runnable,
            run_id="r-real",
            clock=env.clock,
            sink=sink,
            approver=PreApproved(["first"]),
        )
        facts = RunFacts(
            "r-real", plan, "plans/local.yaml", "cd" * 32, "cn-hangzhou", env.sim.url,
            resolution, exit_code(result),
        )  # fmt: skip
        paths = write_reports(directory, facts, collector)
        assert outputs.files == 5
        assert len(recorded.of(BatchDispatched)) == 3  # first, its verify, rest
    return json.loads(paths.json.read_text(encoding="utf-8")), directory


async def test_a_real_run_makes_reports_that_match_what_happened(tmp_path: Path):
    report, directory = await real_run(tmp_path)
    assert (report["status"], report["exit_code"]) == ("failed", 1)
    by_id = {r["instance_id"]: r for r in report["results"]}
    assert (by_id["i-v3"]["outcome"], by_id["i-v3"]["exit_code"]) == ("failed", 7)
    assert (by_id["i-v2"]["error_code"], by_id["i-v2"]["verify"]["exit_code"]) == (
        "VerifyFailed",
        4,
    )
    assert report["targets"]["excluded"] == ["i-v6"]
    assert {s["instance_id"]: s["reason"] for s in report["targets"]["skipped"]} == {
        "i-ghost0001": "not_found",
        "i-v7": "not_running",
    }
    first = report["waves"][0]
    assert first["gate"]["errors"] == 2
    assert first["gate"]["verify_failed"] == 1
    assert (first["verify"]["passed"], first["verify"]["failed"]) == (1, 1)
    assert first["approval"]["decision"] == "granted"
    # Each result's InvokeId is one of the run's batches; verify batches are told apart.
    runs = {b["invoke_id"] for b in report["batches"] if b["purpose"] == "run"}
    verifies = {b["invoke_id"] for b in report["batches"] if b["purpose"] == "verify"}
    assert {r["invoke_id"] for r in report["results"]} == runs
    assert {r["verify"]["invoke_id"] for r in report["results"] if r["verify"]} == verifies
    # Four instances printed different dates and ids, and still make one group.
    groups = {(g["outcome"], g["exit_code"], g["error_code"]): g for g in report["groups"]}
    ok = groups["succeeded", 0, ""]
    assert ok["instance_ids"] == ["i-v1", "i-v4", "i-v5"]
    assert ok["sample"] == "deployed on <instance> at <time>\nlocal time <time>"
    assert groups["failed", 4, "VerifyFailed"]["sample"] == "v2 is off"
    # Every instance that ran has its whole output on disk.
    log = (directory / "outputs" / "first" / "i-v3.log").read_bytes()
    assert log.endswith(b"bad \x01\x02 ]]> done\n")
    suites = suites_of(directory / "junit.xml")
    assert list(suites) == ["wave first", "wave rest", "before dispatch"]
    (failure,) = cases_of(suites["wave first"])["i-v3"].result
    assert isinstance(failure, Failure)
    assert failure.message == "exit 7 (ExitCodeNonzero)"
    assert "bad  ]]> done" in (failure.text or "")
    assert suites["before dispatch"].skipped == 2


FLEET = """
region: cn-hangzhou
seed: 3
time_scale: 0.01
instances:
  - {id: i-canary1, zone: cn-hangzhou-h}
  - {id: i-rest1, zone: cn-hangzhou-i}
  - {id: i-rest2, zone: cn-hangzhou-j}
behaviour:
  default: {duration: 2, delivery_delay: 0.5, output: "ok\\n"}
"""


async def test_the_demo_fleets_outputs_group_by_what_they_said_not_by_instance():
    """The demo prints `ok: {{ACS::InstanceName}} ({{ACS::InstanceId}}, {{ACS::ZoneId}})`:
    its instances' names and ids are masked, so they group by zone, not one each."""
    async with simulated(load_fleet(ROOT / "plans" / "fleets" / "demo.yaml")) as env:
        plan = Plan(
            name="demo",
            targets=Targets(tags={"app": "worker"}),
            command=Command(content="true", timeout=30),
            waves=(Wave("all", Amount(100, percent=True), max_errors=None),),
        )
        resolution = await resolve(plan.targets, plan.command.type, env.client)
        collector = ReportCollector()
        result = await run_rollout(
            plan, env.client, resolution.runnable, run_id="r-demo", clock=env.clock, sink=collector
        )
    facts = facts_of(plan, resolution, exit_code(result), run_id="r-demo")
    groups = group_results(result.results, names_of(facts))
    zone_of = {i.instance_id: i.zone_id for i in resolution.runnable}
    said_ok = [g for g in groups if g.sample.startswith("ok: ")]
    ok_zones = {zone_of[r.instance_id] for r in result.results if r.output.startswith("ok: ")}
    assert len(ok_zones) > 1
    assert sorted(g.sample for g in said_ok) == sorted(
        f"ok: <name> (<instance>, {zone})" for zone in ok_zones
    )
    assert sum(g.count for g in said_ok) > len(ok_zones)


async def test_an_interrupted_run_gets_reports_of_its_partial_result(tmp_path: Path):
    """Cancelled while it waits for an approval: status interrupted, the approval
    pending, the instances never sent skipped in junit."""
    async with simulated(FLEET) as env:
        instances = [i async for i in env.client.describe_instances()]
        plan = Plan(
            name="gated",
            targets=Targets(),
            command=Command(content="deploy"),
            waves=(
                Wave("canary", Amount(1), approval=True),
                Wave("rest", Amount(100, percent=True)),
            ),
        )
        collector = ReportCollector()
        with anyio.CancelScope() as scope:

            def sink(event: Event) -> None:
                collector(event)
                if isinstance(event, ApprovalRequested):
                    scope.cancel()

            await run_rollout(
                plan,
                env.client,
                instances,
                run_id="r-int",
                clock=env.clock,
                sink=sink,
                approver=FileApprover(env.clock, tmp_path / "approvals"),
            )
        assert scope.cancelled_caught
    facts = facts_of(plan, None, 130, run_id="r-int")
    paths = write_reports(tmp_path / "reports", facts, collector)
    report = json.loads(paths.json.read_text())
    assert report["status"] == "interrupted"
    assert report["halt"]["reason"] == "interrupted"
    assert report["waves"][0]["approval"]["decision"] == "pending"
    assert report["waves"][0]["approval"]["decided_at"] is None
    assert report["counts"]["not_sent"] == 2
    suites = suites_of(paths.junit)
    assert (suites["wave canary"].tests, suites["wave rest"].skipped) == (1, 2)
    assert paths.markdown.read_text().startswith("# orchestrator run r-int: interrupted\n")


# --- status, endpoint, in-flight instances ----------------------------------------------------


@pytest.mark.parametrize(
    ("halt", "interrupted", "code", "status"),
    [
        (None, False, 0, "succeeded"),
        (None, False, 1, "failed"),
        (Halt("refused", "Forbidden.RAM"), False, 4, "halted"),
        (Halt("stopped"), False, 3, "halted"),
        (Halt("interrupted"), True, 130, "interrupted"),
        (Halt("tracking", "InternalError"), True, 4, "interrupted"),
    ],
)
def test_the_status_says_how_the_run_ended(
    tmp_path: Path, halt: Halt | None, interrupted: bool, code: int, status: str
):
    result = RolloutResult("r-s", (InstanceResult("i-s0000001", Outcome.SUCCEEDED),), halt=halt)
    collector = feed(ReportCollector(), [RunFinished(result, interrupted=interrupted)])
    facts = facts_of(plan_with_secrets(WAVES), None, code, run_id="r-s")
    paths = write_reports(tmp_path, facts, collector)
    assert json.loads(paths.json.read_text())["status"] == status
    assert paths.markdown.read_text().startswith(f"# orchestrator run r-s: {status}\n")


@pytest.mark.parametrize(
    ("endpoint", "shown"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("ecs.cn-hangzhou.aliyuncs.com", "ecs.cn-hangzhou.aliyuncs.com"),
        ("https://key:secret@ecs.example.com/api?token=t#f", "https://ecs.example.com/api"),
        ("key:secret@ecs.example.com", "ecs.example.com"),
        ("", ""),
    ],
)
def test_the_endpoint_is_written_without_credentials(endpoint: str, shown: str):
    assert public_endpoint(endpoint) == shown


def test_instances_still_in_flight_are_reported_as_errors(tmp_path: Path):
    """An interrupted run whose invocations go on: junit shows them, report.json lists them."""
    result = RolloutResult(
        "r-fly",
        (InstanceResult("i-done0001", Outcome.SUCCEEDED, wave="all"),),
        (WaveSummary(0, "all", 3),),
        halt=Halt("interrupted"),
        in_flight=("i-fly00001", "i-fly00002"),
    )
    collector = feed(ReportCollector(), [RunFinished(result, interrupted=True)])
    facts = facts_of(plan_with_secrets(WAVES), None, 130, run_id="r-fly")
    paths = write_reports(tmp_path, facts, collector)
    assert json.loads(paths.json.read_text())["in_flight"] == ["i-fly00001", "i-fly00002"]
    suites = suites_of(paths.junit)
    assert (suites["in flight"].tests, suites["in flight"].errors) == (2, 2)
    (error,) = cases_of(suites["in flight"])["i-fly00001"].result
    assert (error.type, error.message) == (
        "InFlight",
        "outcome unknown: still running when the run ended",
    )
