"""report.json: the whole run as one versioned JSON document, for CI to read and branch on.

A pipeline that triggers `orchestrator run` wants more than an exit code: which
instances failed and how, what each gate decided, which InvokeIds to look up. This
module turns a run (`RunFacts` + `ReportCollector` + output groups) into one plain
dictionary whose shape is documented field by field in docs/report-format.md and
versioned (`schema`: `orchestrator.report/1`; a field is only ever added within a
version). The plan appears by name, path and digests only: a script or a parameter
value may hold a secret, so neither is ever written. Keys come in a fixed order and
the document is serialised once, at the end. `report_chunks` serialises it piece by
piece: at 100,000 instances the results' dictionaries and the whole text would cost
well over 100 MB at once (the end-of-run peak of the process), so the results are
turned into text one at a time as the file takes them, and the bytes are the same as
`render_json(build_report(...))`'s.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

import orchestrator
from orchestrator.rollout import Outcome

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from orchestrator.report._collect import (
        ApprovalRecord,
        BatchRecord,
        BreachStop,
        ReportCollector,
        RunFacts,
        VerifyRecord,
        WaveRecord,
    )
    from orchestrator.report._groups import OutputGroup
    from orchestrator.rollout import (
        BatchRefused,
        GateDecision,
        Halt,
        InstanceResult,
        WaveSummary,
        ZoneCount,
    )
    from orchestrator.targets import Resolution

REPORT_SCHEMA_VERSION: Final = 1
SCHEMA: Final = f"orchestrator.report/{REPORT_SCHEMA_VERSION}"
GROUP_IDS: Final = 100  # instance ids listed per group before "more"
EXIT_INTERRUPTED: Final = 130  # docs/errors-and-exit-codes.md
INDENT: Final = 2
# Where `report_chunks` puts the results, one at a time, instead of a list of them all.
_STREAMED: Final = object()

Json = dict[str, Any]


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a `Z`, to the millisecond; None stays None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def tool_version() -> str:
    """orchestrator's version: `__version__` if the package has one, else its metadata."""
    version = getattr(orchestrator, "__version__", None)
    if isinstance(version, str):
        return version
    try:
        return importlib.metadata.version("orchestrator")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return "unknown"


def public_endpoint(endpoint: str) -> str:
    """The endpoint without anything that could be a credential (user info, query)."""
    if not endpoint:
        return ""
    scheme = "//" in endpoint
    parts = urlsplit(endpoint if scheme else "//" + endpoint)
    host = parts.netloc.rpartition("@")[2]
    text = urlunsplit((parts.scheme, host, parts.path, "", ""))
    return text if scheme else text.removeprefix("//")


def run_status(facts: RunFacts, collector: ReportCollector) -> str:
    """`succeeded`, `failed`, `halted` or `interrupted`."""
    result = collector.result
    halt = result.halt if result is not None else None
    interrupted = halt is not None and halt.reason == "interrupted"
    if collector.interrupted or interrupted or facts.exit_code == EXIT_INTERRUPTED:
        return "interrupted"
    if halt is not None:
        return "halted"
    return "succeeded" if facts.exit_code == 0 else "failed"


def outcome_counts(counts: Mapping[Outcome, int] | None) -> dict[str, int]:
    """Every outcome, in the enum's order, with 0 where none."""
    known = counts or {}
    return {outcome.value: known.get(outcome, 0) for outcome in Outcome}


def wave_names(collector: ReportCollector) -> dict[int, str]:
    """Wave index → name, from the result and the events."""
    names = {record.index: record.name for record in collector.waves if record.name}
    if collector.result is not None:
        names.update({wave.index: wave.name for wave in collector.result.waves})
    return names


def _plan(facts: RunFacts) -> Json:
    command = facts.plan.command
    content = command.content.encode()
    return {
        "name": facts.plan.name,
        "path": facts.plan_path,
        "sha256": facts.plan_sha256,
        "command": {
            "type": command.type,
            "timeout": command.timeout,
            "name": command.name,
            "content_sha256": hashlib.sha256(content).hexdigest(),
            "content_bytes": len(content),
        },
        # What this run changed of the plan: parameter names, never a value.
        "overrides": {"params": list(facts.origin.params), "limit": list(facts.origin.limit)},
    }


def _origin(facts: RunFacts) -> Json:
    origin = facts.origin
    return {"kind": origin.kind, "parent": origin.parent, "only": list(origin.only)}


