"""`orchestrator validate`, `plan` (the dry run) and `run`: a plan file to its outcome.

`run` orders the instances as the plan says (`order_for(plan.order)`), answers the gates'
approvals with `_approve.build_approver`, prints the run id first (another shell needs
it for `orchestrator approve RUN WAVE`), and ends with the summary and, after a halt,
why, with the numbers. The dry run prints every wave's computed size, cap and threshold
(`_dry_run`).

`on_breach: rollback`: when the run ends halted by a breach, the same process starts its
rollback run (`roll_back_after_breach`), on the same connection and under the plan lock
the run holds, on exactly the instances the run touched (`touched_instances`). It is a
run of its own (its run id, its journal, its reports under `<report-dir>/rollback`);
the exit code stays the halted run's, 3, however the rollback went, and the last lines
say how it went and how to continue it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from rich.markup import escape

from orchestrator.cli._approve import build_approver
from orchestrator.cli._concurrency import check_live_runs, plan_lock, refuse_interrupted
from orchestrator.cli._dry_run import print_dry_run, print_resolution
from orchestrator.cli._execute import Job, execute, not_resumable
from orchestrator.cli._exit import ExitCode, make_console, run_async
from orchestrator.cli._heap import paused_collector
from orchestrator.cli._json_output import CheckedFile, emit, plan_document, validate_document
from orchestrator.cli._outputs import OutputOptions
from orchestrator.cli._overrides import apply_overrides, overrides_line, reported_origin
from orchestrator.cli._preview import COMMAND_QUOTA, INVOCATION_QUOTA, preview
from orchestrator.cli._recorded import child_plan
from orchestrator.cli._wiring import Connection, Target, connect
from orchestrator.ecs import PATIENT_READS, RateLimiterStats
from orchestrator.errors import OrchestratorError, Problem
from orchestrator.journal import (
    PLAN_FILE,
    RunHeader,
    RunLock,
    RunOrigin,
    WaveRow,
    create_journal,
    journal_path,
    read_journal,
    touched_instances,
)
from orchestrator.plan import (
    PlanError,
    check_credentials_in_use,
    load_plan,
    parse_plan,
    read_plan_text,
)
from orchestrator.report import RunFacts
from orchestrator.rollout import NO_HISTORY, Outcome, PlanIdentity, order_for, shape_waves
from orchestrator.targets import Resolution, resolve

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from rich.console import Console

    from orchestrator.plan import Plan
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
    checked: list[CheckedFile] = []
    for name in args.plans:
        try:
            plan = load_plan(Path(name), script_dirs=script_dirs(args))
        except PlanError as exc:
            checked.append(CheckedFile(name, problems=_problems_of(name, exc)))
            _print_problems(errors, exc)  # on stderr, with --json too: CI logs show them
        else:
            checked.append(CheckedFile(name, plan.name, len(plan.waves)))
            if not args.json:
                console.print(f"{name}: ok ({plan.name}, {len(plan.waves)} waves)")
    if args.json:
        emit(validate_document(checked))
    return ExitCode.USAGE if any(c.problems for c in checked) else ExitCode.OK


def _problems_of(name: str, error: PlanError) -> tuple[Problem, ...]:
    """The error's problems; one made of it when it has none (a file that cannot be read)."""
    if error.problems:
        return error.problems
    return (Problem(file=name, line=0, field=error.field, message=str(error), code=error.rule),)


def _load(args: argparse.Namespace, errors: Console) -> tuple[Plan, str] | None:
    """The plan and its text, read once: the text the journal keeps is the one checked."""
    path = Path(args.plan)
    try:
        text = read_plan_text(path)
        return parse_plan(text, source=path, script_dirs=script_dirs(args)), text
    except PlanError as exc:
        _print_problems(errors, exc)
        return None


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
            if not args.json:
                console.print(f"plan {plan.name} against {conn.description}, region {conn.region}")
            resolution = await resolve(plan.targets, plan.command.type, conn.client)
            if changed.narrow is not None:
                resolution = changed.narrow(resolution)
            if overrides_line(changed.origin) and not args.json:  # stdout is the document
                console.print(f"overrides: {escape(overrides_line(changed.origin))}")
            attributes = await conn.client.describe_account_attributes(
                [INVOCATION_QUOTA, COMMAND_QUOTA], retry=PATIENT_READS
            )
        numbers = preview(plan, resolution, dict(attributes.values))
        if args.json:
            emit(plan_document(numbers, endpoint=conn.description, region=conn.region))
        else:
            print_dry_run(console, numbers)
        return ExitCode.OK

    return run_async(main)


