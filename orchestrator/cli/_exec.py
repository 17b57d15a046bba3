"""`orchestrator exec [SELECTORS] [LIMITS] -- SCRIPT`: one command, no plan file.

The flags become a plan's text (`orchestrator.plan.build_adhoc_plan`), checked by every
rule `validate` applies, its problems pointed at the flags (exit 2, nothing sent). The
run then starts as any other, through `_rollout.start_run`: the journal keeps the text
(its plan path is `(exec)`, its origin `exec`), so `status`, `stop` and `resume` work on
it, and the plan lock and the live-run guard apply to its name. `--print-plan` writes
that text and ends, without a call: an ad-hoc run turned into a plan to review.

On a terminal (stdin and stdout both), once the targets are known, the operator is asked
`run RunShellScript on 135 instances in 3 waves (canary 1, w1 14, w2 120)? [y/N]`;
anything but y or yes sends nothing and exits 0: declining is an answer, not a failure
(docs/errors-and-exit-codes.md). `--yes` skips the question; off a terminal (CI, a pipe)
nothing is asked.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from rich.markup import escape

from orchestrator.cli._exit import ExitCode, make_console
from orchestrator.cli._rollout import Start, script_dirs, start_run
from orchestrator.journal import RunOrigin
from orchestrator.plan import ADHOC_PLAN_PATH, AdhocCommand, PlanError, build_adhoc_plan

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from orchestrator.rollout import ShapedWave
    from orchestrator.targets import Resolution

EXEC: Final = RunOrigin(kind="exec")
_SEPARATOR: Final = "--"
_YES: Final = ("y", "yes")


def adhoc_command(args: argparse.Namespace) -> AdhocCommand | str:
    """The plan-shaping flags of `args`; a message when the words after the options do
    not start with `--` (`exec --tag app=web uptime`: a typo must not become a script)."""
    words: list[str] = list(args.script)
    script: str | None = None
    if words:
        if words[0] != _SEPARATOR:
            return f"the script goes after --: exec [OPTIONS] -- {' '.join(words)}"
        script = " ".join(words[1:]) or None
    return AdhocCommand(
        script=script,
        script_file=args.script_file,
        tags=tuple(args.tag),
        instances=tuple(args.instance),
        zones=tuple(args.zone),
        exclude=tuple(args.exclude),
        type=args.type,
        timeout=args.timeout,
        user=args.user,
        working_dir=args.working_dir,
        params=tuple(args.param),
        canary=args.canary,
        waves=args.waves,
        max_errors=args.max_errors,
        max_concurrency=args.max_concurrency,
        name=args.name,
        region=args.region,
    )


def exec_command(args: argparse.Namespace) -> int:
    """Build the ad-hoc plan, then print it (`--print-plan`) or run it."""
    errors = make_console(stderr=True)
    command = adhoc_command(args)
    if isinstance(command, str):
        errors.print(f"[bold red]error:[/] {escape(command)}", soft_wrap=True)
        return ExitCode.USAGE
    try:
        adhoc = build_adhoc_plan(command, base=Path.cwd(), script_dirs=script_dirs(args))
    except PlanError as exc:
        # One problem per line, never wrapped, as `validate` prints a plan's.
        for problem in exc.problems:
            errors.print(escape(str(problem)), soft_wrap=True)
        return ExitCode.USAGE
    if args.print_plan:
        sys.stdout.write(adhoc.text)  # as it is: no markup, no wrapping
        return ExitCode.OK
    ask = _Question(adhoc.plan.command.type) if not args.yes and _on_a_terminal() else None
    start = Start(adhoc.plan, adhoc.text, plan_path=ADHOC_PLAN_PATH, origin=EXEC, confirm=ask)
    code = start_run(args, start)
    # start_run says "nothing was sent" when the seam says no; the operator answered.
    return ExitCode.OK if ask is not None and ask.declined else code


def _on_a_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def question(command_type: str, shaped: Sequence[ShapedWave]) -> str:
    """`run RunShellScript on 135 instances in 3 waves (canary 1, w1 14, w2 120)? [y/N] `."""
    total = sum(wave.plan.size for wave in shaped)
    instances = f"{total} instance{'' if total == 1 else 's'}"
    waves = f"{len(shaped)} wave{'' if len(shaped) == 1 else 's'}"
    sizes = ", ".join(f"{wave.plan.name} {wave.plan.size}" for wave in shaped)
    return f"run {command_type} on {instances} in {waves} ({sizes})? [y/N] "


@dataclass(slots=True)
class _Question:
    """The `confirm` seam on a terminal: ask once the waves are known; remember a no."""

    command_type: str
    declined: bool = False

    def __call__(self, resolution: Resolution, shaped: Sequence[ShapedWave]) -> bool:
        del resolution  # the waves say all the question needs
        try:
            answer = input(question(self.command_type, shaped))
        except EOFError:  # Ctrl-D: no answer is a no
            answer = ""
        self.declined = answer.strip().lower() not in _YES
        return not self.declined