def _halt(halt: Halt | None) -> Json | None:
    if halt is None:
        return None
    return {
        "reason": halt.reason,
        "code": halt.code,
        "message": halt.message,
        "wave": halt.wave,
        "text": halt.describe(),
        "in_flight": halt.in_flight,
        "stop_requested": halt.stop_requested,
        "stopped": halt.stopped,
        "not_started": list(halt.not_started),
    }


def _targets(resolution: Resolution | None) -> Json | None:
    if resolution is None:
        return None
    return {
        "selected": resolution.selected,
        "runnable": len(resolution.runnable),
        "skipped": [
            {
                "instance_id": s.instance_id,
                "reason": s.reason.value,
                "detail": s.detail,
                "zone_id": s.zone_id,
            }
            for s in resolution.skipped
        ],
        "excluded": list(resolution.excluded),
    }


def _gate(decision: GateDecision | None) -> Json | None:
    if decision is None:
        return None
    return {
        "verdict": decision.verdict.value,
        "errors": decision.errors,
        "threshold": decision.threshold,
        "limit": decision.limit_text,
        "summary": decision.summary(),
        "failed": decision.failed,
        "undelivered": decision.undelivered,
        "verify_failed": decision.verify_failed,
        "rule": decision.rule,
        "completed": decision.completed,
        "max_error_rate": None if decision.rate is None else decision.rate.max_error_rate,
        "confidence": None if decision.rate is None else decision.rate.confidence,
        "lower": decision.lower,
        "upper": decision.upper,
        "zone_breach": decision.zone_breach.zone if decision.zone_breach is not None else None,
        "zones": [_zone(count) for count in decision.zones],
    }


def _zone(count: ZoneCount) -> Json:
    return {
        "zone": count.zone,
        "size": count.size,
        "threshold": count.threshold,
        "limit": count.limit_text,
        "errors": count.errors,
        "failed": count.failed,
        "undelivered": count.undelivered,
        "verdict": count.verdict.value,
        "summary": count.summary(),
    }


def _verify(record: VerifyRecord | None) -> Json | None:
    if record is None:
        return None
    return {
        "instances": record.instances,
        "passed": record.passed,
        "failed": record.failed,
        "inconclusive": record.inconclusive,
        "problem": record.problem,
        "started_at": iso(record.started_at),
        "finished_at": iso(record.finished_at),
    }


def _approval(record: ApprovalRecord | None) -> Json | None:
    if record is None:
        return None
    return {
        "reason": record.reason,
        "how": record.how,
        "requested_at": iso(record.requested_at),
        "decision": record.decision,
        "decided_at": iso(record.decided_at),
    }


def _breach_stop(record: BreachStop | None) -> Json | None:
    if record is None:
        return None
    return {"invocations": record.invocations, "instances": record.instances, "at": iso(record.at)}


def _wave(summary: WaveSummary | None, record: WaveRecord) -> Json:
    return {
        "index": record.index,
        "name": summary.name if summary else record.name,
        "size": summary.size if summary else record.size,
        "counts": outcome_counts(summary.counts if summary else record.counts),
        "started_at": iso(summary.started_at if summary else record.started_at),
        "finished_at": iso(summary.finished_at if summary else record.finished_at),
        "gate": _gate(record.gate),
        "verify": _verify(record.verify),
        "approval": _approval(record.approval),
        "breach_stop": _breach_stop(record.breach_stop),
    }


def _waves(collector: ReportCollector) -> list[Json]:
    """The result's waves (every wave of the plan, started or not), with what the events
    said about each; without a result, the waves the events saw."""
    summaries = {w.index: w for w in collector.result.waves} if collector.result else {}
    indices = sorted(set(summaries) | {record.index for record in collector.waves})
    return [_wave(summaries.get(i), collector.wave(i)) for i in indices]


def _batch(record: BatchRecord, names: Mapping[int, str]) -> Json:
    return {
        "wave": names.get(record.wave, str(record.wave)),
        "batch": record.batch,
        "split_path": record.split_path,
        "purpose": record.purpose,
        "client_token": record.client_token,
        "invoke_id": record.invoke_id,
        "instances": record.instances,
        "at": iso(record.at),
    }


def _refused(record: BatchRefused, names: Mapping[int, str]) -> Json:
    return {
        "wave": names.get(record.wave, str(record.wave)),
        "batch": record.batch,
        "split_path": record.split_path,
        "client_token": record.client_token,
        "state": record.state.value,
        "code": record.code,
        "message": record.message,
    }


