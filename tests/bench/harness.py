"""What every benchmark mode shares: the fleet file, the simulator in a process of its own,
and the probes (RSS, CPU, GC pauses, event-loop lag, per-action round trips, the
simulator's /_sim/stats).

The modes (bench_rollout.py, bench_targets.py, bench_side_by_side.py, bench_long.py) are
scripts run on demand from the repository root with the project installed editable
(`pip install -e .`, which puts the root on sys.path, so `tests.bench.harness` imports);
none is named `test_*`, so pytest never collects them. Every figure they print is a
wall-clock measurement on whatever machine runs them: indicative, never asserted.
"""

from __future__ import annotations

import gc
import os
import re
import resource
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import aiohttp
import anyio

if TYPE_CHECKING:
    from collections.abc import Iterator

ZONES = ("cn-hangzhou-h", "cn-hangzhou-i", "cn-hangzhou-j")
REGION = "cn-hangzhou"
TAG = ("bench", "rollout")
_URL = re.compile(r"listening on (http://\S+)")


@dataclass(frozen=True, slots=True)
class FleetSpec:
    """A generated fleet: N Running, online instances over three zones with one tag, on
    real time (time_scale 1), with a fixed latency and a throttle (a `throttle:` mapping
    in the simulator's fleet syntax, docs/simulator.md)."""

    instances: int
    latency: float = 0.02
    throttle: str = "{}"
    duration: tuple[float, float] = (1.0, 2.0)
    delivery_delay: float = 0.2

    def yaml(self) -> str:
        low, high = self.duration
        return f"""\
region: {REGION}
seed: 1
time_scale: 1
quotas: {{invocations_daily: {max(self.instances * 4, 10_000)}, commands: 500,
          max_instances_per_call: 50}}
throttle: {self.throttle}
faults: {{latency: {self.latency:g}}}
generate:
  - count: {self.instances}
    zones: [{", ".join(ZONES)}]
    tags: {{{TAG[0]}: {TAG[1]}}}
behaviour:
  default:
    duration: {{min: {low:g}, max: {high:g}}}
    delivery_delay: {self.delivery_delay:g}
    output: "ok\\n"
"""


def per_action_throttle(qps: float, per_action: dict[str, float] | None = None) -> str:
    """A `throttle:` mapping: `qps` per (action, key), bucket capacity = one second's worth."""
    if qps <= 0 and not per_action:
        return "{}"
    overrides = ", ".join(f"{a}: {r:g}" for a, r in sorted((per_action or {}).items()))
    return f"{{qps: {qps:g}, per_action: {{{overrides}}}}}"


