"""Benchmark: one rollout over a large simulated fleet, against the quality bars.

Run on demand, never in CI (the name has no `test_` prefix, so pytest does not collect
it): `python tests/bench/bench_rollout.py --instances 10000` (or 100000). It writes a
fleet file into a temporary directory, starts the simulator in its own process
(`python -m orchestrator sim`), so that this process measures the tool alone, and runs
the tool through the library as `orchestrator run` wires it: `resolve` the targets, then
`run_rollout`, with a rate-limited `EcsClient` on real time. It prints the dispatch rate
as a fraction of the bound (batches / RunCommand QPS), Describe calls per instance, peak
RSS and CPU seconds, each against its target; docs/performance.md explains the figures.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import json
import pstats
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import anyio

import orchestrator
from orchestrator.cli._heap import frozen_heap, paused_collector
from orchestrator.clock import SystemClock
from orchestrator.ecs import Credentials, EcsClient, RateLimiter
from orchestrator.journal import RunHeader, create_journal, journal_path
from orchestrator.plan import parse_plan
from orchestrator.rollout import BatchDispatched, Outcome, _dispatcher, run_rollout
from orchestrator.sim import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from orchestrator.targets import resolve
from tests.bench.harness import (
    TAG,
    FleetSpec,
    Probes,
    Usage,
    listed,
    mark,
    per_action_throttle,
    say,
    sim_stats,
    simulator,
)

if TYPE_CHECKING:
    from orchestrator.plan import Plan
    from orchestrator.rollout import Event, RolloutResult
    from orchestrator.targets import Resolution

# The quality bars (shared/design.md "Quality bars", the benchmark issue).
TARGET_FRACTION = 0.95
TARGET_DESCRIBE_PER_INSTANCE = 0.05
TARGET_PEAK_RSS_MB = 300.0
_TRACKING = ("DescribeInvocations", "DescribeInvocationResults")


@dataclass(frozen=True, slots=True)
class Config:
    """What one benchmark run does (the command line)."""

    instances: int
    run_command_qps: float
    describe_qps: float
    batch_size: int
    latency: float
    sim_qps: float
    duration_min: float
    duration_max: float
    delivery_delay: float
    profile: Path | None
    json_out: Path | None
    # Experiments, off by default (the CLI's wiring): a RunCommand burst for the client's
    # rate limiter, and more RunCommands in the air than the dispatcher's PARALLEL_SENDS.
    burst: float = 1.0
    parallel_sends: int = 0


def fleet_of(cfg: Config) -> FleetSpec:
    """N Running, online instances; real-time throttle (one rate for every action)."""
    return FleetSpec(
        cfg.instances,
        latency=cfg.latency,
        throttle=per_action_throttle(cfg.sim_qps),
        duration=(cfg.duration_min, cfg.duration_max),
        delivery_delay=cfg.delivery_delay,
    )


def plan_text(cfg: Config) -> str:
    """One wave, no max_concurrency: only the rate limits bound the run."""
    return f"""\
name: bench-rollout
region: cn-hangzhou
targets:
  tags: {{{TAG[0]}: {TAG[1]}}}
command:
  content: "echo ok"
  timeout: 60
limits:
  batch_size: {cfg.batch_size}
  qps: {{RunCommand: {cfg.run_command_qps:g}, Describe: {cfg.describe_qps:g}}}
"""


class DispatchTimes:
    """A sink keeping only when each BatchDispatched arrived (not the events themselves)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, BatchDispatched):
            self.times.append(time.perf_counter())


@dataclass(slots=True)
class Figures:
    """Everything measured in one run."""

    instances: int
    runnable: int = 0
    resolve_s: float = 0.0
    resolve_calls: dict[str, int] = field(default_factory=dict)
    rollout_calls: dict[str, int] = field(default_factory=dict)
    throttles: int = 0
    journal_transactions: int = 0
    batches: int = 0
    bound_s: float = 0.0
    window_s: float = 0.0
    start_to_last_s: float = 0.0
    tail_s: float = 0.0  # the last BatchDispatched to the rollout's end
    max_gap_s: float = 0.0
    lost_in_gaps_s: float = 0.0  # the excess of every gap over 1 / QPS, summed
    resolve_cpu_s: float = 0.0
    resolve_peak_rss_mb: float = 0.0
    rollout_s: float = 0.0
    wall_s: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)
    halt: str = ""
    sim_stats: dict[str, Any] = field(default_factory=dict)
    diagnostics: list[str] = field(default_factory=list)
    resolve_round_trips: list[str] = field(default_factory=list)


