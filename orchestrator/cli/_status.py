"""`orchestrator status` and `runs`: where runs stand, read from their journals.

Both only read (`read_journal` is read-only and never waits for a writer), so they work
from any shell while a run goes on. `state_text` words a run's state as a person needs it:
running (and waiting for which approval, with the command that gives it), finished,
halted, or interrupted with the command that continues it; `show` words it the same.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Final

from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from orchestrator.cli._execute import not_resumable, recorded_stop
from orchestrator.cli._exit import ExitCode, make_console
from orchestrator.cli._json_output import emit, runs_document, status_document
from orchestrator.cli._overrides import origin_lines
from orchestrator.errors import JournalError
from orchestrator.journal import journal_path, list_runs, lock_holder, read_journal
from orchestrator.rollout import DEFAULT_STATE_DIR, BatchState, Outcome

if TYPE_CHECKING:
    import argparse

    from rich.console import Console

    from orchestrator.journal import JournalRecord, RunHeader, RunListing

RUNS_COLUMNS: Final = ("run", "plan", "started", "state", "instances", "results", "exit")
RESULTS_WIDTH: Final = 26  # "1234 succeeded, 56 failed,"


def read_record(args: argparse.Namespace, errors: Console) -> JournalRecord | None:
    try:
        return read_journal(journal_path(Path(args.state_dir), args.run))
    except JournalError as exc:
        errors.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return None


def status(args: argparse.Namespace) -> int:
    """What a run is doing (or did), from its journal; read-only."""
    console, errors = make_console(), make_console(stderr=True)
    if args.run is None:
        listed = list_runs(Path(args.state_dir))
        if not listed:
            errors.print(f"[bold red]error:[/] no runs under {escape(args.state_dir)}")
            return ExitCode.USAGE
        args.run = listed[0].run_id
    record = read_record(args, errors)
    if record is None:
        return ExitCode.USAGE
    header = record.header
    run_dir = Path(args.state_dir) / "runs" / header.run_id
    state = state_text(record, run_dir, Path(args.state_dir))
    running_now = in_flight(record)
    if args.json:
        emit(status_document(record, run_dir, state, [wave for _, wave in running_now]))
        return ExitCode.OK
    console.print(f"run {header.run_id}: {plan_words(header)}")
    for line in origin_lines(header):
        console.print(escape(line), soft_wrap=True)
    console.print(f"state: {escape(state)}", soft_wrap=True)
    console.print(
        f"started {header.created_at:%Y-%m-%d %H:%M:%S}Z, last written "
        f"{record.updated_at:%Y-%m-%d %H:%M:%S}Z"
    )
    table = Table(title="Waves", title_justify="left")
    for column in ("wave", "size", "state", *(o.value for o in Outcome), "running"):
        table.add_column(column, justify="left" if column in {"wave", "state"} else "right")
    for wave in record.waves:
        counts = wave.counts
        running = sum(1 for _, w in running_now if w == wave.index)
        table.add_row(
            wave.name,
            str(wave.size),
            wave.state,
            *(str(counts.get(o, 0)) for o in Outcome),
            str(running),
        )
    console.print(table)
    states = Counter(row.state.value for row in record.batches)
    console.print(
        "batches: " + (", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "none sent")
    )
    if record.halt is not None:
        console.print(f"halted ({record.halt.reason}): {escape(record.halt_text)}")
    return ExitCode.OK


def plan_words(header: RunHeader) -> str:
    """`plan NAME (PATH)`, or for an ad-hoc run, whose plan has no file, what it was."""
    if header.origin.kind == "exec":
        return f"plan {header.plan_name} (ad hoc: orchestrator exec)"
    return f"plan {header.plan_name} ({header.plan_path})"


def in_flight(record: JournalRecord) -> list[tuple[str, int]]:
    """(instance, wave) sent in an accepted or unanswered run batch, with no result."""
    found = []
    for row in record.batches:
        if row.purpose != "run" or row.state not in {BatchState.ACCEPTED, BatchState.SENDING}:
            continue
        found += [(i, row.wave) for i in row.instance_ids if i not in record.results]
    return found


def state_text(record: JournalRecord, run_dir: Path, state_dir: Path | None = None) -> str:
    run_id = record.header.run_id
    holder = lock_holder(run_dir)
    if holder is not None:
        running = f"running (pid {holder.pid} on {holder.host})"
        if record.waiting_for is None:
            return running
        return (
            f"{running}, waiting for the approval of wave {record.waiting_for}: "
            f"`{approve_command(run_id, record.waiting_for, state_dir)}` gives it"
        )
    if record.state == "finished":
        code = f", exit {record.exit_code}" if record.exit_code is not None else ""
        if record.halt is not None:
            return f"halted ({record.halt.reason}){code}"
        return f"finished{code}"
    how = "interrupted" if record.state == "interrupted" else "its process is gone"
    if record.header.target.get("sim") is not None:
        return f"{how}: {not_resumable(run_id)}"
    if recorded_stop(run_dir) is not None:
        return f"{how}, a stop was asked: `orchestrator resume {record.header.run_id}` stops it"
    return f"{how}: continue it with `orchestrator resume {record.header.run_id}`"


def runs(args: argparse.Namespace) -> int:
    """Every run under the state dir, newest first."""
    console = make_console()
    if args.json:
        emit(runs_document(Path(args.state_dir)))
        return ExitCode.OK
    listed = list_runs(Path(args.state_dir))
    if not listed:
        console.print(f"no runs under {escape(args.state_dir)}")
        return ExitCode.OK
    rows = [
        (
            run.run_id,
            run.plan_name,
            f"{run.created_at:%Y-%m-%d %H:%M}" if run.created_at else "",
            _listed_state(
                run, alive=lock_holder(Path(args.state_dir) / "runs" / run.run_id) is not None
            ),
            str(run.instances),
            ", ".join(f"{n} {o.value}" for o, n in run.counts.items() if n),
            "" if run.exit_code is None else str(run.exit_code),
        )
        for run in listed
    ]
    table = Table()
    # A person copies run ids from here, and scripts grep a state: no column is ever cut
    # or wrapped (each is as wide as its widest cell) but the results, which wrap, at
    # RESULTS_WIDTH at the narrowest: a count and its outcome stay on one line.
    for position, column in enumerate(RUNS_COLUMNS):
        whole = column != "results"
        widest = max(len(column), *(len(row[position]) for row in rows))
        table.add_column(
            column,
            justify="right" if column in {"instances", "exit"} else "left",
            no_wrap=whole,
            min_width=widest if whole else min(widest, RESULTS_WIDTH),
        )
    for row in rows:
        table.add_row(*row)
    # Wider than the console rather than cut.
    needed = Measurement.get(console, console.options.update_width(10**6), table).minimum
    console.width = max(console.width, needed)  # print(width=) is capped at the console's
    console.print(table)
    return ExitCode.OK


def _listed_state(run: RunListing, *, alive: bool) -> str:
    of = "" if run.parent is None else f"; {run.kind} of {run.parent}"
    return _listed_progress(run, alive=alive) + of


def _listed_progress(run: RunListing, *, alive: bool) -> str:
    if alive:
        return f"waiting for approval of {run.waiting_for}" if run.waiting_for else "running"
    if run.state == "finished" and run.halt_reason:
        return f"halted ({run.halt_reason})"
    return run.state


def approve_command(run_id: str, wave: str, state_dir: Path | None) -> str:
    """The command that approves `wave` of `run_id` (its --state-dir when not the default)."""
    where = (
        f" --state-dir {state_dir}"
        if state_dir is not None and state_dir != DEFAULT_STATE_DIR
        else ""
    )
    return f"orchestrator approve {run_id} {wave}{where}"
