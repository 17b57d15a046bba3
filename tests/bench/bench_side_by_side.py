"""Benchmark: the tool against the official-SDK scripts a user writes today, end to end.

`python tests/bench/bench_side_by_side.py` (from the repository root, the project
installed editable). One simulator process serves a generated fleet (2,000 instances,
1-2 s commands, 20 ms latency) and throttles every action per access key, RunCommand
lower than the rest (`--sim-qps`, `--sim-run-command-qps`), below the tool's default rates
so that its AIMD limiter has to find the rate. Against it, in turn: the tool, exactly as
`orchestrator run PLAN --endpoint URL` runs it (a subprocess, the plan at default limits,
timed from start to exit), then sdk_scripts.py plain (one thread) and threaded (8
workers). Each must end with every instance succeeded, exactly once (the simulator's
executions say so). It prints each one's wall time and calls, and the ratios against
their targets (>= 10x plain, >= 2.5x threaded). Timings are indicative: a shared
machine, one run each.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from tests.bench.contenders import Contender, lines, measure, sdk_script, tool
from tests.bench.harness import FleetSpec, mark, per_action_throttle, say, simulator

if TYPE_CHECKING:
    from collections.abc import Sequence

TARGET_VS_PLAIN = 10.0
TARGET_VS_THREADED = 2.5
CONTENDERS = ("tool", "plain", "threaded")


def parser(description: str, *, duration: tuple[float, float]) -> argparse.ArgumentParser:
    """The options the side-by-side and long modes share."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--instances", type=int, default=2000, help="fleet size (2000)")
    p.add_argument("--latency", type=float, default=0.02, help="API latency, seconds (0.02)")
    p.add_argument(
        "--duration", type=float, nargs=2, default=duration, metavar=("MIN", "MAX"),
        help=f"command duration range, seconds ({duration[0]:g} {duration[1]:g})",
    )  # fmt: skip
    p.add_argument(
        "--sim-qps", type=float, default=50.0,
        help="simulator throttle per action and key, calls/s (50; 0: none)",
    )  # fmt: skip
    p.add_argument(
        "--sim-run-command-qps", type=float, default=20.0,
        help="simulator throttle of RunCommand, calls/s (20)",
    )  # fmt: skip
    p.add_argument("--workers", type=int, default=8, help="threads of the threaded script (8)")
    return p


def fleet_of(args: argparse.Namespace) -> FleetSpec:
    throttle = per_action_throttle(args.sim_qps, {"RunCommand": args.sim_run_command_qps})
    return FleetSpec(
        args.instances, latency=args.latency, throttle=throttle, duration=tuple(args.duration)
    )


def compete(args: argparse.Namespace, names: Sequence[str]) -> list[Contender]:
    """Run the named contenders in turn against one simulator; print each as it ends."""
    fleet = fleet_of(args)
    say(
        f"fleet: {fleet.instances} instances, commands {fleet.duration[0]:g}-"
        f"{fleet.duration[1]:g} s, latency {fleet.latency:g} s, simulator throttle "
        f"{fleet.throttle} per access key; the tool at its default rates"
    )
    done: list[Contender] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-side-by-side-") as tmp,
        simulator(fleet, Path(tmp)) as sim,
    ):
        for name in names:
            if name == "tool":
                run = tool(Path(tmp) / "tool")
            else:
                run = sdk_script(args.workers if name == "threaded" else 1)
            contender = measure(
                name, sim.url, run, instances=fleet.instances, runs_before=len(done)
            )
            done.append(contender)
            say(*lines(contender))
        usage = sim.usage()
        if usage is not None:
            say(f"simulator process: peak RSS {usage.peak_rss_mb:.0f} MB, CPU {usage.cpu_s:.1f} s")
    return done


def ratio_line(tool_run: Contender, other: Contender, target: float) -> tuple[str, bool]:
    speedup = other.wall_s / tool_run.wall_s if tool_run.wall_s > 0 else 0.0
    ok = speedup >= target
    calls = other.total_calls / max(tool_run.total_calls, 1)
    line = (
        f"tool vs {other.name}: {speedup:.2f}x faster (target >= {target:g}x)  [{mark(ok)}]; "
        f"{other.name} makes {calls:.2f}x the tool's calls"
    )
    return line, ok


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.split("\n\n")[0] if __doc__ else "", duration=(1.0, 2.0))
    p.add_argument(
        "--only", action="append", choices=CONTENDERS,
        help="run only this contender (repeat for more; default: all three)",
    )  # fmt: skip
    args = p.parse_args(argv)
    names = tuple(n for n in CONTENDERS if n in (args.only or CONTENDERS))
    contenders = {c.name: c for c in compete(args, names)}
    ok = all(c.ok for c in contenders.values())
    tool_run = contenders.get("tool")
    targets = {"plain": TARGET_VS_PLAIN, "threaded": TARGET_VS_THREADED}
    for name, target in targets.items():
        if tool_run is not None and name in contenders:
            line, met = ratio_line(tool_run, contenders[name], target)
            say(line)
            ok = ok and met
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
