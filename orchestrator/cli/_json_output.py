"""`--json`: what a person reads as a table, as one versioned document for scripts.

Each command has one shape (docs/json-output.md), named by its `schema` field
(`orchestrator.runs/1`, ...); within a version fields are only ever added, as in
report.json. The document is the only thing on stdout, written once, at the end;
warnings and errors stay on stderr and the exit code means what it means without
`--json`. Times are ISO 8601 in UTC with milliseconds and a `Z`, outcomes their
lowercase names. This module holds those rules and the documents of `runs`, `status`,
`plan` and `validate`, and the parts `show` builds its own from (`_show`); `instances`
builds its own (`_instances`).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from orchestrator.errors import Problem  # noqa: TC001 - a dataclass field type
from orchestrator.journal import list_runs, lock_holder
from orchestrator.rollout import BatchState, Outcome

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable, Mapping
    from pathlib import Path

    from orchestrator.cli._preview import Preview, WavePreview
    from orchestrator.journal import GateRow, JournalRecord, RunOrigin, WaveState
    from orchestrator.rollout import InstanceResult

Document = dict[str, Any]

SCHEMA_VERSION: Final = 1
SCHEMAS: Final = {
    name: f"orchestrator.{name}/{SCHEMA_VERSION}"
    for name in ("runs", "status", "show-run", "show-instance", "instances", "plan", "validate")
}


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document on stdout instead of the tables (docs/json-output.md)",
    )


def emit(document: Document) -> None:
    """The document, and nothing else, on stdout. ASCII only: a lone surrogate in an
    instance's output (a JSON escape in an API answer can make one) stays printable."""
    sys.stdout.write(json.dumps(document, indent=2) + "\n")
    sys.stdout.flush()


def iso(moment: datetime | None) -> str | None:
    """`2026-11-23T13:07:33.120Z`, as report.json writes times; None stays None."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the API's naive times are UTC
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def counts(by_outcome: Mapping[Outcome, int]) -> dict[str, int]:
    """Every outcome, in its documented order, with its count (0 included)."""
    return {outcome.value: by_outcome.get(outcome, 0) for outcome in Outcome}


# --- runs, status, show: from the journal ------------------------------------------


def runs_document(state_dir: Path) -> Document:
    """`runs --json`: each run, newest first, with whether a live process holds it."""
    listed = [(run, lock_holder(run.path.parent) is not None) for run in list_runs(state_dir)]
    return {
        "schema": SCHEMAS["runs"],
        "state_dir": str(state_dir),
        "runs": [
            {
                "run_id": run.run_id,
                "plan": run.plan_name,
                "state": run.state,
                "alive": alive,
                "waiting_for": run.waiting_for,
                "halt_reason": run.halt_reason or None,
                "exit_code": run.exit_code,
                "started_at": iso(run.created_at),
                "updated_at": iso(run.updated_at),
                "instances": run.instances,
                "counts": counts(run.counts),
                "kind": run.kind,
                "parent": run.parent,
                "error": run.error or None,
            }
            for run, alive in listed
        ],
    }


def run_fields(record: JournalRecord, *, alive: bool, state_text: str) -> Document:
    """What `status --json` and `show --json` say of the run itself."""
    header, halt = record.header, record.halt
    return {
        "run_id": header.run_id,
        "plan": header.plan_name,
        "plan_path": header.plan_path,
        "plan_sha256": header.plan_sha256,
        "state": record.state,
        "alive": alive,
        "state_text": state_text,
        "waiting_for": record.waiting_for,
        "exit_code": record.exit_code,
        "started_at": iso(header.created_at),
        "updated_at": iso(record.updated_at),
        "finished_at": iso(record.finished_at),
        "halt": None
        if halt is None
        else {
            "reason": halt.reason,
            "code": halt.code or None,
            "message": halt.message or None,
            "wave": halt.wave or None,
            "text": record.halt_text,
        },
        "instances": len(header.instances),
        "skipped": len(header.skipped),
        "counts": counts(record.counts()),
        "origin": origin_fields(header.origin),
    }


def origin_fields(origin: RunOrigin) -> Document:
    """How the run came to be; of its `--param` overrides, the names only, never a value."""
    return {
        "kind": origin.kind,
        "parent": origin.parent,
        "only": list(origin.only),
        "limit": list(origin.limit),
        "params": sorted(origin.params),
    }


def status_document(
    record: JournalRecord, run_dir: Path, state_text: str, in_flight: Iterable[int]
) -> Document:
    """`status --json`: the run, its waves (with how many of each are in flight: one
    wave index in `in_flight` per instance) and its batches."""
    running = Counter(in_flight)
    alive = lock_holder(run_dir) is not None
    return {
        "schema": SCHEMAS["status"],
        **run_fields(record, alive=alive, state_text=state_text),
        "waves": [wave_fields(wave, running[wave.index]) for wave in record.waves],
        "batches": batch_counts(record),
    }


def wave_fields(wave: WaveState, running: int) -> Document:
    return {
        "index": wave.index,
        "name": wave.name,
        "size": wave.size,
        "batches": wave.batches,
        "state": wave.state,
        "started_at": iso(wave.started_at),
        "finished_at": iso(wave.finished_at),
        "counts": counts(wave.counts),
        "running": running,
    }


def batch_counts(record: JournalRecord) -> dict[str, int]:
    """ClientTokens per state, every state present."""
    found = {state.value: 0 for state in BatchState}
    for row in record.batches:
        found[row.state.value] += 1
    return found


def gate_fields(gate: GateRow) -> Document:
    return {
        "wave": gate.name,
        "wave_index": gate.wave,
        "verdict": gate.verdict.value,
        "errors": gate.errors,
        "threshold": gate.threshold,
        "summary": gate.summary,
        "at": iso(gate.at),
    }


def result_fields(result: InstanceResult) -> Document:
    """An instance's result as the journal holds it (its output bounded: head and tail)."""
    return {
        "outcome": result.outcome.value,
        "status": result.status or None,
        "exit_code": result.exit_code,
        "error_code": result.error_code or None,
        "error_info": result.error_info or None,
        "start_time": iso(result.start_time),
        "finish_time": iso(result.finish_time),
        "invoke_id": result.invoke_id or None,
        "output": result.output,
        "output_dropped": result.output_dropped,
    }


