"""`orchestrator validate`, `plan` (the dry run) and `run`: a plan file to its outcome.

`run` orders the instances as the plan says (`order_for(plan.order)`), answers the gates'
approvals with `_approve.build_approver`, prints the run id first (another shell needs
it for `orchestrator approve RUN WAVE`), and ends with the summary and, after a halt,
why, with the numbers. The dry run prints every wave's computed size, cap and threshold.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from orchestrator.cli._approve import build_approver
from orchestrator.cli._concurrency import check_live_runs, plan_lock, refuse_interrupted
from orchestrator.cli._execute import Job, execute
from orchestrator.cli._exit import ExitCode, make_console, run_async
from orchestrator.cli._outputs import OutputOptions
from orchestrator.cli._overrides import apply_overrides, overrides_line, reported_origin
from orchestrator.cli._summary import LISTED
from orchestrator.cli._wiring import Target, connect
from orchestrator.ecs import DEFAULT_RATES, PATIENT_READS
from orchestrator.journal import (
    PLAN_FILE,
    RunHeader,
    RunLock,
    RunOrigin,
    WaveRow,
    create_journal,
    journal_path,
)
from orchestrator.plan import (
    PlanError,
    check_credentials_in_use,
    load_plan,
    parse_plan,
    read_plan_text,
)
from orchestrator.report import RunFacts
from orchestrator.rollout import (
    NO_HISTORY,
    PlanIdentity,
    order_for,
    shape_waves,
    threshold_text,
)
from orchestrator.targets import Resolution, resolve

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

    from rich.console import Console

    from orchestrator.plan import Plan, Wave
    from orchestrator.rollout import ShapedWave


def _target(args: argparse.Namespace, plan: Plan) -> Target:
    return Target(
        region=args.region or plan.region,
        endpoint=args.endpoint,
        sim=args.sim,
        profile=args.profile,
    )


def _print_problems(console: Console, error: PlanError) -> None:
    # One problem per line, never wrapped: CI annotators parse FILE:LINE: from each line.
    for problem in error.problems or ():
        console.print(escape(str(problem)), soft_wrap=True)
    if not error.problems:
        console.print(escape(str(error)), soft_wrap=True)


def script_dirs(args: argparse.Namespace) -> tuple[Path, ...]:
    """The `--script-dir`s: where, besides the plan's own directory, scripts may be."""
    return tuple(Path(name).resolve() for name in args.script_dir)


def validate(args: argparse.Namespace) -> int:
    """Check plan files offline; exit 0 when all are valid, 2 otherwise."""
    console, errors = make_console(), make_console(stderr=True)
    bad = 0
    for name in args.plans:
        try:
            plan = load_plan(Path(name), script_dirs=script_dirs(args))
        except PlanError as exc:
            bad += 1
            _print_problems(errors, exc)
        else:
            console.print(f"{name}: ok ({plan.name}, {len(plan.waves)} waves)")
    return ExitCode.USAGE if bad else ExitCode.OK


def _load(args: argparse.Namespace, errors: Console) -> tuple[Plan, str] | None:
    """The plan and its text, read once: the text the journal keeps is the one checked."""
    path = Path(args.plan)
    try:
        text = read_plan_text(path)
        return parse_plan(text, source=path, script_dirs=script_dirs(args)), text
    except PlanError as exc:
        _print_problems(errors, exc)
        return None


def _print_resolution(console: Console, resolution: Resolution) -> None:
    console.print(
        f"targets: {resolution.selected} selected, {len(resolution.runnable)} will run, "
        f"{len(resolution.skipped)} skipped, {len(resolution.excluded)} excluded"
    )


def _dry_run(console: Console, plan: Plan, resolution: Resolution, quotas: dict[str, str]) -> None:
    _print_resolution(console, resolution)
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


def dry_run(args: argparse.Namespace) -> int:
    """Resolve the targets and show what a run would do, without running anything."""
    console, errors = make_console(), make_console(stderr=True)
    loaded = _load(args, errors)
    if loaded is None:
        return ExitCode.USAGE
    plan, _ = loaded
    try:  # what `run` with the same --param and --limit would do
        changed = apply_overrides(args, plan)
    except PlanError as exc:
        _print_problems(errors, exc)
        return ExitCode.USAGE
    plan = changed.plan

    async def main() -> int:
        async with connect(_target(args, plan), rates=plan.limits.qps) as conn:
            # What `run` would refuse, the dry run refuses too.
            check_credentials_in_use(plan, conn.credentials_in_use)
            console.print(f"plan {plan.name} against {conn.description}, region {conn.region}")
            resolution = await resolve(plan.targets, plan.command.type, conn.client)
            if changed.narrow is not None:
                resolution = changed.narrow(resolution)
            if overrides_line(changed.origin):
                console.print(f"overrides: {escape(overrides_line(changed.origin))}")
            attributes = await conn.client.describe_account_attributes(
                ["max-axt-invocation-daily", "max-axt-command-count"], retry=PATIENT_READS
            )
        _dry_run(console, plan, resolution, dict(attributes.values))
        return ExitCode.OK

    return run_async(main)


def new_run_id(plan: Plan) -> str:
    """Readable and unique: the plan's name, the start time, and a random suffix."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{plan.name[:24]}-{stamp}-{secrets.token_hex(2)}"


def plan_digest(text: str) -> str:
    """The plan's identity in the journal: a resume refuses a changed plan file."""
    return hashlib.sha256(text.encode()).hexdigest()