def new_run_id(plan: Plan | str) -> str:
    """Readable and unique: the plan's name, the start time, and a random suffix."""
    name = plan if isinstance(plan, str) else plan.name
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{name[:24]}-{stamp}-{secrets.token_hex(2)}"


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
    A run of a plan with `on_breach: rollback` that breaches is followed by its rollback
    run (`roll_back_after_breach`) before this returns; the exit code stays the run's.
    """
    return run_async(lambda: begin_run(args, start))


async def begin_run(
    args: argparse.Namespace,
    start: Start,
    *,
    following: Connection | None = None,
    run_id: str | None = None,
) -> int:
    """`start_run`'s work, in the running event loop. `following`: the connection of the
    run of the same plan this one follows in this process (its rollback after a breach):
    this run goes on it (the embedded simulator lives as long as it does) and under the
    plan lock that run took and still holds, which it needs no second time."""
    console = make_console()
    plan, text, plan_path = start.plan, start.text, start.plan_path
    if args.ignore_quota:
        plan = replace(plan, limits=replace(plan.limits, ignore_quota=True))
    run_id = run_id or new_run_id(plan)
    state_dir = Path(args.state_dir)
    run_dir = state_dir / "runs" / run_id
    target = _target(args, plan)
    identity = PlanIdentity(plan.name, plan_digest(text))

    async def main() -> int:
        if following is not None:
            return await rollout(following)
        with plan_lock(args, state_dir, plan.name, run_id):
            if not args.new:
                refuse_interrupted(state_dir, plan.name)
            async with connect(target, rates=plan.limits.qps) as conn:
                code = await rollout(conn)
                if plan.on_breach == "rollback" and code == ExitCode.HALTED:
                    await roll_back_after_breach(args, run_id, conn, console)
                return code

    async def rollout(conn: Connection) -> int:
        limiter = conn.client.rate_limiter
        calls_since = limiter.stats() if limiter is not None else RateLimiterStats()
        # Before anything is resolved or journalled: a refused plan leaves no run.
        check_credentials_in_use(plan, conn.credentials_in_use)
        # The run id comes first: another shell needs it to approve or stop.
        console.print(
            f"run {run_id}: plan {plan.name} against {conn.description}, region {conn.region}",
            soft_wrap=True,  # one line: scripts and other shells read the run id from it
        )
        with paused_collector():  # what the listing builds lives to the end (`_heap`)
            resolution = await resolve(plan.targets, plan.command.type, conn.client)
        if start.narrow is not None:
            resolution = start.narrow(resolution)
        print_resolution(console, resolution)
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
                output_dir=OutputOptions.of(args).output_dir,
            ),
            created_at=datetime.now(UTC),
            instances=resolution.runnable,
            skipped=resolution.skipped,
            waves=tuple(
                WaveRow(w.plan.index, w.plan.name, w.plan.size, len(w.plan.batches)) for w in shaped
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
            calls_since=calls_since,
        )
        with RunLock.acquire(run_dir, run_id):
            async with create_journal(journal_path(state_dir, run_id), header) as journal:
                return await execute(job, conn, journal, console)

    return await main()


ROLLBACK_DIR: Final = "rollback"  # a rollback's reports and outputs, under the run's


async def roll_back_after_breach(
    args: argparse.Namespace, run_id: str, conn: Connection, console: Console
) -> None:
    """`on_breach: rollback`, once run `run_id` has ended halted: if a breach halted it,
    its rollback run on the instances it touched, then how that went, last on stdout.
    Whatever happens here, the exit code stays the halted run's."""
    try:
        record = read_journal(journal_path(Path(args.state_dir), run_id))
    except OrchestratorError as exc:  # the run's own journal, just closed: not expected
        make_console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        console.print(f"run {run_id} halted; `orchestrator rollback {run_id}` rolls it back")
        return
    if record.halt is None or record.halt.reason != "breach":
        return  # halted by a person (denied, stopped): they decide what comes next
    touched = tuple(instance.instance_id for instance in touched_instances(record))
    if not touched:
        console.print(
            f"\non_breach rollback: run {run_id} touched no instance: nothing to roll back"
        )
        return
    header = record.header
    child_id = new_run_id(header.plan_name)
    console.print(
        f"\non_breach rollback: rolling back the {len(touched)} instances run {run_id} "
        f"touched, as run {child_id}",
        soft_wrap=True,
    )
    origin = RunOrigin(kind="rollback", parent=run_id, params=header.origin.params)
    child_args = _follower_args(args, header.target)
    try:
        plan = child_plan(header, "rollback", touched)
        start = Start(plan, header.plan_text, plan_path=header.plan_path, origin=origin)
        code = await begin_run(child_args, start, following=conn, run_id=child_id)
    except OrchestratorError as exc:  # it did not start: the halted run's exit code stands
        make_console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        later = (
            f"`orchestrator rollback {run_id}` starts it"
            if child_args.sim is None
            else "the embedded simulator's run cannot be rolled back later"
        )
        console.print(
            f"run {run_id} halted (exit {ExitCode.HALTED}); its rollback did not start: {later}",
            soft_wrap=True,
        )
        return
    console.print(_rollback_went(child_args, run_id, child_id, code, len(touched)), soft_wrap=True)


