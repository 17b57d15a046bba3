"""Exit codes, and the one place that turns an error into a message and a code.

Documented in docs/errors-and-exit-codes.md; CI pipelines branch on these numbers, so
they never change meaning.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import anyio
from rich.console import Console
from rich.markup import escape

from orchestrator import errors
from orchestrator.journal import RunLocked
from orchestrator.sim import FleetError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


class ExitCode(enum.IntEnum):
    """What the process tells its caller."""

    OK = 0  # everything targeted succeeded
    FAILED = 1  # it ran, and some instances failed
    USAGE = 2  # bad plan, bad fleet file, bad arguments: nothing was called
    HALTED = 3  # a wave gate was breached and the rollout stopped
    API_ERROR = 4  # the API refused a call, or the endpoint could not be reached
    AUTH = 5  # no usable credentials, or the endpoint refused them
    QUOTA = 6  # an account quota would be or was exceeded
    LOCKED = 7  # the run is in use by another process, or its plan by another live run
    INTERRUPTED = 130  # Ctrl-C


def exit_code_for(error: errors.OrchestratorError) -> ExitCode:
    """The exit code for an error that ends a command."""
    match error:
        case errors.TrackingAbandoned(cause=cause):
            return exit_code_for(cause)  # auth revoked mid-run is 5, an outage 4
        case errors.PlanError() | errors.JournalError() | errors.UsageError():
            return ExitCode.USAGE
        case RunLocked() | errors.ConcurrentRun():
            return ExitCode.LOCKED
        case errors.CredentialsError() | errors.AuthError():
            return ExitCode.AUTH
        case errors.QuotaExceeded() | errors.QuotaTooSmall():
            return ExitCode.QUOTA
        case _:
            return ExitCode.API_ERROR


def make_console(*, stderr: bool = False) -> Console:
    """A console for command output (or errors); a log file or CI gets 120 columns,
    not rich's 80."""
    console = Console(highlight=False, stderr=stderr)
    if not console.is_terminal:
        console = Console(highlight=False, stderr=stderr, width=120)
    return console


def plain_console(*, stderr: bool = False) -> Console:
    """A console that never draws a live display, whatever the stream is, 120 columns."""
    return Console(highlight=False, stderr=stderr, force_terminal=False, width=120)


def run_async(main: Callable[[], Awaitable[int]]) -> int:
    """Run an async command; turn the errors it ends with into a message on stderr and
    an exit code."""
    console = make_console(stderr=True)
    try:
        return anyio.run(main)
    except errors.OrchestratorError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return exit_code_for(exc)
    except FleetError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return ExitCode.INTERRUPTED