class Simulator:
    """`python -m orchestrator sim --fleet FILE --port 0` in a process of its own (so the
    process under measurement is the tool alone); `url` read from its first lines."""

    def __init__(self, fleet: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", "orchestrator", "sim", "--fleet", str(fleet)]
        self.proc = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [*command, "--port", "0"], stdout=subprocess.PIPE, text=True, env=env
        )
        self.url = self._read_url()

    def _read_url(self) -> str:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # blocks until the fleet is built and the port bound
            found = _URL.search(line)
            if found:
                return found.group(1)
        self.proc.wait()
        raise SystemExit(f"the simulator exited ({self.proc.returncode}) without its URL")

    def usage(self) -> Usage | None:
        return Usage.of_pid(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@contextmanager
def simulator(fleet: FleetSpec, directory: Path) -> Iterator[Simulator]:
    """The fleet written to `directory`/fleet.yaml and a simulator serving it."""
    path = directory / "fleet.yaml"
    path.write_text(fleet.yaml())
    with Simulator(path) as sim:
        yield sim


async def sim_stats(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    """The simulator's own counts (/_sim/stats): calls and errors per action."""
    async with session.get(f"{url}/_sim/stats") as response:
        stats: dict[str, Any] = await response.json()
        return stats


def sim_stats_sync(url: str) -> dict[str, Any]:
    """`sim_stats` from synchronous code (the SDK scripts' side)."""

    async def fetch() -> dict[str, Any]:
        async with aiohttp.ClientSession() as session:
            return await sim_stats(session, url)

    return anyio.run(fetch)


def api_calls_of(stats: dict[str, Any]) -> dict[str, int]:
    """Requests per action the simulator answered (any outcome, throttles included)."""
    requests: dict[str, dict[str, int]] = stats.get("requests", {})
    return {action: sum(outcomes.values()) for action, outcomes in requests.items()}


def throttles_of(stats: dict[str, Any]) -> int:
    """Requests the simulator refused with Throttling."""
    requests: dict[str, dict[str, int]] = stats.get("requests", {})
    return sum(outcomes.get("Throttling", 0) for outcomes in requests.values())


def minus(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """Per-action counts of `after` less `before` (one script's share of the totals)."""
    return {a: n - before.get(a, 0) for a, n in after.items() if n - before.get(a, 0)}


def executions_sync(url: str) -> dict[str, dict[str, int]]:
    """The simulator's /_sim/executions: instance -> {invoke id: times it started}."""

    async def fetch() -> dict[str, dict[str, int]]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{url}/_sim/executions") as response,
        ):
            found: dict[str, dict[str, int]] = await response.json()
            return found

    return anyio.run(fetch)


@dataclass(frozen=True, slots=True)
class Usage:
    """Peak RSS (MB) and CPU seconds (user + sys) of a process so far."""

    peak_rss_mb: float
    cpu_s: float

    @staticmethod
    def self_() -> Usage:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return Usage(ru.ru_maxrss / 1024, ru.ru_utime + ru.ru_stime)  # KB on Linux

    @staticmethod
    def children() -> Usage:
        """Waited-for child processes (a CLI run as a subprocess), summed; peak = largest."""
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return Usage(ru.ru_maxrss / 1024, ru.ru_utime + ru.ru_stime)

    @staticmethod
    def of_pid(pid: int) -> Usage | None:
        """From /proc (Linux); None where it cannot be read."""
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        hwm = re.search(r"VmHWM:\s+(\d+) kB", status)
        return Usage(
            int(hwm.group(1)) / 1024 if hwm else 0.0, (int(stat[11]) + int(stat[12])) / ticks
        )


class Probes:
    """Where time can go in this process: API round trips per action (an aiohttp trace),
    garbage-collector pauses (gc.callbacks), and event-loop lag (a 10 ms ticker)."""

    def __init__(self) -> None:
        self.round_trips: dict[str, list[float]] = {}
        self.gc_pauses: list[tuple[int, float]] = []  # (generation, seconds)
        self.lag_max = 0.0
        self.lag_over_50ms = 0.0  # total lag in ticks that were more than 50 ms late
        self._gc_started = 0.0
        self.trace = aiohttp.TraceConfig()
        self.trace.on_request_start.append(self._request_start)
        self.trace.on_request_end.append(self._request_end)

    async def _request_start(self, _s: object, ctx: Any, params: Any) -> None:
        ctx.action = params.headers.get("x-acs-action", "")
        ctx.started = time.perf_counter()

    async def _request_end(self, _s: object, ctx: Any, _params: object) -> None:
        elapsed = time.perf_counter() - ctx.started
        if not ctx.action:
            return  # not an API call (the simulator's /_sim/stats)
        self.round_trips.setdefault(ctx.action, []).append(elapsed)

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_pauses.append((info["generation"], time.perf_counter() - self._gc_started))

    @contextmanager
    def watching_gc(self) -> Iterator[None]:
        gc.callbacks.append(self._gc)
        try:
            yield
        finally:
            gc.callbacks.remove(self._gc)

    async def tick(self) -> None:
        """Measure how late a 10 ms sleep wakes up, until cancelled.

        The sleep is the probe itself (event-loop lag is how late it wakes), not a wait
        for something to happen; this is a benchmark instrument, not a test."""
        while True:
            before = time.perf_counter()
            await anyio.sleep(0.01)
            late = time.perf_counter() - before - 0.01
            self.lag_max = max(self.lag_max, late)
            if late > 0.05:
                self.lag_over_50ms += late

    def round_trip_lines(self) -> list[str]:
        """p50 / p99 / max per action: the time to the answer's headers."""
        out = []
        for action, times in sorted(self.round_trips.items()):
            ordered = sorted(times)
            p50, p99 = ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.99)]
            out.append(
                f"  round trip {action}: n={len(ordered)} p50 {p50 * 1000:.0f} ms, "
                f"p99 {p99 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"
            )
        return out

    def lines(self) -> list[str]:
        out = self.round_trip_lines()
        full = [t for g, t in self.gc_pauses if g == 2]
        out.append(
            f"  gc: {len(self.gc_pauses)} collections, {sum(t for _, t in self.gc_pauses):.2f} s; "
            f"{len(full)} full, longest {max(full, default=0) * 1000:.0f} ms"
        )
        out.append(
            f"  event-loop lag: max {self.lag_max * 1000:.0f} ms, "
            f"{self.lag_over_50ms:.2f} s in ticks over 50 ms late"
        )
        return out


def listed(calls: dict[str, int]) -> str:
    """`Action n, Action n` in name order."""
    return ", ".join(f"{action} {n}" for action, n in sorted(calls.items()))


def mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def say(*lines: str) -> None:
    """The benchmark's output (stdout, a line each)."""
    print("\n".join(lines), flush=True)  # noqa: T201