def run(args: argparse.Namespace) -> int:
    """Run a plan file: resolve, journal, dispatch wave after wave, track, and summarise."""
    errors = make_console(stderr=True)
    loaded = _load(args, errors)
    if loaded is None:
        return ExitCode.USAGE
    plan, text = loaded
    try:  # --param and --limit: the journal keeps the plan's text and these (`origin`)
        changed = apply_overrides(args, plan)
    except PlanError as exc:
        _print_problems(errors, exc)
        return ExitCode.USAGE
    path = str(Path(args.plan).resolve())
    start = Start(changed.plan, text, path, origin=changed.origin, narrow=changed.narrow)
    return start_run(args, start)


@dataclass(frozen=True, slots=True)
class Start:
    """What a new run starts from: a checked plan and the text the journal keeps of it
    (a resume parses that text again, then applies `origin`), where it came from, and
    two seams for the commands built on `run`: `narrow` keeps some of the resolved
    targets (`--limit`), `confirm` may still say no once the waves are known (`exec` on a
    terminal). Both run before anything is journalled or sent."""

    plan: Plan
    text: str
    plan_path: str
    origin: RunOrigin = PLAN_FILE
    narrow: Callable[[Resolution], Resolution] | None = None
    confirm: Callable[[Resolution, Sequence[ShapedWave]], bool] | None = None


def start_run(args: argparse.Namespace, start: Start) -> int:
    """Start a new run of `start.plan`: the one path every command that sends takes.

    First the guards against a second live run of the plan (`_concurrency`): its lock in
    the state dir, held to the end, and its last run here left interrupted; once the
    targets are known, the API guard. Each refuses with exit 7, before anything is sent.
    """
    console = make_console()
    plan, text, plan_path = start.plan, start.text, start.plan_path
    if args.ignore_quota:
        plan = replace(plan, limits=replace(plan.limits, ignore_quota=True))
    run_id = new_run_id(plan)
    state_dir = Path(args.state_dir)
    run_dir = state_dir / "runs" / run_id
    target = _target(args, plan)
    identity = PlanIdentity(plan.name, plan_digest(text))

    async def main() -> int:
        with plan_lock(args, state_dir, plan.name, run_id):
            if not args.new:
                refuse_interrupted(state_dir, plan.name)
            return await rollout()

    async def rollout() -> int:
        async with connect(target, rates=plan.limits.qps) as conn:
            # Before anything is resolved or journalled: a refused plan leaves no run.
            check_credentials_in_use(plan, conn.credentials_in_use)
            # The run id comes first: another shell needs it to approve or stop.
            console.print(
                f"run {run_id}: plan {plan.name} against {conn.description}, region {conn.region}",
                soft_wrap=True,  # one line: scripts and other shells read the run id from it
            )
            resolution = await resolve(plan.targets, plan.command.type, conn.client)
            if start.narrow is not None:
                resolution = start.narrow(resolution)
            _print_resolution(console, resolution)
            shaped = shape_waves(plan, resolution.runnable, order_for(plan.order))
            if start.confirm is not None and not start.confirm(resolution, shaped):
                console.print("nothing was sent")
                return ExitCode.USAGE
            await check_live_runs(args, conn.client, identity, resolution.runnable, run_id=run_id)
            header = RunHeader(
                run_id=run_id,
                plan_name=plan.name,
                plan_path=plan_path,
                plan_text=text,
                plan_sha256=identity.sha256,
                target=target_record(
                    target,
                    conn.region,
                    ignore_quota=args.ignore_quota,
                    script_dirs=script_dirs(args),
                ),
                created_at=datetime.now(UTC),
                instances=resolution.runnable,
                skipped=resolution.skipped,
                waves=tuple(
                    WaveRow(w.plan.index, w.plan.name, w.plan.size, len(w.plan.batches))
                    for w in shaped
                ),
                origin=start.origin,
            )
            job = Job(
                run_id=run_id,
                run_dir=run_dir,
                plan=plan,
                instances=resolution.runnable,
                skipped=resolution.skipped,
                history=NO_HISTORY,
                approver=build_approver(args, conn.clock, console),
                facts=RunFacts(
                    run_id=run_id,
                    plan=plan,
                    plan_path=plan_path,
                    plan_sha256=header.plan_sha256,
                    region=conn.region,
                    endpoint=conn.endpoint,
                    resolution=resolution,
                    exit_code=0,
                    origin=reported_origin(start.origin),
                ),
                outputs=OutputOptions.of(args),
                resumable=target.sim is None,  # the embedded simulator ends with us
                identity=identity,
            )
            with RunLock.acquire(run_dir, run_id):
                async with create_journal(journal_path(state_dir, run_id), header) as journal:
                    return await execute(job, conn, journal, console)

    return run_async(main)


def target_record(
    target: Target, region: str, *, ignore_quota: bool, script_dirs: tuple[Path, ...] = ()
) -> dict[str, str | None]:
    """Where the run's calls go, as the journal keeps it for a resume (never a secret:
    credentials are resolved again from the environment or the profile), and where the
    plan's scripts may be read from again (`--script-dir`, joined with os.pathsep)."""
    return {
        "endpoint": target.endpoint,
        "region": region,
        "sim": target.sim,
        "profile": target.profile,
        "ignore_quota": "true" if ignore_quota else None,
        "script_dirs": os.pathsep.join(str(p) for p in script_dirs) if script_dirs else None,
    }
