"""What `orchestrator plan` (the dry run) prints: the targets resolved, every wave's computed
size, batches, cap and threshold, the API calls, the quota and the time a run would take,
all from one `Preview` (`plan --json` prints the same numbers)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from orchestrator.cli._summary import LISTED

if TYPE_CHECKING:
    from rich.console import Console

    from orchestrator.cli._preview import Preview
    from orchestrator.targets import Resolution


def print_resolution(console: Console, resolution: Resolution) -> None:
    console.print(
        f"targets: {resolution.selected} selected, {len(resolution.runnable)} will run, "
        f"{len(resolution.skipped)} skipped, {len(resolution.excluded)} excluded"
    )


def print_dry_run(console: Console, preview: Preview) -> None:
    resolution = preview.resolution
    print_resolution(console, resolution)
    for skipped in resolution.skipped[:LISTED]:
        console.print(
            f"  [dim]skip[/] {skipped.instance_id}  {skipped.reason.value}: "
            f"{escape(skipped.detail)}"
        )
    if len(resolution.skipped) > LISTED:
        console.print(f"  [dim]... and {len(resolution.skipped) - LISTED} more[/]")

    table = Table(title=f"Waves (order: {preview.order})", title_justify="left")
    for column in ("wave", "size", "batches", "at once", "max_errors", "then", "zones"):
        left = column in {"wave", "zones", "then", "max_errors"}
        table.add_column(column, justify="left" if left else "right")
    for wave in preview.waves:
        table.add_row(
            wave.name,
            str(wave.size),
            str(wave.batches),
            str(wave.at_once) if wave.at_once else "-",
            wave.threshold_text,
            ", ".join(wave.then) or "-",
            ", ".join(wave.zones),
        )
    console.print(table)
    for wave in preview.waves:
        if wave.reach:
            console.print(f"  gate {escape(wave.name)}: {escape(wave.reach)}")
    console.print(
        "[dim]a wave halts the run at its (T+1)-th counted error (T = max_errors); "
        f"on a breach: {preview.on_breach}; undelivered instances "
        f"{'count' if preview.count_undelivered else 'do not count'}[/]"
    )
    if preview.small_canary:
        size = preview.waves[0].size
        console.print(
            f"[yellow]note:[/] a canary of {size} instance{'' if size == 1 else 's'} only catches "
            "a change that fails everywhere"
        )

    batches = preview.run_commands
    console.print(
        f"API calls: {batches} RunCommand (at most {preview.batch_size} instances each), then "
        f"at least {batches} DescribeInvocationResults and shared DescribeInvocations polls"
    )
    verified = preview.verify_invocations
    console.print(
        f"quota: {preview.invocations} invocations"
        + (f" ({verified} of them verify runs)" if verified else "")
        + f" of max-axt-invocation-daily {preview.invocation_quota or '?'}; "
        f"{preview.kept_commands} kept commands of "
        f"max-axt-command-count {preview.command_quota or '?'}"
    )
    console.print(
        f"time: dispatch takes at least {preview.dispatch_seconds:.1f} s at "
        f"{preview.run_command_rate:g} RunCommand/s; each instance may run up to "
        f"{preview.command_timeout} s" + (f", {preview.at_once} at once" if preview.at_once else "")
    )
    console.print("[dim]dry run: no RunCommand was sent[/]")