def _follower_args(
    args: argparse.Namespace, recorded: Mapping[str, str | None]
) -> argparse.Namespace:
    """The options of a run that follows another in its process (`run`'s or `resume`'s):
    where the calls go and the scripts are as the run's journal recorded them, and the
    reports and outputs in a `rollback` directory of the run's."""
    dirs = recorded.get("script_dirs")
    return argparse.Namespace(
        **{
            **vars(args),
            "endpoint": recorded.get("endpoint"),
            "region": recorded.get("region"),
            "profile": recorded.get("profile"),
            "sim": recorded.get("sim"),
            "script_dir": dirs.split(os.pathsep) if dirs else [],
            "ignore_quota": bool(recorded.get("ignore_quota")),
            "new": False,
            "report_dir": args.report_dir and str(Path(args.report_dir) / ROLLBACK_DIR),
            "output_dir": args.output_dir and str(Path(args.output_dir) / ROLLBACK_DIR),
        }
    )


def _rollback_went(
    args: argparse.Namespace, run_id: str, child_id: str, code: int, touched: int
) -> str:
    """The last line after a rollback that followed a breach."""
    halted = f"run {run_id} halted (exit {ExitCode.HALTED})"
    try:
        counts = read_journal(journal_path(Path(args.state_dir), child_id)).counts()
    except OrchestratorError:
        counts = {}
    done = counts.get(Outcome.SUCCEEDED, 0)
    if code == ExitCode.OK:
        return f"{halted}; rolled back: all {touched} instances it touched (run {child_id})"
    if code in {ExitCode.FAILED, ExitCode.HALTED}:
        return (
            f"{halted}; rollback run {child_id} rolled back {done} of {touched} instances: "
            f"`orchestrator status {child_id}` shows the others"
        )
    how = (
        f"continue it with: orchestrator resume {child_id}"
        if args.sim is None
        else not_resumable(child_id)
    )
    return f"{halted}; rollback run {child_id} did not finish (exit {code}): {how}"


def target_record(
    target: Target,
    region: str,
    *,
    ignore_quota: bool,
    script_dirs: tuple[Path, ...] = (),
    output_dir: Path | None = None,
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
        # Where `--output-dir` kept each instance's whole output, for `orchestrator show`.
        "output_dir": str(output_dir.resolve()) if output_dir is not None else None,
    }
