"""`orchestrator retry RUN [--only …]`: run a finished run's plan again where it did not succeed.

The instances: the parent's results with the outcomes `--only` names (default failed,
undelivered and not_sent), in the parent's order, and with `not_sent` also the
parent's instances that have no result at all (the run halted before it sent them).
An instance that succeeded is never among them, nor one skipped before dispatch (it
was never the run's to send to). The new run is a child run (`_child`): the parent's
recorded plan on exactly those instances, with the plan's waves as written (a retry of
two instances under `canary: 1, 10%, rest` has two small waves), linked to its parent
in its journal and reports. Nothing to retry: exit 0, no run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

from rich.markup import escape

from orchestrator.cli._child import parent_problem, start_child_run
from orchestrator.cli._exit import ExitCode, make_console
from orchestrator.errors import JournalError
from orchestrator.journal import journal_path, read_journal
from orchestrator.rollout import Outcome

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from orchestrator.journal import JournalRecord

RETRYABLE: Final = (Outcome.FAILED, Outcome.UNDELIVERED, Outcome.NOT_SENT, Outcome.STOPPED)
DEFAULT_ONLY: Final = (Outcome.FAILED, Outcome.UNDELIVERED, Outcome.NOT_SENT)


def parse_only(text: str) -> tuple[Outcome, ...]:
    """`failed,stopped` → the outcomes, in `RETRYABLE`'s order; ValueError naming the
    flag and the accepted words for anything else."""
    words = [word.strip() for word in text.split(",") if word.strip()]
    accepted = [outcome.value for outcome in RETRYABLE]
    unknown = [word for word in words if word not in accepted]
    if unknown or not words:
        shown = ", ".join(unknown) if unknown else "nothing"
        raise ValueError(f"--only {shown}: give one or more of {', '.join(accepted)}")
    return tuple(outcome for outcome in RETRYABLE if outcome.value in words)


def retry_instances(parent: JournalRecord, only: Sequence[Outcome]) -> tuple[str, ...]:
    """The parent's instances whose outcome is one of `only`, in the parent's order;
    with NOT_SENT also those without a result."""
    wanted = set(only)
    chosen = []
    for instance in parent.header.instances:
        result = parent.results.get(instance.instance_id)
        outcome = Outcome.NOT_SENT if result is None else result.outcome
        if outcome in wanted:
            chosen.append(instance.instance_id)
    return tuple(chosen)


def retry(args: argparse.Namespace) -> int:
    """Start a new run of RUN's plan on its instances with the `--only` outcomes."""
    console, errors = make_console(), make_console(stderr=True)
    try:
        only = parse_only(args.only) if args.only is not None else DEFAULT_ONLY
        parent = read_journal(journal_path(Path(args.state_dir), args.run))
    except (ValueError, JournalError) as exc:
        errors.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return ExitCode.USAGE
    problem = parent_problem(args, parent, "retry")
    if problem:
        errors.print(f"[bold red]error:[/] {escape(problem)}", soft_wrap=True)
        return ExitCode.USAGE
    ids = retry_instances(parent, only)
    words = ", ".join(outcome.value for outcome in only)
    run_id = parent.header.run_id
    if not ids:
        console.print(f"run {run_id} has no {words} instances: nothing to retry")
        return ExitCode.OK
    console.print(f"retry of {run_id} ({words}: {len(ids)} instances)")
    return start_child_run(
        args, parent, "retry", ids, only=tuple(outcome.value for outcome in only)
    )
