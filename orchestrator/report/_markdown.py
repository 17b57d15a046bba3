"""summary.md: the run as a page a person reads in CI (GitHub's job summary, a PR comment).

It says what the terminal summary says, in GitHub-flavoured Markdown: the status in the
title (words, no emoji: a summary is searched and quoted), counts by wave, each gate's
decision with its numbers, the halt, what the fleet printed (output groups), and the
instances that need a look, each list capped so a 10,000-instance run stays one page.
Everything that came from an instance or the API is escaped: an output with `|` must
not break a table, one with `<b>` must not become HTML.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Final

from orchestrator.report._groups import VERIFY_FAILED, group_kind
from orchestrator.report._json import iso, run_status
from orchestrator.rollout import Outcome

if TYPE_CHECKING:
    from collections.abc import Sequence

    from orchestrator.report._collect import ReportCollector, RunFacts
    from orchestrator.report._groups import OutputGroup
    from orchestrator.rollout import InstanceResult, RolloutResult

GROUPS_SHOWN: Final = 10
LISTED: Final = 20  # instances listed per section before "and N more"
BEFORE_DISPATCH: Final = "(before dispatch)"
_SPECIAL: Final = re.compile(r"([\\`*_\[\]<>|~&#!])")
_SPACES: Final = re.compile(r"\s+")
_TICKS: Final = re.compile(r"`+")


def escape(text: str) -> str:
    """`text` as literal Markdown on one line: whitespace runs become one space, and
    every character that could start markup (or end a table cell) is backslashed."""
    return _SPECIAL.sub(r"\\\1", _SPACES.sub(" ", text).strip())


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], right: int = 0) -> list[str]:
    """A table whose last `right` columns are right-aligned (numbers)."""
    align = ["---"] * (len(header) - right) + ["---:"] * right
    return [_row(header), _row(align), *(_row(r) for r in rows), ""]


def _fenced(text: str, indent: str) -> list[str]:
    """`text` in a fenced block whose fence no backtick run inside it can close."""
    longest = max((len(run) for run in _TICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    body = [f"{indent}{line}" for line in text.splitlines()] or [indent]
    return [f"{indent}{fence}text", *body, f"{indent}{fence}"]


def _more(total: int, shown: int, noun: str) -> list[str]:
    return [f"and {total - shown:,} more {noun}", ""] if total > shown else []


def _heading(facts: RunFacts, collector: ReportCollector) -> list[str]:
    result = collector.result
    status = run_status(facts, collector)
    lines = [f"# orchestrator run {escape(facts.run_id)}: {status}", ""]
    facts_line = [
        f"plan {escape(facts.plan.name)} ({escape(facts.plan_path)})",
        f"region {escape(facts.region)}",
        f"exit code {facts.exit_code}",
    ]
    if result is not None and result.started_at and result.finished_at:
        seconds = (result.finished_at - result.started_at).total_seconds()
        clock = facts.clock
        took = f"started {iso(result.started_at)}, took {clock.real_seconds(seconds):,.1f} s"
        if clock.kind == "scaled":
            scale = f"time_scale {clock.time_scale:g}"
            took += f" ({seconds:,.1f} s on the simulator's scaled clock, {scale})"
        facts_line.append(took)
    lines += ["; ".join(facts_line), ""]
    origin = facts.origin
    if origin.parent is not None:
        only = f" ({escape(', '.join(origin.only))})" if origin.only else ""
        lines += [f"{origin.kind} of run {escape(origin.parent)}{only}", ""]
    overrides = [f"--param {escape(name)}" for name in origin.params]
    overrides += [f"--limit {escape(selector)}" for selector in origin.limit]
    if overrides:
        lines += ["overrides: " + ", ".join(overrides), ""]
    return lines


def _counts(facts: RunFacts, result: RolloutResult | None) -> list[str]:
    by_wave: dict[str, Counter[Outcome]] = {}
    if result is not None:
        by_wave = {w.name: Counter() for w in result.waves}
        for entry in result.results:
            by_wave.setdefault(entry.wave or "-", Counter())[entry.outcome] += 1
    by_wave = {name: counts for name, counts in by_wave.items() if counts}
    skipped = facts.resolution.skipped if facts.resolution else ()
    if skipped:
        by_wave[BEFORE_DISPATCH] = Counter({Outcome.SKIPPED: len(skipped)})
    if not by_wave:
        return []
    shown = [o for o in Outcome if any(c[o] for c in by_wave.values())]
    rows: list[list[object]] = []
    total: Counter[Outcome] = Counter()
    for name, counts in by_wave.items():
        total.update(counts)
        rows.append([escape(name), *(counts[o] for o in shown), sum(counts.values())])
    if len(by_wave) > 1:
        rows.append(["**all**", *(total[o] for o in shown), sum(total.values())])
    header = ["wave", *(o.value for o in shown), "total"]
    return ["## Outcome by wave", "", *_table(header, rows, right=len(shown) + 1)]


def _gates(collector: ReportCollector) -> list[str]:
    rows: list[list[object]] = []
    for wave in collector.waves:
        gate = wave.gate
        if gate is None:
            continue
        notes = [escape(gate.summary())]
        if wave.verify is not None:
            v = wave.verify
            verify = f"verify: {v.passed} passed, {v.failed} failed, {v.inconclusive} inconclusive"
            notes.append(verify + (f" ({escape(v.problem)})" if v.problem else ""))
        if wave.breach_stop is not None:
            stop = wave.breach_stop
            notes.append(f"stop sent to {stop.instances} in-flight instances")
        if wave.approval is not None:
            notes.append(f"approval: {wave.approval.decision}")
        rows.append(
            [
                escape(gate.name),
                gate.verdict.value,
                "; ".join(notes),
                gate.errors,
                escape(gate.limit_text),
                gate.failed,
                gate.undelivered,
                gate.verify_failed,
            ]
        )
    if not rows:
        return []
    header = ["wave", "verdict", "decision", "errors", "max_errors", "failed", "undelivered"]
    return ["## Gates", "", *_table([*header, "verify failed"], rows, right=5)]


def _zones(collector: ReportCollector) -> list[str]:
    """Every zone budget of every wave that had one: the numbers behind each zone's fate."""
    rows = [
        [
            escape(wave.gate.name),
            escape(count.zone),
            count.verdict.value,
            count.size,
            count.errors,
            escape(count.limit_text),
            count.failed,
            count.undelivered,
        ]
        for wave in collector.waves
        if wave.gate is not None
        for count in wave.gate.zones
    ]
    if not rows:
        return []
    header = ["wave", "zone", "verdict", "in wave", "errors", "max_errors_per_zone", "failed"]
    return ["## Zone budgets", "", *_table([*header, "undelivered"], rows, right=5)]


