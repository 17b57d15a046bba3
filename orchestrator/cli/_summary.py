"""The final summary on the terminal: counts by wave and outcome, then the instances
that need a look (failed, undelivered, stopped, skipped), capped so a 10,000-instance
run still fits on a screen."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Final

from rich.markup import escape
from rich.table import Table

from orchestrator.rollout import Outcome

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from rich.console import Console

    from orchestrator.rollout import InstanceResult
    from orchestrator.targets import Skipped

LISTED: Final = 20  # instances listed by name per section before "and N more"
_ORDER: Final = (
    Outcome.SUCCEEDED, Outcome.FAILED, Outcome.UNDELIVERED, Outcome.STOPPED,
    Outcome.SKIPPED, Outcome.NOT_SENT,
)  # fmt: skip
_STYLE: Final = {
    Outcome.SUCCEEDED: "green", Outcome.FAILED: "red", Outcome.UNDELIVERED: "yellow",
    Outcome.STOPPED: "yellow", Outcome.SKIPPED: "dim", Outcome.NOT_SENT: "dim",
}  # fmt: skip


def last_line(output: str) -> str:
    """The last non-empty line of an output tail, which usually says what went wrong."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1][:120] if lines else ""


def _failed_line(result: InstanceResult) -> str:
    """`ID  exit N  CODE  last output line`; for a failed verify, the verify's."""
    shown = result
    if result.verify is not None and result.error_code == "VerifyFailed":
        shown = result.verify
    exit_code = shown.exit_code if shown.exit_code is not None else "-"
    return (
        f"{result.instance_id}  exit {exit_code}  {result.error_code or result.status}"
        f"  {escape(last_line(shown.output))}"
    )


def counts_table(
    results: Sequence[InstanceResult], skipped: Sequence[Skipped], waves: Sequence[str]
) -> Table:
    """Instances by wave and outcome, with a total row. The waves come in `waves` order
    (the plan's): results are in target order, which `order: by_zone` or `spread` makes
    another, so the order in which results name their waves says nothing."""
    by_wave: dict[str, Counter[Outcome]] = {name: Counter() for name in waves}
    for result in results:
        by_wave.setdefault(result.wave or "-", Counter())[result.outcome] += 1
    if skipped:
        by_wave.setdefault("(before dispatch)", Counter())[Outcome.SKIPPED] += len(skipped)
    by_wave = {name: counts for name, counts in by_wave.items() if counts}
    shown = [o for o in _ORDER if any(c[o] for c in by_wave.values())]
    table = Table(title="Outcome by wave", title_justify="left")
    table.add_column("wave")
    for outcome in shown:
        table.add_column(f"[{_STYLE[outcome]}]{outcome.value}[/]", justify="right")
    table.add_column("total", justify="right")
    total: Counter[Outcome] = Counter()
    for wave, counts in by_wave.items():
        total.update(counts)
        table.add_row(wave, *(str(counts[o]) for o in shown), str(sum(counts.values())))
    if len(by_wave) > 1:
        table.add_section()
        table.add_row("all", *(str(total[o]) for o in shown), str(sum(total.values())))
    return table


def _capped(items: Sequence[str], console: Console, title: str) -> None:
    if not items:
        return
    console.print(f"\n[bold]{title}[/] ({len(items)})")
    for line in items[:LISTED]:
        console.print(f"  {line}")
    if len(items) > LISTED:
        console.print(f"  [dim]... and {len(items) - LISTED} more[/]")


def print_summary(
    console: Console,
    results: Sequence[InstanceResult],
    skipped: Iterable[Skipped],
    waves: Sequence[str],
    *,
    groups: Sequence[str] = (),
) -> None:
    """The counts, the output groups (`groups`, already capped: instances whose output
    and exit code are the same, counted), then each instance that did not succeed."""
    skipped = tuple(skipped)
    console.print(counts_table(results, skipped, waves))
    if groups:
        console.print("\n[bold]Outputs[/] (instances with the same exit code and output)")
        for line in groups:
            console.print(f"  {line}", soft_wrap=True)

    failed = [_failed_line(r) for r in results if r.outcome is Outcome.FAILED]
    _capped(failed, console, "[red]Failed[/]")
    undelivered = [
        f"{r.instance_id}  {r.error_code or r.status}  {escape(r.error_info)}"
        for r in results
        if r.outcome in {Outcome.UNDELIVERED, Outcome.STOPPED}
    ]
    _capped(undelivered, console, "[yellow]Undelivered or stopped[/]")
    rejected = [
        f"{r.instance_id}  {r.error_code}  {escape(r.error_info)}"
        for r in results
        if r.outcome is Outcome.SKIPPED
    ]
    before = [f"{s.instance_id}  {s.reason.value}  {escape(s.detail)}" for s in skipped]
    _capped(before + rejected, console, "Skipped")
