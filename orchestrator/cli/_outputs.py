"""What a run shows while it goes and leaves behind: chosen from the command line.

On a terminal (`--log-format auto`, the default, or `console`): the live display. Off a
terminal (`auto`) or with `--log-format json`: structlog JSON lines on stderr, one per
meaningful event, and never a progress bar. `-q` keeps only warnings and the summary;
`-v` adds a line per batch and per instance. Always: the run's events are collected for
the summary's output groups and the reports; `--report-dir` writes report.json,
junit.xml and summary.md (appended to `$GITHUB_STEP_SUMMARY` when set), `--output-dir`
keeps every instance's whole output as a file. The summary goes to stdout, last.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, Self

from rich.markup import escape

from orchestrator.cli._eventlog import EventLog
from orchestrator.cli._exit import plain_console
from orchestrator.cli._logging import configure_logging
from orchestrator.cli._progress import ProgressDisplay
from orchestrator.cli._summary import print_summary
from orchestrator.clock import clock_info
from orchestrator.report import (
    OutputFiles,
    ReportCollector,
    RunFacts,
    describe_group,
    group_results,
    names_of,
    write_reports,
)

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from types import TracebackType

    from rich.console import Console

    from orchestrator.clock import Clock
    from orchestrator.report import OutputGroup
    from orchestrator.rollout import Event, EventSink, RolloutResult
    from orchestrator.targets import Skipped

GROUPS_SHOWN: Final = 10  # output groups in the terminal summary before "and N more"


@dataclass(frozen=True, slots=True)
class OutputOptions:
    """The output flags of `run` and `resume`."""

    log_format: Literal["auto", "console", "json"] = "auto"
    verbosity: int = 0  # -1 quiet, 0 normal, 1 verbose
    report_dir: Path | None = None
    output_dir: Path | None = None

    @classmethod
    def of(cls, args: argparse.Namespace) -> OutputOptions:
        return cls(
            log_format=getattr(args, "log_format", "auto"),
            verbosity=-1 if getattr(args, "quiet", False) else int(getattr(args, "verbose", 0)),
            report_dir=Path(args.report_dir) if getattr(args, "report_dir", None) else None,
            output_dir=Path(args.output_dir) if getattr(args, "output_dir", None) else None,
        )


class RunOutputs:
    """The sinks one run feeds (a sink itself), and what it prints and writes at its end.
    Use it as a context manager around the run: the live display lives inside it."""

    def __init__(
        self,
        options: OutputOptions,
        console: Console,
        *,
        clock: Clock,
        api_calls: Callable[[], int] | None = None,
        skipped_before_dispatch: int = 0,
    ) -> None:
        fmt = options.log_format
        if fmt == "auto":
            fmt = "console" if console.is_terminal else "json"
        configure_logging(fmt=fmt, verbosity=options.verbosity)
        self._options = options
        self._console = console
        self._clock = clock_info(clock)
        self.collector = ReportCollector()
        sinks: list[EventSink] = [self.collector]
        self._display: ProgressDisplay | None = None
        if fmt == "console" and options.verbosity >= 0:
            # Off a terminal its plain lines are log lines: on stderr, so that stdout
            # holds only the command's own output (the run id, the summary).
            shown = console if console.is_terminal else plain_console(stderr=True)
            self._display = ProgressDisplay(
                shown, verbose=options.verbosity > 0, clock=clock, api_calls=api_calls
            )
            sinks.append(self._display)
        if fmt == "json":
            sinks.append(EventLog(clock=clock, skipped_before_dispatch=skipped_before_dispatch))
        if options.output_dir is not None:
            sinks.append(OutputFiles(options.output_dir))
        self._sinks = tuple(sinks)

    def __call__(self, event: Event) -> None:
        for sink in self._sinks:
            sink(event)

    def __enter__(self) -> Self:
        if self._display is not None:
            self._display.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._display is not None:
            self._display.__exit__(exc_type, exc, tb)

    def finish(self, facts: RunFacts, skipped: Sequence[Skipped]) -> None:
        """The summary, then the reports (written now) and where they are."""
        # The reports name the clock the times are on: the run's, which this sees.
        facts = replace(facts, clock=self._clock)
        result = self.collector.result
        # Grouped once, for the summary and the reports alike.
        groups = group_results(result.results if result else (), names_of(facts))
        if result is not None:
            print_outcome(self._console, result, skipped, groups=groups)
        options = self._options
        if options.report_dir is not None:
            summary = os.environ.get("GITHUB_STEP_SUMMARY")
            paths = write_reports(
                options.report_dir,
                facts,
                self.collector,
                step_summary=Path(summary) if summary else None,
                groups=groups,
            )
            self._console.print(
                f"\nreports: {paths.json}, {paths.junit}, {paths.markdown}"
                + (" (summary appended to $GITHUB_STEP_SUMMARY)" if summary else ""),
                soft_wrap=True,
            )
        if options.output_dir is not None:
            self._console.print(f"outputs: {options.output_dir}/<wave>/<instance>.log")


def print_outcome(
    console: Console,
    result: RolloutResult,
    skipped: Sequence[Skipped],
    *,
    groups: Sequence[OutputGroup] = (),
) -> None:
    """The counts by wave, the output groups, the instances that need a look, why the run
    halted (with the numbers), and the API calls it made."""
    print_summary(
        console,
        result.results,
        skipped,
        [w.name for w in result.waves],
        groups=_group_lines(groups),
    )
    if result.halt is not None:
        halt = result.halt
        console.print(
            f"\n[bold red]halted ({halt.reason})[/]: {escape(halt.describe())}", soft_wrap=True
        )
    calls = ", ".join(f"{action} {n}" for action, n in sorted(result.api_calls.items()))
    # One line, however many actions: a script greps it, and a person reads it whole.
    console.print(f"\n[dim]API calls: {calls}; throttled {result.throttles}[/]", soft_wrap=True)


def _group_lines(groups: Sequence[OutputGroup]) -> list[str]:
    lines = [escape(describe_group(group)) for group in groups[:GROUPS_SHOWN]]
    if len(groups) > GROUPS_SHOWN:
        lines.append(f"[dim]... and {len(groups) - GROUPS_SHOWN} more groups[/]")
    return lines
