"""junit.xml: the run as test results, because every CI system already renders those.

GitLab, Jenkins, Azure Pipelines and the GitHub test-report actions all show JUnit XML
as pass/fail lists with messages, so a run needs no plugin to be read there: a wave is
a test suite, an instance a test case; a failed instance a failure (exit code and
error code in its message), one that never ran or was stopped an error, one skipped or
not sent a skipped test. Outputs are arbitrary bytes from thousands of machines, so
every text is stripped of the characters XML 1.0 forbids (control characters) before
the serialiser escapes it; only failures carry output, to keep the file small.

The document is written piece by piece (`junit_chunks`): at 100,000 instances a tree of
every test case, and its text, would cost tens of megabytes at the end of the run. Each
suite's counters are counted first (its start tag carries them), then its test cases
are built and serialised one at a time, laid out as `ET.indent` lays out the whole
tree, so the bytes are those of the tree serialised at once.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Final

from orchestrator.report._groups import VERIFY_FAILED, sample_of
from orchestrator.report._json import iso
from orchestrator.rollout import Outcome

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from datetime import datetime

    from orchestrator.clock import ClockInfo
    from orchestrator.report._collect import ReportCollector, RunFacts
    from orchestrator.rollout import InstanceResult, RolloutResult
    from orchestrator.targets import Skipped

FAILURE_TAIL: Final = 1000  # characters of output in a failure's text
BEFORE_DISPATCH: Final = "before dispatch"
IN_FLIGHT: Final = "in flight"
SPACE: Final = "  "  # one level of indentation (`ET.indent`'s default)
DECLARATION: Final = "<?xml version='1.0' encoding='utf-8'?>\n"
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
    """One <testsuite>: its attributes, its counters, and a way to build its test cases
    one at a time (never all of them at once)."""

    def __init__(
        self,
        name: str,
        timestamp: str | None,
        time: float,
        cases: Callable[[], Iterator[ET.Element]],
    ) -> None:
        self.name = name
        self.timestamp = timestamp
        self.time = time
        self.cases = cases
        self.tests = self.failures = self.errors = self.skipped = 0

    def count(self, kind: str) -> None:
        """One more test case, of `kind` (`failure`, `error`, `skipped` or "")."""
        self.tests += 1
        if kind == "failure":
            self.failures += 1
        elif kind == "error":
            self.errors += 1
        elif kind == "skipped":
            self.skipped += 1

    def element(self) -> ET.Element:
        """The <testsuite> element without its cases, attributes in the usual order."""
        element = ET.Element("testsuite", {"name": xml_safe(self.name)})
        if self.timestamp:
            element.set("timestamp", self.timestamp)
        for key, value in (
            ("tests", self.tests),
            ("failures", self.failures),
            ("errors", self.errors),
            ("skipped", self.skipped),
        ):
            element.set(key, str(value))
        element.set("time", f"{self.time:.3f}")
        return element


def _testcase(classname: str, name: str, time: float) -> ET.Element:
    attributes = {"classname": xml_safe(classname), "name": xml_safe(name)}
    return ET.Element("testcase", {**attributes, "time": f"{time:.3f}"})


def _child(parent: ET.Element, tag: str, message: str, kind: str = "", text: str = "") -> None:
    element = ET.SubElement(parent, tag, {"message": xml_safe(message)})
    if kind:
        element.set("type", xml_safe(kind))
    if text:
        element.text = xml_safe(text)


def _failure(case: ET.Element, result: InstanceResult) -> None:
    """`exit N (ErrorCode)` with the output's last lines; the bounded output goes to
    <system-out> (a failed verify: the verify's, after the command's)."""
    shown = result.verify if result.error_code == VERIFY_FAILED and result.verify else result
    exit_text = "-" if shown.exit_code is None else str(shown.exit_code)
    code = result.error_code
    message = f"exit {exit_text} ({code})" if code else f"exit {exit_text}"
    tail = sample_of(shown.output.strip(), FAILURE_TAIL)
    text = "\n\n".join(part for part in (result.error_info, tail) if part)
    _child(case, "failure", message, code or "ExitCode", text)
    output = result.output
    if shown is not result:
        output = f"{output}\n--- verify ---\n{shown.output}"
    if output.strip():
        ET.SubElement(case, "system-out").text = xml_safe(output)


def _kind(outcome: Outcome) -> str:
    """What a result of `outcome` is in JUnit's terms ("" for a pass)."""
    match outcome:
        case Outcome.FAILED:
            return "failure"
        case Outcome.UNDELIVERED | Outcome.STOPPED:
            return "error"
        case Outcome.SKIPPED | Outcome.NOT_SENT:
            return "skipped"
        case _:
            return ""


