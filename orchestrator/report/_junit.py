"""junit.xml: the run as test results, because every CI system already renders those.

GitLab, Jenkins, Azure Pipelines and the GitHub test-report actions all show JUnit XML
as pass/fail lists with messages, so a run needs no plugin to be read there: a wave is
a test suite, an instance a test case; a failed instance a failure (exit code and
error code in its message), one that never ran or was stopped an error, one skipped or
not sent a skipped test. Outputs are arbitrary bytes from thousands of machines, so
every text is stripped of the characters XML 1.0 forbids (control characters) before
the serialiser escapes it; only failures carry output, to keep the file small.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Final

from orchestrator.report._groups import VERIFY_FAILED, sample_of
from orchestrator.report._json import iso
from orchestrator.rollout import Outcome

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from orchestrator.clock import ClockInfo
    from orchestrator.report._collect import ReportCollector, RunFacts
    from orchestrator.rollout import InstanceResult, RolloutResult
    from orchestrator.targets import Skipped

FAILURE_TAIL: Final = 1000  # characters of output in a failure's text
BEFORE_DISPATCH: Final = "before dispatch"
IN_FLIGHT: Final = "in flight"
# What XML 1.0 allows: tab, LF, CR, and the rest of Unicode minus surrogates, FFFE, FFFF.
_FORBIDDEN: Final = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """`text` without the characters XML 1.0 cannot carry (escaping is the writer's)."""
    return _FORBIDDEN.sub("", text)


def _seconds(start: datetime | None, end: datetime | None, clock: ClockInfo) -> float:
    """Real seconds from `start` to `end` (times on `clock`): a CI test view shows them
    to people as time they waited."""
    if start is None or end is None:
        return 0.0
    return max(0.0, clock.real_seconds((end - start).total_seconds()))


class _Suite:
    """One <testsuite> being filled, with its counters."""

    def __init__(self, name: str, timestamp: str | None, time: float) -> None:
        self.element = ET.Element("testsuite", {"name": xml_safe(name)})
        if timestamp:
            self.element.set("timestamp", timestamp)
        self.time = time
        self.tests = self.failures = self.errors = self.skipped = 0

    def case(self, classname: str, name: str, time: float) -> ET.Element:
        self.tests += 1
        attributes = {"classname": xml_safe(classname), "name": xml_safe(name)}
        return ET.SubElement(self.element, "testcase", {**attributes, "time": f"{time:.3f}"})

    def close(self) -> ET.Element:
        for key, value in (
            ("tests", self.tests),
            ("failures", self.failures),
            ("errors", self.errors),
            ("skipped", self.skipped),
        ):
            self.element.set(key, str(value))
        self.element.set("time", f"{self.time:.3f}")
        return self.element


def _child(parent: ET.Element, tag: str, message: str, kind: str = "", text: str = "") -> None:
    element = ET.SubElement(parent, tag, {"message": xml_safe(message)})
    if kind:
        element.set("type", xml_safe(kind))
    if text:
        element.text = xml_safe(text)


def _failure(suite: _Suite, case: ET.Element, result: InstanceResult) -> None:
    """`exit N (ErrorCode)` with the output's last lines; the bounded output goes to
    <system-out> (a failed verify: the verify's, after the command's)."""
    shown = result.verify if result.error_code == VERIFY_FAILED and result.verify else result
    exit_text = "-" if shown.exit_code is None else str(shown.exit_code)
    code = result.error_code
    message = f"exit {exit_text} ({code})" if code else f"exit {exit_text}"
    tail = sample_of(shown.output.strip(), FAILURE_TAIL)
    text = "\n\n".join(part for part in (result.error_info, tail) if part)
    _child(case, "failure", message, code or "ExitCode", text)
    suite.failures += 1
    output = result.output
    if shown is not result:
        output = f"{output}\n--- verify ---\n{shown.output}"
    if output.strip():
        ET.SubElement(case, "system-out").text = xml_safe(output)


def _case(suite: _Suite, result: InstanceResult, clock: ClockInfo) -> None:
    case = suite.case(
        f"orchestrator.{result.wave or '-'}",
        result.instance_id,
        _seconds(result.start_time, result.finish_time, clock),
    )
    match result.outcome:
        case Outcome.SUCCEEDED:
            pass
        case Outcome.FAILED:
            _failure(suite, case, result)
        case Outcome.UNDELIVERED | Outcome.STOPPED:
            kind = result.error_code or result.status or result.outcome.value
            message = f"{result.outcome.value}: {result.error_info or kind}"
            _child(case, "error", message, kind, result.error_info)
            suite.errors += 1
        case Outcome.SKIPPED | Outcome.NOT_SENT:
            reason = ": ".join(p for p in (result.error_code, result.error_info) if p)
            _child(case, "skipped", reason or result.outcome.value)
            suite.skipped += 1


def _by_wave(result: RolloutResult | None, clock: ClockInfo) -> list[_Suite]:
    """One suite per wave of the run, in wave order (then any other wave a result names)."""
    if result is None:
        return []
    by_wave: dict[str, list[InstanceResult]] = {w.name: [] for w in result.waves}
    for entry in result.results:
        by_wave.setdefault(entry.wave or "-", []).append(entry)
    times = {w.name: (w.started_at, w.finished_at) for w in result.waves}
    suites = []
    for name, results in by_wave.items():
        started, finished = times.get(name, (None, None))
        suite = _Suite(f"wave {name}", iso(started), _seconds(started, finished, clock))
        for entry in results:
            _case(suite, entry, clock)
        suites.append(suite)
    return suites


def _before_dispatch(skipped: Sequence[Skipped]) -> _Suite:
    suite = _Suite(BEFORE_DISPATCH, None, 0.0)
    for entry in skipped:
        case = suite.case("orchestrator.before_dispatch", entry.instance_id, 0.0)
        _child(case, "skipped", f"{entry.reason.value}: {entry.detail}")
        suite.skipped += 1
    return suite


def _in_flight(ids: Sequence[str]) -> _Suite:
    suite = _Suite(IN_FLIGHT, None, 0.0)
    for instance_id in ids:
        case = suite.case("orchestrator.in_flight", instance_id, 0.0)
        message = "outcome unknown: still running when the run ended"
        _child(case, "error", message, "InFlight")
        suite.errors += 1
    return suite


def render_junit(facts: RunFacts, collector: ReportCollector) -> bytes:
    """The JUnit XML document (UTF-8, with its declaration)."""
    result = collector.result
    suites = _by_wave(result, facts.clock)
    if facts.resolution is not None and facts.resolution.skipped:
        suites.append(_before_dispatch(facts.resolution.skipped))
    if result is not None and result.in_flight:
        suites.append(_in_flight(result.in_flight))
    duration = _seconds(result.started_at, result.finished_at, facts.clock) if result else 0.0
    root = ET.Element("testsuites", {"name": xml_safe(f"orchestrator run {facts.run_id}")})
    root.set("tests", str(sum(s.tests for s in suites)))
    root.set("failures", str(sum(s.failures for s in suites)))
    root.set("errors", str(sum(s.errors for s in suites)))
    root.set("skipped", str(sum(s.skipped for s in suites)))
    root.set("time", f"{duration:.3f}")
    root.extend(suite.close() for suite in suites)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"
