"""What `orchestrator plan` (the dry run) prints: the targets resolved, every wave's computed
size, batches, cap and threshold, the API calls, the quota and the time a run would take."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from orchestrator.cli._summary import LISTED
from orchestrator.ecs import DEFAULT_RATES
from orchestrator.rollout import order_for, shape_waves, threshold_text

if TYPE_CHECKING:
    from rich.console import Console

    from orchestrator.plan import Plan, Wave
    from orchestrator.targets import Resolution


def print_resolution(console: Console, resolution: Resolution) -> None:
    console.print(
        f"targets: {resolution.selected} selected, {len(resolution.runnable)} will run, "
        f"{len(resolution.skipped)} skipped, {len(resolution.excluded)} excluded"
    )


def print_dry_run(
    console: Console, plan: Plan, resolution: Resolution, quotas: dict[str, str]
) -> None:
    print_resolution(console, resolution)
    for skipped in resolution.skipped[:LISTED]:
        console.print(
            f"  [dim]skip[/] {skipped.instance_id}  {skipped.reason.value}: "
            f"{escape(skipped.detail)}"
        )
    if len(resolution.skipped) > LISTED:
        console.print(f"  [dim]... and {len(resolution.skipped) - LISTED} more[/]")

    runnable = resolution.runnable
    shaped = shape_waves(plan, runnable, order_for(plan.order))
    waves = [wave.plan for wave in shaped]
    table = Table(title=f"Waves (order: {plan.order})", title_justify="left")
    for column in ("wave", "size", "batches", "at once", "max_errors", "then", "zones"):
        left = column in {"wave", "zones", "then", "max_errors"}
        table.add_column(column, justify="left" if left else "right")
    for position, wave in enumerate(shaped):
        zones = sorted({i.zone_id for i in wave.plan.instances})
        table.add_row(
            wave.plan.name,
            str(wave.plan.size),
            str(len(wave.plan.batches)),
            str(wave.cap) if wave.cap else "-",
            threshold_text(wave.config.max_errors, wave.plan.size, wave.threshold),
            _then(wave.config, last=position == len(shaped) - 1),
            ", ".join(zones),
        )
    console.print(table)
    console.print(
        "[dim]a wave halts the run at its (T+1)-th counted error (T = max_errors); "
        f"on a breach: {plan.on_breach}; undelivered instances "
        f"{'count' if plan.count_undelivered else 'do not count'}[/]"
    )
    if waves and 0 < waves[0].size <= 2 and len(waves) > 1:  # noqa: PLR2004
        console.print(
            f"[yellow]note:[/] a canary of {waves[0].size} instance(s) only catches a change "
            "that fails everywhere"
        )

    batches = sum(len(w.batches) for w in waves)
    batch_size = max((len(b.instances) for w in waves for b in w.batches), default=0)
    cap = max((w.cap or 0 for w in shaped), default=0)
    rates = {**DEFAULT_RATES, **plan.limits.qps}
    console.print(
        f"API calls: {batches} RunCommand (at most {batch_size} instances each), then "
        f"at least {batches} DescribeInvocationResults and shared DescribeInvocations polls"
    )
    # As the run's own preflight counts: one per instance, plus one per verified one.
    verified = sum(w.plan.size for w in shaped if w.config.verify is not None)
    needed = len(runnable) + verified
    console.print(
        f"quota: {needed} invocations"
        + (f" ({verified} of them verify runs)" if verified else "")
        + " of max-axt-invocation-daily "
        f"{quotas.get('max-axt-invocation-daily', '?')}; "
        f"{batches if plan.command.keep_command else 0} kept commands of "
        f"max-axt-command-count {quotas.get('max-axt-command-count', '?')}"
    )
    console.print(
        f"time: dispatch takes at least {batches / rates['RunCommand']:.1f} s at "
        f"{rates['RunCommand']:g} RunCommand/s; each instance may run up to "
        f"{plan.command.timeout} s" + (f", {cap} at once" if cap else "")
    )
    console.print("[dim]dry run: no RunCommand was sent[/]")


def _then(wave: Wave, *, last: bool) -> str:
    """What follows a wave once it passed: verify, pause, approval."""
    steps = ["verify"] if wave.verify is not None else []
    if not last:
        steps += [f"pause {wave.pause:g}s"] if wave.pause else []
        steps += ["approval"] if wave.approval else []
    return ", ".join(steps) or "-"