# --- plan (the dry run) and validate: before a run --------------------------------


def plan_document(preview: Preview, *, endpoint: str, region: str) -> Document:
    """`plan --json`: the numbers the dry run's table shows, from the same `Preview`."""
    resolution = preview.resolution
    return {
        "schema": SCHEMAS["plan"],
        "plan": preview.plan_name,
        "endpoint": endpoint,
        "region": region,
        "order": preview.order,
        "on_breach": preview.on_breach,
        "count_undelivered": preview.count_undelivered,
        "targets": {
            "selected": resolution.selected,
            "runnable": len(resolution.runnable),
            "runnable_ids": [i.instance_id for i in resolution.runnable],
            "skipped": [
                {
                    "instance_id": s.instance_id,
                    "reason": s.reason.value,
                    "detail": s.detail,
                    "zone_id": s.zone_id or None,
                }
                for s in resolution.skipped
            ],
            "excluded": list(resolution.excluded),
        },
        "waves": [_preview_wave(wave) for wave in preview.waves],
        "api_calls": {
            "run_command": preview.run_commands,
            "instances_per_call_max": preview.batch_size,
            "describe_invocation_results_min": preview.run_commands,
        },
        "quota": {
            "invocations": preview.invocations,
            "verify_invocations": preview.verify_invocations,
            "invocations_daily_limit": _quota(preview.invocation_quota),
            "kept_commands": preview.kept_commands,
            "commands_limit": _quota(preview.command_quota),
        },
        "time": {
            "dispatch_s_min": round(preview.dispatch_seconds, 3),
            "run_command_per_s": preview.run_command_rate,
            "command_timeout_s": preview.command_timeout,
            "at_once": preview.at_once,
        },
        "small_canary": preview.small_canary,
    }


def _preview_wave(wave: WavePreview) -> Document:
    return {
        "index": wave.index,
        "name": wave.name,
        "size": wave.size,
        "batches": wave.batches,
        "at_once": wave.at_once,
        "max_errors": wave.max_errors,
        "threshold": wave.threshold,
        "threshold_text": wave.threshold_text,
        "then": {"verify": wave.verify, "pause_s": wave.pause, "approval": wave.approval},
        "zones": list(wave.zones),
        "gate_reach": wave.reach or None,
    }


def _quota(value: str | None) -> int | None:
    """An account attribute as a number; None when the account did not say."""
    return int(value) if value is not None and value.isdigit() else None


@dataclass(frozen=True, slots=True)
class CheckedFile:
    """One plan file `validate` checked: its plan's name and waves, or its problems."""

    file: str
    plan: str | None = None
    waves: int | None = None
    problems: tuple[Problem, ...] = ()


def validate_document(files: Iterable[CheckedFile]) -> Document:
    """`validate --json`: every file, ok or with its problems."""
    listed = [
        {
            "file": checked.file,
            "ok": not checked.problems,
            "plan": checked.plan,
            "waves": checked.waves,
            "problems": [problem_fields(p) for p in checked.problems],
        }
        for checked in files
    ]
    return {
        "schema": SCHEMAS["validate"],
        "ok": all(entry["ok"] for entry in listed),
        "files": listed,
    }


def problem_fields(problem: Problem) -> Document:
    return {
        "file": problem.file,
        "line": problem.line or None,
        "column": problem.column or None,
        "field": problem.field or None,
        "message": problem.message,
        "code": problem.code or None,
    }
