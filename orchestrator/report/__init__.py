"""Reports of a run for CI: report.json, junit.xml, summary.md, and each instance's output.

`orchestrator run` is started from CI pipelines as often as from a terminal, and a
pipeline cannot read a terminal summary: it needs files. `--report-dir DIR` gets three,
written when the run ends (interrupted or not): report.json (everything, versioned and
documented field by field in docs/report-format.md, for scripts to branch on),
junit.xml (one test case per instance, which every CI system renders) and summary.md
(GitHub-flavoured Markdown, also appended to $GITHUB_STEP_SUMMARY). Two sinks feed
them while the run goes: `ReportCollector` keeps what the run's result does not hold
(batches, gate decisions, approvals, timings), and `OutputFiles` (`--output-dir DIR`)
writes every instance's whole output, uncut, to its own file. Output grouping
(`group_results`) turns thousands of outputs into the few distinct things the fleet
said, by masking what differs from one instance to the next (`normalize_output`).
"""

from orchestrator.report._collect import (
    ApprovalRecord,
    BatchRecord,
    BreachStop,
    ReportCollector,
    ReportedOrigin,
    RunFacts,
    VerifyRecord,
    WaveRecord,
)
from orchestrator.report._groups import (
    InstanceNames,
    OutputGroup,
    describe_group,
    group_results,
    normalize_output,
)
from orchestrator.report._json import REPORT_SCHEMA_VERSION, build_report, render_json
from orchestrator.report._junit import render_junit
from orchestrator.report._markdown import render_markdown
from orchestrator.report._write import OutputFiles, ReportPaths, names_of, write_reports

__all__ = [
    "REPORT_SCHEMA_VERSION",
    "ApprovalRecord",
    "BatchRecord",
    "BreachStop",
    "InstanceNames",
    "OutputFiles",
    "OutputGroup",
    "ReportCollector",
    "ReportPaths",
    "ReportedOrigin",
    "RunFacts",
    "VerifyRecord",
    "WaveRecord",
    "build_report",
    "describe_group",
    "group_results",
    "names_of",
    "normalize_output",
    "render_json",
    "render_junit",
    "render_markdown",
    "write_reports",
]
