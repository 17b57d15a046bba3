"""`orchestrator show RUN [INSTANCE]`: everything the journal knows, read-only.

Without an instance: the run (its state as `status` words it, and a halt with why),
its waves in order with their times and outcomes, and every gate decision. With one:
that instance's wave, outcome, codes, times, InvokeId, verify result, the bounded output
the journal keeps (head and tail) and, when the run kept them (`--output-dir`, recorded
in the journal's target as `output_dir`), the path of its whole output. An instance
skipped before dispatch is shown with why; one the run never had exits 2.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from rich.markup import escape
from rich.table import Table

from orchestrator.cli._exit import ExitCode, make_console
from orchestrator.cli._json_output import (
    SCHEMAS,
    Document,
    emit,
    gate_fields,
    result_fields,
    run_fields,
    wave_fields,
)
from orchestrator.cli._recorded import recorded_plan
from orchestrator.cli._status import in_flight, plan_words, state_text
from orchestrator.errors import JournalError, PlanError
from orchestrator.journal import journal_path, lock_holder, read_journal
from orchestrator.report import OutputFiles
from orchestrator.rollout import BatchState, Outcome, order_for, shape_waves

if TYPE_CHECKING:
    import argparse
    from datetime import datetime

    from rich.console import Console

    from orchestrator.journal import JournalRecord
    from orchestrator.rollout import InstanceResult
    from orchestrator.targets import Skipped

# Where an instance stands: `result` (the journal has its outcome), `sent` (in a batch
# that went out, no result yet), `pending` (runnable, not sent yet), `skipped` (left out
# before dispatch: see `skipped`).
PHASES: Final = ("result", "sent", "pending", "skipped")


@dataclass(frozen=True, slots=True)
class InstanceDetail:
    """One instance of a run, as its journal knows it."""

    run_id: str
    instance_id: str
    phase: str  # one of PHASES
    wave: str | None
    zone_id: str | None
    invoke_id: str | None
    result: InstanceResult | None
    skipped: Skipped | None
    output_file: Path | None  # where --output-dir kept its whole output, if it did


def show(args: argparse.Namespace) -> int:
    """Show a run, or one instance of it."""
    console, errors = make_console(), make_console(stderr=True)
    state_dir = Path(args.state_dir)
    try:
        record = read_journal(journal_path(state_dir, args.run))
    except JournalError as exc:
        errors.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return ExitCode.USAGE
    run_dir = state_dir / "runs" / record.header.run_id
    if args.instance is None:
        state = state_text(record, run_dir, state_dir)
        if args.json:
            emit(run_document(record, run_dir, state))
        else:
            _print_run(console, record, state)
        return ExitCode.OK
    detail = instance_detail(record, args.instance)
    if detail is None:
        header = record.header
        errors.print(
            f"[bold red]error:[/] run {header.run_id} has no instance {escape(args.instance)}: "
            f"it has {len(header.instances)} instances to run and {len(header.skipped)} "
            "skipped before dispatch (`orchestrator show RUN` lists its waves)",
            soft_wrap=True,
        )
        return ExitCode.USAGE
    if args.json:
        emit(instance_document(detail))
    else:
        _print_instance(console, detail)
    return ExitCode.OK


def instance_detail(record: JournalRecord, instance_id: str) -> InstanceDetail | None:
    """What the journal knows of `instance_id`; None when the run never had it."""
    header = record.header
    skipped = next((s for s in header.skipped if s.instance_id == instance_id), None)
    instance = next((i for i in header.instances if i.instance_id == instance_id), None)
    if instance is None and skipped is None:
        return None
    result = record.results.get(instance_id)
    sent = next(
        (
            row
            # The last attempt (a split's half), answered or not: an unanswered one may
            # have run, and a resume follows or re-sends it.
            for row in reversed(record.batches)
            if row.purpose == "run"
            and row.state in {BatchState.ACCEPTED, BatchState.SENDING}
            and instance_id in row.instance_ids
        ),
        None,
    )
    names = {wave.index: wave.name for wave in record.waves}
    if result is not None:
        phase, wave = "result", result.wave or None
    elif skipped is not None:
        phase, wave = "skipped", None
    elif sent is not None:
        phase, wave = "sent", names.get(sent.wave)
    else:
        phase, wave = "pending", _planned_wave(record, instance_id)
    invoke_id = (result.invoke_id if result is not None else "") or (sent.invoke_id if sent else "")
    kept = header.target.get("output_dir")
    return InstanceDetail(
        run_id=header.run_id,
        instance_id=instance_id,
        phase=phase,
        wave=wave,
        zone_id=(instance.zone_id if instance is not None else skipped and skipped.zone_id) or None,
        invoke_id=invoke_id or None,
        result=result,
        skipped=skipped,
        output_file=None
        if kept is None or wave is None or result is None
        else OutputFiles(Path(kept)).path_for(wave, instance_id),
    )


def _planned_wave(record: JournalRecord, instance_id: str) -> str | None:
    """The wave a not yet sent instance is in, cut again from the recorded plan (as a
    resume cuts it); None if this version no longer reads that plan."""
    try:
        plan = recorded_plan(record.header)
        shaped = shape_waves(plan, record.header.instances, order_for(plan.order))
    except (PlanError, ValueError):
        return None
    return next(
        (
            w.plan.name
            for w in shaped
            if any(i.instance_id == instance_id for i in w.plan.instances)
        ),
        None,
    )


# --- JSON ---------------------------------------------------------------------------


def run_document(record: JournalRecord, run_dir: Path, state_text: str) -> Document:
    """`show RUN --json`: the run, its waves and its gate decisions."""
    running = Counter(wave for _, wave in in_flight(record))
    return {
        "schema": SCHEMAS["show-run"],
        **run_fields(record, alive=lock_holder(run_dir) is not None, state_text=state_text),
        "waves": [wave_fields(wave, running[wave.index]) for wave in record.waves],
        "gates": [gate_fields(gate) for gate in record.gates],
    }


def instance_document(detail: InstanceDetail) -> Document:
    """`show RUN INSTANCE --json`: one instance; fields it has no value for are null."""
    result, skipped, kept = detail.result, detail.skipped, detail.output_file
    fields = result_fields(result) if result is not None else dict.fromkeys(_RESULT_KEYS)
    fields["invoke_id"] = detail.invoke_id
    return {
        "schema": SCHEMAS["show-instance"],
        "run_id": detail.run_id,
        "instance_id": detail.instance_id,
        "phase": detail.phase,
        "wave": detail.wave,
        "zone_id": detail.zone_id,
        **fields,
        "output_file": None if kept is None else str(kept),
        "output_file_exists": kept is not None and kept.is_file(),
        "verify": None if result is None or result.verify is None else result_fields(result.verify),
        "skipped": None
        if skipped is None
        else {"reason": skipped.reason.value, "detail": skipped.detail},
    }


# The fields of `result_fields`, null for an instance with no result yet.
_RESULT_KEYS: Final = (
    "outcome",
    "status",
    "exit_code",
    "error_code",
    "error_info",
    "start_time",
    "finish_time",
    "invoke_id",
    "output",
    "output_dropped",
)


# --- for people ---------------------------------------------------------------------


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S}Z"


def _clock(moment: datetime | None) -> str:
    """The time of day only: a table of waves stays narrow (the run's line has the date)."""
    return "-" if moment is None else f"{moment:%H:%M:%S}Z"


def _print_run(console: Console, record: JournalRecord, state: str) -> None:
    header = record.header
    console.print(f"run {header.run_id}: {plan_words(header)}")
    console.print(f"state: {escape(state)}", soft_wrap=True)
    console.print(
        f"started {_when(header.created_at)}, "
        + (
            f"finished {_when(record.finished_at)}"
            if record.finished_at is not None
            else f"last written {_when(record.updated_at)}"
        )
    )
    console.print(
        f"instances: {len(header.instances)} to run, {len(header.skipped)} skipped before dispatch"
    )
    table = Table(title="Waves", title_justify="left")
    outcomes = [o.value for o in Outcome]
    for column in ("wave", "size", "state", "started", "finished", *outcomes):
        left = column in {"wave", "state", "started", "finished"}
        table.add_column(column, justify="left" if left else "right")
    for wave in record.waves:
        table.add_row(
            wave.name,
            str(wave.size),
            wave.state,
            _clock(wave.started_at),
            _clock(wave.finished_at),
            *(str(wave.counts.get(o, 0)) for o in Outcome),
        )
    console.print(table)
    if record.gates:
        console.print("gates:")
    for gate in record.gates:
        console.print(f"  {_when(gate.at)}  {gate.verdict.value}: {escape(gate.summary)}")
    if record.halt is not None:
        console.print(f"halted ({record.halt.reason}): {escape(record.halt_text)}")


def _print_instance(console: Console, detail: InstanceDetail) -> None:
    console.print(f"instance {detail.instance_id} of run {detail.run_id}")
    if detail.skipped is not None:
        skipped = detail.skipped
        console.print(
            f"skipped before dispatch: {skipped.reason.value}: {escape(skipped.detail)}",
            soft_wrap=True,
        )
        return
    console.print(f"wave: {escape(detail.wave or '-')}, zone {detail.zone_id or '-'}")
    result = detail.result
    if result is None:
        invocation = f"invocation {detail.invoke_id}" if detail.invoke_id else "no answer yet"
        what = f"sent ({invocation}), no result yet" if detail.phase == "sent" else "not sent yet"
        console.print(f"outcome: none yet: {what}")
        return
    _print_result(console, result, "outcome")
    if result.verify is not None:
        _print_result(console, result.verify, "verify")
    dropped = f"; {result.output_dropped} bytes left out" if result.output_dropped else ""
    console.print(f"output (as the journal keeps it: head and tail{dropped}):")
    console.print(escape(result.output.rstrip("\n")) or "[dim](none)[/]", soft_wrap=True)
    kept = detail.output_file
    if kept is not None:
        there = "" if kept.is_file() else " [yellow](no file there)[/]"
        console.print(f"whole output: {escape(str(kept))}{there}", soft_wrap=True)


def _print_result(console: Console, result: InstanceResult, label: str) -> None:
    facts = [f"status {result.status}"] if result.status else []
    facts += [f"exit {result.exit_code}"] if result.exit_code is not None else []
    console.print(f"{label}: {result.outcome.value}" + (f" ({', '.join(facts)})" if facts else ""))
    if result.error_code or result.error_info:
        text = ": ".join(p for p in (result.error_code, result.error_info) if p)
        console.print(f"  error: {escape(text)}", soft_wrap=True)
    console.print(f"  started {_when(result.start_time)}, finished {_when(result.finish_time)}")
    if result.invoke_id:
        console.print(f"  invocation {result.invoke_id}")