def _case(result: InstanceResult, clock: ClockInfo) -> ET.Element:
    case = _testcase(
        f"orchestrator.{result.wave or '-'}",
        result.instance_id,
        _seconds(result.start_time, result.finish_time, clock),
    )
    match _kind(result.outcome):
        case "failure":
            _failure(case, result)
        case "error":
            kind = result.error_code or result.status or result.outcome.value
            message = f"{result.outcome.value}: {result.error_info or kind}"
            _child(case, "error", message, kind, result.error_info)
        case "skipped":
            reason = ": ".join(p for p in (result.error_code, result.error_info) if p)
            _child(case, "skipped", reason or result.outcome.value)
    return case


def _wave_suite(
    name: str, results: Sequence[InstanceResult], times: tuple[datetime | None, datetime | None],
    clock: ClockInfo,
) -> _Suite:  # fmt: skip
    started, finished = times
    suite = _Suite(
        f"wave {name}",
        iso(started),
        _seconds(started, finished, clock),
        lambda: (_case(entry, clock) for entry in results),
    )
    for entry in results:
        suite.count(_kind(entry.outcome))
    return suite


def _by_wave(result: RolloutResult | None, clock: ClockInfo) -> list[_Suite]:
    """One suite per wave of the run, in wave order (then any other wave a result names)."""
    if result is None:
        return []
    by_wave: dict[str, list[InstanceResult]] = {w.name: [] for w in result.waves}
    for entry in result.results:
        by_wave.setdefault(entry.wave or "-", []).append(entry)
    times = {w.name: (w.started_at, w.finished_at) for w in result.waves}
    return [
        _wave_suite(name, results, times.get(name, (None, None)), clock)
        for name, results in by_wave.items()
    ]


def _skipped_case(entry: Skipped) -> ET.Element:
    case = _testcase("orchestrator.before_dispatch", entry.instance_id, 0.0)
    _child(case, "skipped", f"{entry.reason.value}: {entry.detail}")
    return case


def _before_dispatch(skipped: Sequence[Skipped]) -> _Suite:
    suite = _Suite(BEFORE_DISPATCH, None, 0.0, lambda: map(_skipped_case, skipped))
    for _ in skipped:
        suite.count("skipped")
    return suite


def _in_flight_case(instance_id: str) -> ET.Element:
    case = _testcase("orchestrator.in_flight", instance_id, 0.0)
    message = "outcome unknown: still running when the run ended"
    _child(case, "error", message, "InFlight")
    return case


def _in_flight(ids: Sequence[str]) -> _Suite:
    suite = _Suite(IN_FLIGHT, None, 0.0, lambda: map(_in_flight_case, ids))
    for _ in ids:
        suite.count("error")
    return suite


def _text(element: ET.Element) -> str:
    return ET.tostring(element, encoding="unicode")


def _start_tag(element: ET.Element) -> str:
    """`<tag attributes>` of a childless element, escaped as the serialiser escapes it."""
    whole = ET.tostring(element, encoding="unicode", short_empty_elements=False)
    return whole.removesuffix(f"</{element.tag}>")


def _suite_chunks(suite: _Suite) -> Iterator[str]:
    """A suite one level in, each case two levels in (`ET.indent`'s layout)."""
    element = suite.element()
    if not suite.tests:
        yield f"{SPACE}{_text(element)}\n"
        return
    yield f"{SPACE}{_start_tag(element)}\n"
    for case in suite.cases():
        ET.indent(case, SPACE, level=2)
        yield f"{SPACE * 2}{_text(case)}\n"
    yield f"{SPACE}</testsuite>\n"


def junit_chunks(facts: RunFacts, collector: ReportCollector) -> Iterator[bytes]:
    """The JUnit XML document (UTF-8, with its declaration), a test case at a time."""
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
    if not suites:
        yield f"{DECLARATION}{_text(root)}\n".encode()
        return
    yield f"{DECLARATION}{_start_tag(root)}\n".encode()
    for suite in suites:
        # Text is XML-safe (no surrogates) by now, so UTF-8 encodes it all, as ET does.
        yield from (chunk.encode() for chunk in _suite_chunks(suite))
    yield b"</testsuites>\n"


def render_junit(facts: RunFacts, collector: ReportCollector) -> bytes:
    """The JUnit XML document (UTF-8, with its declaration)."""
    return b"".join(junit_chunks(facts, collector))
