"""Benchmark: long commands (30-40 s): the tool's API calls against a threaded SDK script
that polls each batch every second.

`python tests/bench/bench_long.py` (from the repository root, the project installed
editable). The side-by-side setup (bench_side_by_side.py: one simulator, 2,000 instances,
20 ms latency, the same throttle) with 30-40 s commands; the tool (`orchestrator run`, a
subprocess, default limits) and then sdk_scripts.py threaded (8 workers) run in turn.
It prints each one's calls and the ratio tool / threaded (target <= 1/5); the plain
script is left out (40 batches one after the other: about half an hour). Call counts do
not depend on the machine; the wall times printed beside them are indicative.
"""

from __future__ import annotations

import sys

from tests.bench.bench_side_by_side import compete, parser
from tests.bench.harness import mark, say

TARGET_CALL_RATIO = 1 / 5


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.split("\n\n")[0] if __doc__ else "", duration=(30.0, 40.0))
    args = p.parse_args(argv)
    tool_run, threaded = compete(args, ("tool", "threaded"))
    ratio = tool_run.total_calls / max(threaded.total_calls, 1)
    ok = ratio <= TARGET_CALL_RATIO
    say(
        f"calls, tool / threaded script: {tool_run.total_calls} / {threaded.total_calls} = "
        f"{ratio:.3f} (target <= {TARGET_CALL_RATIO:.2f})  [{mark(ok)}]",
        f"wall, threaded / tool: {threaded.wall_s / max(tool_run.wall_s, 1e-9):.2f}x",
    )
    return 0 if ok and tool_run.ok and threaded.ok else 1


if __name__ == "__main__":
    sys.exit(main())
