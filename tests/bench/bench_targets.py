"""Benchmark: the targets step alone (`targets.resolve` through the real client), at
20,000 and 100,000 instances, against its bound.

`python tests/bench/bench_targets.py [--instances 20000 100000] [--describe-qps R]`
(from the repository root, the project installed editable). For each fleet size a
simulator process of its own serves a generated fleet (20 ms latency, no throttle: the
client's own Describe rate is the only limit), and this process resolves the plan's tag
selector as `orchestrator run` does, with a rate-limited `EcsClient` on real time. It
prints the listing pages (DescribeInstances), the Cloud Assistant status calls, the bound
= (pages + status calls + DescribeZones) / Describe QPS, the measured time and their ratio (target
<= 1.25), with CPU, peak RSS, GC pauses and event-loop lag. Timings are indicative.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import anyio

from orchestrator.cli._heap import paused_collector
from orchestrator.clock import SystemClock
from orchestrator.ecs import DEFAULT_RATES, Credentials, EcsClient, RateLimiter
from orchestrator.plan import parse_plan
from orchestrator.sim import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from orchestrator.targets import resolve
from tests.bench.harness import REGION, TAG, FleetSpec, Probes, Usage, listed, mark, say, simulator

TARGET_RATIO = 1.25
PLAN = f"""\
name: bench-targets
region: {REGION}
targets:
  tags: {{{TAG[0]}: {TAG[1]}}}
command:
  content: "echo ok"
"""


@dataclass(frozen=True, slots=True)
class TargetsFigures:
    """One targets step: its calls, time, bound, and what it cost this process."""

    instances: int
    runnable: int
    calls: dict[str, int]
    describe_qps: float
    seconds: float
    cpu_s: float
    peak_rss_mb: float
    probes: list[str]

    @property
    def pages(self) -> int:
        return self.calls.get("DescribeInstances", 0)

    @property
    def status_calls(self) -> int:
        return self.calls.get("DescribeCloudAssistantStatus", 0)

    @property
    def other_calls(self) -> int:
        """DescribeZones, when the tag listing was split by zone (`tag_listing.py`)."""
        return self.calls.get("DescribeZones", 0)

    @property
    def bound_s(self) -> float:
        return (self.pages + self.status_calls + self.other_calls) / self.describe_qps

    @property
    def ratio(self) -> float:
        return self.seconds / self.bound_s if self.bound_s > 0 else 0.0


async def resolve_once(url: str, instances: int, describe_qps: float) -> TargetsFigures:
    """Resolve the tag selector once, as `orchestrator run` does, and measure it."""
    plan = parse_plan(PLAN)
    clock = SystemClock()
    limiter = RateLimiter(clock, {"Describe": describe_qps})
    probes = Probes()
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=30)
    async with aiohttp.ClientSession(timeout=timeout, trace_configs=[probes.trace]) as session:
        client = EcsClient(
            url,
            session,
            Credentials.of(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
            region_id=REGION,
            clock=clock,
            rate_limiter=limiter,
        )
        before = Usage.self_()
        async with anyio.create_task_group() as ticker:
            ticker.start_soon(probes.tick)
            # As `orchestrator run` lists the fleet: the collector paused (`cli._heap`).
            with probes.watching_gc(), paused_collector():
                started = time.perf_counter()
                resolution = await resolve(plan.targets, plan.command.type, client)
                seconds = time.perf_counter() - started
            ticker.cancel_scope.cancel()
        after = Usage.self_()
    return TargetsFigures(
        instances,
        len(resolution.runnable),
        dict(limiter.stats().calls),
        describe_qps,
        seconds,
        after.cpu_s - before.cpu_s,
        after.peak_rss_mb,
        probes.lines(),
    )


def report(f: TargetsFigures) -> bool:
    ok_ratio = f.ratio <= TARGET_RATIO
    ok_runnable = f.runnable == f.instances
    say(
        f"targets step, {f.instances} instances: {f.runnable} runnable  [{mark(ok_runnable)}]",
        f"  calls: {listed(f.calls)}",
        f"  listing pages {f.pages}, status calls {f.status_calls}, DescribeZones "
        f"{f.other_calls}; bound ({f.pages} + {f.status_calls} + {f.other_calls}) / "
        f"{f.describe_qps:g} per s = {f.bound_s:.2f} s",
        f"  measured {f.seconds:.2f} s; measured / bound {f.ratio:.2f} "
        f"(target <= {TARGET_RATIO})  [{mark(ok_ratio)}]",
        f"  CPU {f.cpu_s:.1f} s, peak RSS of this process {f.peak_rss_mb:.0f} MB",
        *f.probes,
    )
    return ok_ratio and ok_runnable


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument(
        "--instances", type=int, nargs="+", default=[20_000, 100_000],
        help="fleet sizes, one run each (20000 100000)",
    )  # fmt: skip
    p.add_argument(
        "--describe-qps", type=float, default=DEFAULT_RATES["Describe"],
        help=f"the client's Describe rate (default: the tool's, {DEFAULT_RATES['Describe']:g})",
    )  # fmt: skip
    p.add_argument("--latency", type=float, default=0.02, help="API latency, seconds (0.02)")
    args = p.parse_args(argv)
    ok = True
    for count in args.instances:
        with (
            tempfile.TemporaryDirectory(prefix="bench-targets-") as tmp,
            simulator(FleetSpec(count, latency=args.latency), Path(tmp)) as sim,
        ):
            figures = anyio.run(resolve_once, sim.url, count, args.describe_qps)
            ok = report(figures) and ok
            usage = sim.usage()
            if usage is not None:
                say(f"  simulator: peak RSS {usage.peak_rss_mb:.0f} MB, CPU {usage.cpu_s:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
