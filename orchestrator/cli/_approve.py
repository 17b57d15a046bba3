"""Approvals on the command line: who may let a gated run go on, and `orchestrator approve`.

`run` builds its approver here: the waves approved up front (`--approve WAVE`,
`--approve-all`), raced against the marker file that `orchestrator approve RUN WAVE`
writes from another shell, and, when a person sits at a terminal, against a prompt
(`Approve wave X? [y/N]`). The first answer wins and the others are cancelled. The
prompt waits for stdin to become readable on the event loop, so losing the race leaves
no thread blocked on a read that would keep the process alive.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from rich.markup import escape

from orchestrator.cli._exit import ExitCode, make_console
from orchestrator.cli._recorded import waves_that_wait
from orchestrator.errors import JournalError
from orchestrator.journal import journal_path, read_journal
from orchestrator.rollout import FileApprover, FirstOf, PreApproved, marker_path, write_marker

if TYPE_CHECKING:
    import argparse
    from typing import TextIO

    from rich.console import Console

    from orchestrator.clock import Clock
    from orchestrator.journal import JournalRecord
    from orchestrator.rollout import Approver


class PromptApprover:
    """Asks the person at the terminal; anything but y/yes refuses."""

    def __init__(self, console: Console, stdin: TextIO | None = None) -> None:
        self._console = console
        self._stdin = stdin if stdin is not None else sys.stdin

    async def wait(self, run_id: str, wave: str) -> bool:
        del run_id
        self._console.print(f"Approve wave {escape(wave)}? {escape('[y/N]')} ", end="")
        try:
            # On a terminal the line discipline makes stdin readable only once a whole
            # line was typed, so the read below does not block the loop.
            await anyio.wait_readable(self._stdin)
            line = self._stdin.readline()
        except NotImplementedError:  # an event loop that cannot watch stdin (Windows)
            line = await anyio.to_thread.run_sync(self._stdin.readline, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            self._console.print()  # another approver answered: end the prompt's line
            raise
        if not line:  # end of input: nobody can answer here any more
            await anyio.sleep_forever()
        return line.strip().lower() in {"y", "yes"}

    def describe(self, run_id: str, wave: str) -> str:
        del run_id, wave
        return "answer the prompt"


def build_approver(args: argparse.Namespace, clock: Clock, console: Console) -> Approver:
    """The run's approver: flags, the approve command's marker, and a prompt on a TTY."""
    approvers: list[Approver] = []
    if args.approve_all or args.approve:
        approvers.append(PreApproved(args.approve, every=args.approve_all))
    approvers.append(FileApprover(clock, Path(args.state_dir)))
    if sys.stdin.isatty() and console.is_terminal:
        approvers.append(PromptApprover(console))
    return FirstOf(*approvers)


def approve(args: argparse.Namespace) -> int:
    """`orchestrator approve RUN WAVE`: let a waiting run go on (or, with --deny, halt).

    Refused (exit 2) unless RUN's journal is here and WAVE is one of its waves that can
    wait for an approval: a mistyped wave would otherwise write a marker nobody reads.
    """
    console, errors = make_console(), make_console(stderr=True)
    state_dir = Path(args.state_dir)
    try:
        marker_path(state_dir, args.run, args.wave)  # plain names only, before any read
    except ValueError as exc:
        return _refuse(errors, str(exc))
    not_waiting = (
        f"run {args.run} is not waiting for an approval under {args.state_dir} "
        "(a mistyped run id, or the run used another --state-dir)"
    )
    try:
        record = read_journal(journal_path(state_dir, args.run))
    except JournalError as exc:
        return _refuse(errors, f"{not_waiting}: {exc}")
    waiting = waves_that_wait(record)
    if args.wave not in waiting:
        return _refuse(errors, _no_such_gate(record, args.wave, waiting))
    if record.state == "finished":
        return _refuse(errors, f"run {args.run} is finished: no wave of it waits any more")
    try:
        path = write_marker(state_dir, args.run, args.wave, deny=args.deny, create=False)
    except FileNotFoundError:
        return _refuse(errors, f"{not_waiting}: it has not asked for one yet")
    verb = "refused" if args.deny else "approved"
    console.print(f"wave {escape(args.wave)} of run {escape(args.run)}: {verb} ({path})")
    return ExitCode.OK


def _no_such_gate(record: JournalRecord, wave: str, waiting: dict[str, str]) -> str:
    run_id = record.header.run_id
    known = {row.name for row in record.header.waves}
    what = (
        f"wave {wave} of run {run_id} asks no approval"
        if wave in known
        else f"run {run_id} has no wave {wave}"
    )
    if not waiting:
        return f"{what}; none of its waves waits for an approval"
    listed = ", ".join(f"{name} ({why})" for name, why in waiting.items())
    return f"{what}; the waves that wait for one: {listed}"


def _refuse(errors: Console, message: str) -> int:
    errors.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return ExitCode.USAGE
