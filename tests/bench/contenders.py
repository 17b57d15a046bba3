"""The contenders of the side-by-side and long modes, each run against the same simulator
process and measured the same way: the tool as `orchestrator run` (a real subprocess, the
plan at default limits), and the official-SDK scripts of sdk_scripts.py.

Each contender's figures come from two sides: its own count of the calls it sent, and
the simulator's /_sim/stats before and after it (the difference is its share). After each
one, /_sim/executions must show every instance started exactly once more: nothing ran
twice, nothing was left out.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeAlias

from orchestrator.sim import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from tests.bench.harness import (
    REGION,
    TAG,
    Usage,
    api_calls_of,
    executions_sync,
    minus,
    sim_stats_sync,
    throttles_of,
)
from tests.bench.sdk_scripts import rollout

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

# The plan the tool runs: one wave, the default batch size and, on purpose, no
# `limits.qps`: the comparison is at the tool's default rates.
PLAN = f"""\
name: side-by-side
region: {REGION}
targets:
  tags: {{{TAG[0]}: {TAG[1]}}}
command:
  content: "echo ok"
  timeout: 120
"""


@dataclass(frozen=True, slots=True)
class Figures:
    """What a contender says of its own run."""

    wall_s: float
    calls: Mapping[str, int]
    throttles: int
    succeeded: int
    detail: str


# A contender: given the simulator's URL, runs the whole rollout and reports on it.
Run: TypeAlias = "Callable[[str], Figures]"


@dataclass(frozen=True, slots=True)
class Contender:
    """One contender's run: wall time, calls (its own count and the simulator's), whether
    every instance succeeded exactly once, and a line of detail."""

    name: str
    wall_s: float
    calls: Mapping[str, int]
    sim_calls: Mapping[str, int]
    throttles: int
    sim_throttles: int
    succeeded: int
    exactly_once: bool
    detail: str = ""

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def ok(self) -> bool:
        return self.exactly_once and self.succeeded > 0


def tool(home: Path) -> Run:
    """The tool, its plan, state and report under `home`."""
    return lambda url: run_tool(url, home)


def run_tool(url: str, home: Path) -> Figures:
    """`python -m orchestrator run PLAN --endpoint URL`, timed from its start to its exit;
    calls, throttles and outcomes from its report.json."""
    home.mkdir(parents=True, exist_ok=True)
    plan = home / "plan.yaml"
    plan.write_text(PLAN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env |= {
        "HOME": str(home),
        "ALIBABA_CLOUD_ACCESS_KEY_ID": DEFAULT_ACCESS_KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": DEFAULT_ACCESS_KEY_SECRET,
    }
    command = [sys.executable, "-m", "orchestrator", "run", str(plan), "--endpoint", url]
    command += ["--state-dir", str(home / "state"), "--report-dir", str(home / "report")]
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [*command, "--verbose", "--log-format", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - started
    ended_at = datetime.now(UTC)
    if done.returncode != 0:
        raise SystemExit(f"orchestrator run exited {done.returncode}:\n{done.stderr[-2000:]}")
    report = json.loads((home / "report" / "report.json").read_text())
    usage = Usage.children()
    detail = (
        f"peak RSS {usage.peak_rss_mb:.0f} MB, CPU {usage.cpu_s:.1f} s (the CLI process); "
        f"{phases(done.stderr, started_at, ended_at)}"
    )
    api = report["api"]
    succeeded = int(report["counts"]["succeeded"])
    return Figures(wall, dict(api["calls"]), int(api["throttles"]), succeeded, detail)


def phases(log: str, started_at: datetime, ended_at: datetime) -> str:
    """Where the CLI's wall time went, from its JSON log lines' timestamps: start-up and
    the targets step (to `run.started`), dispatch (to the last `batch.dispatched`), the
    tail (to `run.finished`) and the exit (reports written, process gone)."""
    stamps: dict[str, datetime] = {}
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") in {
            "run.started",
            "batch.dispatched",
            "run.finished",
        }:
            stamps[entry["event"]] = datetime.fromisoformat(entry["timestamp"])
    if len(stamps) < 3:
        return "phases: not in the log"
    marks = [started_at, stamps["run.started"], stamps["batch.dispatched"]]
    marks += [stamps["run.finished"], ended_at]
    names = ("start-up + targets", "dispatch", "tail", "exit")
    pairs = itertools.pairwise(marks)
    spans = (f"{n} {(b - a).total_seconds():.1f} s" for n, (a, b) in zip(names, pairs, strict=True))
    return "phases: " + ", ".join(spans)


def sdk_script(workers: int) -> Run:
    """The SDK script with `workers` threads (1: plain), timed around the call."""

    def run(url: str) -> Figures:
        started = time.perf_counter()
        tally = rollout(url, workers=workers)
        wall = time.perf_counter() - started
        succeeded = sum(1 for s in tally.statuses.values() if s == "Success")
        return Figures(wall, dict(tally.calls), tally.throttles, succeeded, f"{workers} thread(s)")

    return run


def measure(
    name: str,
    url: str,
    run: Run,
    *,
    instances: int,
    runs_before: int,
) -> Contender:
    """Run one contender and check what it did through the simulator's eyes."""
    before = sim_stats_sync(url)
    own = run(url)
    after = sim_stats_sync(url)
    executions = executions_sync(url)
    once = len(executions) == instances and all(
        len(runs) == runs_before + 1 and set(runs.values()) == {1} for runs in executions.values()
    )
    return Contender(
        name,
        own.wall_s,
        own.calls,
        minus(api_calls_of(after), api_calls_of(before)),
        own.throttles,
        throttles_of(after) - throttles_of(before),
        own.succeeded,
        once and own.succeeded == instances,
        own.detail,
    )


def lines(contender: Contender) -> list[str]:
    """The contender's figures, for people."""
    c = contender
    calls = ", ".join(f"{a} {n}" for a, n in sorted(c.calls.items()))
    head = (
        f"{c.name}: {c.wall_s:.1f} s; {c.succeeded} succeeded, "
        f"exactly once: {'yes' if c.exactly_once else 'NO'}; {c.detail}"
    )
    counted = (
        f"  {c.total_calls} calls ({calls}); throttled {c.throttles}; the simulator "
        f"counted {sum(c.sim_calls.values())} calls, {c.sim_throttles} throttled"
    )
    return [head, counted]
