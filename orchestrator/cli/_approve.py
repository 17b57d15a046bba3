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
from orchestrator.rollout import FileApprover, FirstOf, PreApproved, write_marker

if TYPE_CHECKING:
    import argparse
    from typing import TextIO

    from rich.console import Console

    from orchestrator.clock import Clock
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
    """`orchestrator approve RUN WAVE`: let a waiting run go on (or, with --deny, halt)."""
    console, errors = make_console(), make_console(stderr=True)
    try:
        path = write_marker(Path(args.state_dir), args.run, args.wave, deny=args.deny, create=False)
    except ValueError as exc:
        errors.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return ExitCode.USAGE
    except FileNotFoundError:
        errors.print(
            f"[bold red]error:[/] run {escape(args.run)} is not waiting for an approval under "
            f"{escape(args.state_dir)} (a mistyped run id, or the run used another --state-dir)",
            soft_wrap=True,
        )
        return ExitCode.USAGE
    verb = "refused" if args.deny else "approved"
    console.print(f"wave {escape(args.wave)} of run {escape(args.run)}: {verb} ({path})")
    return ExitCode.OK