def _result(result: InstanceResult, *, nested: bool = False) -> Json:
    entry: Json = {
        "instance_id": result.instance_id,
        "wave": result.wave,
        "zone_id": result.zone_id,
        "outcome": result.outcome.value,
        "status": result.status,
        "exit_code": result.exit_code,
        "error_code": result.error_code,
        "error_info": result.error_info,
        "invoke_id": result.invoke_id,
        "start_time": iso(result.start_time),
        "finish_time": iso(result.finish_time),
        "output_tail": result.output,
        "output_dropped": result.output_dropped,
    }
    if not nested:
        entry["verify"] = _result(result.verify, nested=True) if result.verify else None
    return entry


def _group(group: OutputGroup) -> Json:
    return {
        "outcome": group.outcome.value,
        "exit_code": group.exit_code,
        "error_code": group.error_code,
        "sample": group.sample,
        "count": group.count,
        "instance_ids": list(group.instance_ids[:GROUP_IDS]),
        "more": max(0, group.count - GROUP_IDS),
    }


def build_report(
    facts: RunFacts, collector: ReportCollector, groups: Sequence[OutputGroup]
) -> Json:
    """The report as a plain dictionary, keys in the documented order."""
    result = collector.result
    return _document(
        facts, collector, groups, [_result(r) for r in result.results] if result else []
    )


def _document(
    facts: RunFacts, collector: ReportCollector, groups: Sequence[OutputGroup], results: object
) -> Json:
    """The report's dictionary with `results` as the value of its `results` key."""
    result = collector.result
    started = result.started_at if result else collector.started_at
    finished = result.finished_at if result else None
    duration = (finished - started).total_seconds() if started and finished else None
    clock = facts.clock
    names = wave_names(collector)
    calls = dict(sorted(result.api_calls.items())) if result else {}
    return {
        "schema": SCHEMA,
        "run_id": facts.run_id,
        "tool_version": tool_version(),
        "plan": _plan(facts),
        "origin": _origin(facts),
        "target": {"region": facts.region, "endpoint": public_endpoint(facts.endpoint)},
        "started_at": iso(started),
        "finished_at": iso(finished),
        "duration_s": duration,
        "real_duration_s": clock.real_seconds(duration) if duration is not None else None,
        "clock": {"kind": clock.kind, "time_scale": clock.time_scale},
        "exit_code": facts.exit_code,
        "status": run_status(facts, collector),
        "halt": _halt(result.halt if result else None),
        "counts": outcome_counts(result.counts() if result else None),
        "targets": _targets(facts.resolution),
        "waves": _waves(collector),
        "batches": [_batch(b, names) for b in collector.batches],
        "refused_batches": [_refused(r, names) for r in collector.refused],
        "in_flight": list(result.in_flight) if result else [],
        "stopped_zones": list(result.stopped_zones) if result else [],
        "results": results,
        "groups": [_group(g) for g in groups],
        "api": {
            "calls": calls,
            "throttles": result.throttles if result else collector.throttles,
            "throttled": dict(sorted(collector.throttled.items())),
        },
    }


def render_json(report: Json) -> str:
    """The report as text: indented, non-ASCII kept as is, one trailing newline."""
    return json.dumps(report, indent=INDENT, ensure_ascii=False) + "\n"


def report_chunks(
    facts: RunFacts, collector: ReportCollector, groups: Sequence[OutputGroup]
) -> Iterator[str]:
    """`render_json(build_report(facts, collector, groups))` in pieces, the results one
    at a time: only one result's dictionary and text exist at once."""
    result = collector.result
    document = _document(facts, collector, groups, _STREAMED)
    separator = "{\n"
    for key, value in document.items():
        yield f"{separator}{_pad(1)}{_dumps(key, 1)}: "
        separator = ",\n"
        if value is _STREAMED:
            yield from _list_chunks(_result(r) for r in (result.results if result else ()))
        else:
            yield _dumps(value, 1)
    yield "\n}\n"


def _list_chunks(items: Iterator[Json]) -> Iterator[str]:
    """A list one level into the document, as `json.dumps(..., indent=INDENT)` lays it."""
    opening = "[\n"
    for item in items:
        yield f"{opening}{_pad(2)}{_dumps(item, 2)}"
        opening = ",\n"
    yield "[]" if opening == "[\n" else f"\n{_pad(1)}]"


def _pad(depth: int) -> str:
    return " " * (INDENT * depth)


def _dumps(value: object, depth: int) -> str:
    """`value` as `json.dumps` lays it out `depth` levels into the document: its newlines
    are the layout's (a string's own newlines are always escaped as `\\n`), so each
    line moves right by `depth` levels."""
    return json.dumps(value, indent=INDENT, ensure_ascii=False).replace("\n", "\n" + _pad(depth))