async def run_once(cfg: Config, url: str, figures: Figures) -> RolloutResult:
    """Resolve the targets and run the rollout, as `orchestrator run` does."""
    plan = parse_plan(plan_text(cfg))
    clock = SystemClock()
    limiter = RateLimiter(clock, plan.limits.qps, burst=cfg.burst)
    if cfg.parallel_sends:
        # An experiment only: the constant is read when each wave's dispatch starts.
        _dispatcher.PARALLEL_SENDS = cfg.parallel_sends  # type: ignore[misc]
    diag = Probes()
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=30)
    session = aiohttp.ClientSession(timeout=timeout, trace_configs=[diag.trace])
    async with session:
        client = EcsClient(
            url,
            session,
            Credentials.of(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
            region_id="cn-hangzhou",
            clock=clock,
            rate_limiter=limiter,
        )
        before = Usage.self_()
        started = time.perf_counter()
        with paused_collector():  # as `orchestrator run` lists the fleet
            resolution = await resolve(plan.targets, plan.command.type, client)
        figures.resolve_s = time.perf_counter() - started
        after = Usage.self_()
        figures.resolve_cpu_s = after.cpu_s - before.cpu_s
        figures.resolve_peak_rss_mb = after.peak_rss_mb
        figures.resolve_calls = dict(limiter.stats().calls)
        figures.runnable = len(resolution.runnable)
        figures.resolve_round_trips = diag.round_trip_lines()
        diag.round_trips.clear()  # from here on: the rollout's calls only
        dispatched = DispatchTimes()
        started = time.perf_counter()
        # As `orchestrator run` runs it (`cli._execute`): what the targets step built is
        # frozen out of the collector's full scans for the run.
        with frozen_heap():
            result, figures.journal_transactions = await journaled_rollout(
                cfg, url, plan, client, resolution, sink=dispatched, diag=diag
            )
        figures.rollout_s = time.perf_counter() - started
        figures.sim_stats = await sim_stats(session, url)
    times = dispatched.times
    figures.batches = len(times)
    figures.bound_s = figures.batches / cfg.run_command_qps
    if times:
        gaps = [b - a for a, b in itertools.pairwise(times)]
        figures.window_s = times[-1] - times[0]
        figures.start_to_last_s = times[-1] - started
        figures.tail_s = figures.rollout_s - figures.start_to_last_s
        figures.max_gap_s = max(gaps, default=0.0)
        interval = 1 / cfg.run_command_qps
        figures.lost_in_gaps_s = sum(max(gap - interval, 0.0) for gap in gaps)
    figures.rollout_calls = dict(result.api_calls)
    figures.throttles = result.throttles
    figures.outcomes = {o.value: n for o, n in result.counts().items() if n}
    figures.halt = f"{result.halt.reason} {result.halt.code}" if result.halt else ""
    figures.diagnostics = diag.lines()
    return result


async def journaled_rollout(
    cfg: Config,
    url: str,
    plan: Plan,
    client: EcsClient,
    resolution: Resolution,
    *,
    sink: DispatchTimes,
    diag: Probes,
) -> tuple[RolloutResult, int]:
    """The rollout, journaled as `orchestrator run` journals it (every ClientToken on
    disk before its send); the result and the journal's transactions."""
    header = RunHeader(
        run_id="bench",
        plan_name=plan.name,
        plan_path="bench.yaml",
        plan_text=plan_text(cfg),
        plan_sha256="-",
        target={"endpoint": url, "region": "cn-hangzhou"},
        created_at=datetime.now(UTC),
        instances=resolution.runnable,
        skipped=resolution.skipped,
        waves=(),
    )
    with tempfile.TemporaryDirectory() as state:
        async with create_journal(journal_path(Path(state), "bench"), header) as journal:

            def both(event: Event) -> None:
                sink(event)
                journal(event)

            async with anyio.create_task_group() as ticker:
                ticker.start_soon(diag.tick)
                with diag.watching_gc():
                    result = await run_rollout(
                        plan,
                        client,
                        resolution.runnable,
                        run_id="bench",
                        clock=SystemClock(),  # the client paces on one as well
                        sink=both,
                        hooks=journal,
                    )
                ticker.cancel_scope.cancel()
        return result, journal.transactions


def describe(calls: dict[str, int], actions: tuple[str, ...] = ()) -> int:
    """Describe* calls in `calls` (only `actions`, when given)."""
    return sum(
        n for a, n in calls.items() if a.startswith("Describe") and (not actions or a in actions)
    )


def report(cfg: Config, f: Figures, base: Usage, end: Usage, sim: Usage | None) -> bool:
    """Print the figures, each against its target; True when every target holds."""
    n = max(f.instances, 1)
    # The bound is batches / QPS; N batches paced at QPS span (N - 1) / QPS from the
    # first acceptance to the last, so that is what the window is compared with.
    ideal = max(f.batches - 1, 0) / cfg.run_command_qps
    fraction = ideal / f.window_s if f.window_s > 0 else 0.0
    from_start = f.bound_s / f.start_to_last_s if f.start_to_last_s > 0 else 0.0
    tracking = describe(f.rollout_calls, _TRACKING) / n
    in_rollout = describe(f.rollout_calls) / n
    in_resolve = describe(f.resolve_calls) / n
    tool_cpu = end.cpu_s - base.cpu_s
    ok_outcomes = f.outcomes == {Outcome.SUCCEEDED.value: f.instances} and not f.halt
    ok_fraction = fraction >= TARGET_FRACTION
    ok_describe = tracking <= TARGET_DESCRIBE_PER_INSTANCE
    ok_rss = end.peak_rss_mb <= TARGET_PEAK_RSS_MB
    halt = f" halt: {f.halt}" if f.halt else ""
    lines = [
        (
            f"fleet: {f.instances} instances, {f.runnable} runnable; "
            f"RunCommand {cfg.run_command_qps:g}/s, Describe {cfg.describe_qps:g}/s, "
            f"batch {cfg.batch_size}, latency {cfg.latency:g} s, "
            f"simulator throttle {cfg.sim_qps:g}/s per action"
            + (f"; EXPERIMENT burst {cfg.burst:g}" if cfg.burst != 1 else "")
            + (f"; EXPERIMENT parallel sends {cfg.parallel_sends}" if cfg.parallel_sends else "")
        ),
        f"outcomes: {f.outcomes}{halt}  [{mark(ok_outcomes)}]",
        (
            f"resolve: {f.resolve_s:.1f} s, CPU {f.resolve_cpu_s:.1f} s, peak RSS after it "
            f"{f.resolve_peak_rss_mb:.1f} MB; {listed(f.resolve_calls)}"
        ),
        (
            f"rollout: {f.rollout_s:.1f} s; {listed(f.rollout_calls)}; throttled {f.throttles}; "
            f"journal: {f.journal_transactions} transactions"
        ),
        f"batches: {f.batches}; bound {f.bound_s:.2f} s (batches / RunCommand QPS)",
        (
            f"dispatch window (first to last BatchDispatched): {f.window_s:.2f} s "
            f"(ideal {ideal:.2f} s); longest gap {f.max_gap_s * 1000:.0f} ms; "
            f"{f.lost_in_gaps_s:.2f} s lost in gaps longer than 1/QPS"
        ),
        (
            f"dispatch rate / bound: {fraction:.3f} (target >= {TARGET_FRACTION})  "
            f"[{mark(ok_fraction)}]"
        ),
        f"  bound / (rollout start to last dispatch): {from_start:.3f}",
        (
            f"tail (last dispatch to the rollout's end): {f.tail_s:.2f} s; commands take "
            f"{cfg.duration_min:g}-{cfg.duration_max:g} s after a {cfg.delivery_delay:g} s delivery"
        ),
        (
            f"Describe calls per instance, tracking (DescribeInvocations + Results): "
            f"{tracking:.4f} (target <= {TARGET_DESCRIBE_PER_INSTANCE})  [{mark(ok_describe)}]"
        ),
        (
            f"  rollout incl. quota check: {in_rollout:.4f}; targets step: {in_resolve:.4f}; "
            f"total: {in_rollout + in_resolve:.4f}"
        ),
        (
            f"peak RSS: {end.peak_rss_mb:.1f} MB (idle with imports {base.peak_rss_mb:.1f} MB, "
            f"tool +{end.peak_rss_mb - base.peak_rss_mb:.1f} MB) "
            f"(target <= {TARGET_PEAK_RSS_MB:g} MB)  [{mark(ok_rss)}]"
        ),
        (
            f"CPU: {end.cpu_s:.1f} s user+sys (imports {base.cpu_s:.2f} s, tool {tool_cpu:.1f} s "
            f"= {tool_cpu / n * 1e6:.0f} us per instance; the rollout "
            f"{tool_cpu - f.resolve_cpu_s:.1f} s)"
        ),
        f"wall: {f.wall_s:.1f} s total (simulator start included)",
        f"orchestrator imported from {Path(orchestrator.__file__).parent}",
        "diagnostics, resolve:",
        *f.resolve_round_trips,
        "diagnostics, rollout:",
        *f.diagnostics,
    ]
    if sim is not None:
        lines.append(f"simulator process: peak RSS {sim.peak_rss_mb:.1f} MB, CPU {sim.cpu_s:.1f} s")
    lines.append(f"simulator saw: {json.dumps(f.sim_stats, sort_keys=True)}")
    say(*lines)
    return ok_outcomes and ok_fraction and ok_describe and ok_rss


def parse_args(argv: list[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--instances", type=int, default=10_000, help="fleet size (default 10000)")
    p.add_argument("--qps", type=float, default=20.0, help="plan RunCommand QPS (default 20)")
    p.add_argument("--describe-qps", type=float, default=50.0, help="plan Describe QPS (50)")
    p.add_argument("--batch-size", type=int, default=50, help="instances per RunCommand (50)")
    p.add_argument("--latency", type=float, default=0.02, help="API latency, seconds (0.02)")
    p.add_argument(
        "--sim-qps", type=float, default=0.0, help="simulator throttle per action (5 x plan QPS)"
    )
    p.add_argument(
        "--duration", type=float, nargs=2, default=(1.0, 2.0), metavar=("MIN", "MAX"),
        help="command duration range, seconds (1 2)",
    )  # fmt: skip
    p.add_argument(
        "--delivery-delay", type=float, default=0.2, help="Pending to Running, seconds (0.2)"
    )
    p.add_argument("--profile", type=Path, help="write cProfile stats of the run here")
    p.add_argument("--json", type=Path, dest="json_out", help="also write the figures as JSON")
    p.add_argument("--burst", type=float, default=1.0, help="experiment: rate limiter burst")
    p.add_argument(
        "--parallel-sends", type=int, default=0, help="experiment: RunCommands in the air"
    )
    a = p.parse_args(argv)
    sim_qps = a.sim_qps or 5 * max(a.qps, a.describe_qps)
    return Config(
        a.instances, a.qps, a.describe_qps, a.batch_size, a.latency, sim_qps,
        a.duration[0], a.duration[1], a.delivery_delay, a.profile, a.json_out,
        a.burst, a.parallel_sends,
    )  # fmt: skip


def run_profiled(cfg: Config, url: str, figures: Figures) -> None:
    """The run itself; under cProfile (stats written to `cfg.profile`) when asked."""
    if cfg.profile is None:
        anyio.run(run_once, cfg, url, figures)
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        anyio.run(run_once, cfg, url, figures)
    finally:
        profiler.disable()
    profiler.dump_stats(cfg.profile)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    say(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    base = Usage.self_()  # an idle interpreter with every import done
    figures = Figures(cfg.instances)
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="bench-rollout-") as tmp,
        simulator(fleet_of(cfg), Path(tmp)) as sim_process,
    ):
        run_profiled(cfg, sim_process.url, figures)
        sim = sim_process.usage()
    figures.wall_s = time.perf_counter() - started
    end = Usage.self_()
    ok = report(cfg, figures, base, end, sim)
    if cfg.json_out:
        data = {
            "config": {k: str(v) for k, v in slots_of(cfg).items()},
            "figures": slots_of(figures),
            "baseline": slots_of(base),
            "end": slots_of(end),
            "simulator": slots_of(sim) if sim else None,
        }
        cfg.json_out.write_text(json.dumps(data, indent=2, sort_keys=True))
    return 0 if ok else 1


def slots_of(obj: object) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in getattr(obj, "__slots__", ())}


if __name__ == "__main__":
    sys.exit(main())