def _halt(result: RolloutResult | None) -> list[str]:
    if result is None or result.halt is None:
        return []
    halt = result.halt
    return ["## Halt", "", f"**{escape(halt.reason)}**: {escape(halt.describe())}", ""]


def _groups(groups: Sequence[OutputGroup]) -> list[str]:
    if not groups:
        return []
    lines = ["## Output groups", ""]
    for number, group in enumerate(groups[:GROUPS_SHOWN], start=1):
        noun = "instance" if group.count == 1 else "instances"
        marker = f"{number}. "
        lines.append(f"{marker}**{group.count:,} {noun}**: {escape(group_kind(group))}")
        if group.sample:
            # CommonMark keeps a block in a list item only when it is indented to the
            # item's text: 3 spaces under `9. `, 4 under `10. `.
            lines.extend(_fenced(group.sample, " " * len(marker)))
    lines.append("")
    return lines + _more(len(groups), GROUPS_SHOWN, "groups")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:120] if lines else ""


def _failed(results: Sequence[InstanceResult]) -> list[str]:
    failed = [r for r in results if r.outcome is Outcome.FAILED]
    if not failed:
        return []
    rows = []
    for r in failed[:LISTED]:
        shown = r.verify if r.error_code == VERIFY_FAILED and r.verify else r
        exit_code = "-" if shown.exit_code is None else shown.exit_code
        last = _last_line(shown.output) or r.error_info
        rows.append(
            [escape(r.instance_id), escape(r.wave), exit_code, escape(r.error_code), escape(last)]
        )
    header = ["instance", "wave", "exit", "error code", "last output line"]
    return [
        f"## Failed instances ({len(failed):,})",
        "",
        *_table(header, rows),
        *_more(len(failed), LISTED, "failed instances"),
    ]


def _undelivered(results: Sequence[InstanceResult]) -> list[str]:
    kept = [r for r in results if r.outcome in {Outcome.UNDELIVERED, Outcome.STOPPED}]
    if not kept:
        return []
    rows = [
        [
            escape(r.instance_id),
            escape(r.wave),
            r.outcome.value,
            escape(r.error_code or r.status),
            escape(r.error_info),
        ]
        for r in kept[:LISTED]
    ]
    header = ["instance", "wave", "outcome", "code", "why"]
    return [
        f"## Undelivered or stopped instances ({len(kept):,})",
        "",
        *_table(header, rows),
        *_more(len(kept), LISTED, "instances"),
    ]


def _skipped(facts: RunFacts, results: Sequence[InstanceResult]) -> list[str]:
    rows: list[list[object]] = [
        [escape(s.instance_id), escape(BEFORE_DISPATCH), escape(s.reason.value), escape(s.detail)]
        for s in (facts.resolution.skipped if facts.resolution else ())
    ]
    rows += [
        [escape(r.instance_id), escape(r.wave), escape(r.error_code), escape(r.error_info)]
        for r in results
        if r.outcome is Outcome.SKIPPED
    ]
    if not rows:
        return []
    header = ["instance", "wave", "reason", "detail"]
    return [
        f"## Skipped instances ({len(rows):,})",
        "",
        *_table(header, rows[:LISTED]),
        *_more(len(rows), LISTED, "skipped instances"),
    ]


def _api(collector: ReportCollector) -> list[str]:
    result = collector.result
    calls = sorted(result.api_calls.items()) if result else []
    throttles = result.throttles if result else collector.throttles
    listed = ", ".join(f"{escape(action)} {n:,}" for action, n in calls) or "none"
    return ["## API", "", f"calls: {listed}; throttled: {throttles:,}", ""]


def render_markdown(
    facts: RunFacts, collector: ReportCollector, groups: Sequence[OutputGroup]
) -> str:
    """summary.md's text."""
    result = collector.result
    results = result.results if result else ()
    lines = [
        *_heading(facts, collector),
        *_counts(facts, result),
        *_gates(collector),
        *_zones(collector),
        *_halt(result),
        *_groups(groups),
        *_failed(results),
        *_undelivered(results),
        *_skipped(facts, results),
        *_api(collector),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"
