"""The live display on a terminal: rates, the wave's ETA and the latest failures on the
run's clock, at a height that never changes however many instances finish; and the plain
lines it prints off a terminal when plain text is asked for."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from orchestrator.cli._progress import ProgressDisplay
from orchestrator.clock import ScaledClock
from orchestrator.plan import Amount
from orchestrator.rollout import (
    ApprovalGranted,
    ApprovalRequested,
    BatchDispatched,
    GateDecided,
    GateDecision,
    InstanceFinished,
    InstanceResult,
    Outcome,
    Throttled,
    Verdict,
    WaveFinished,
    WavePaused,
    WaveStarted,
)
from orchestrator.testing import ManualClock

AT = datetime(2026, 1, 1, tzinfo=UTC)
HEIGHT = 8  # one wave bar, the pace line, the failure table's header and five rows


def terminal() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=100)


def log_console() -> Console:
    return Console(file=io.StringIO(), force_terminal=False, width=120)


def rendered(display: ProgressDisplay) -> list[str]:
    """The display's current frame, as the lines a 100-column terminal would show."""
    probe = Console(file=io.StringIO(), width=100)
    probe.print(display)
    return printed(probe).splitlines()


def printed(console: Console) -> str:
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def drawing(display: ProgressDisplay) -> bool:
    """Whether the live display is on the screen now."""
    return display._screen.is_started


def result(n: int, outcome: Outcome, **fields: Any) -> InstanceResult:
    return InstanceResult(f"i-{n:05d}", outcome, wave="canary", invoke_id="t-1", **fields)


def batch(first: int, count: int) -> BatchDispatched:
    ids = tuple(f"i-{n:05d}" for n in range(first, first + count))
    return BatchDispatched(0, first // 100, "", "tok", f"t-{first}", ids, AT)


def failure(n: int) -> InstanceFinished:
    output = f"starting\nstep {n}\n  Error: disk full on /dev/sda{n}  \n\n"
    return InstanceFinished(
        result(n, Outcome.FAILED, exit_code=n % 7 + 1, error_code="ExitCodeNonzero", output=output)
    )


def test_rates_eta_and_latest_failures_appear():
    clock = ManualClock()
    calls = [40]  # calls made before the run: not part of its rate
    display = ProgressDisplay(terminal(), clock=clock, api_calls=lambda: calls[0])
    display(WaveStarted(0, "canary", 1000, 10, AT))
    for first in range(0, 300, 100):
        display(batch(first, 100))
    for n in range(200):
        display(InstanceFinished(result(n, Outcome.SUCCEEDED)))
    for n in range(200, 206):
        display(failure(n))
    display(Throttled("RunCommand", 5.0))
    display(Throttled("RunCommand", 2.5))
    calls[0] += 120
    clock.advance(10)
    frame = "\n".join(rendered(display))
    assert "dispatch 30.0/s" in frame  # 300 instances in 10 s
    assert "API 12.0/s (160 calls)" in frame
    assert "throttled 2" in frame
    assert "ETA canary 0:00:39" in frame  # 794 left at 20.6 a second: 38.5 s
    failures = [line.split() for line in rendered(display) if line.startswith("i-")]
    # The last five, each with its exit code, error code and last output line.
    assert [row[0] for row in failures] == [f"i-{n:05d}" for n in range(201, 206)]
    assert failures[-1][1:] == [
        "3",
        "ExitCodeNonzero",
        "Error:",
        "disk",
        "full",
        "on",
        "/dev/sda205",
    ]


def test_on_a_scaled_clock_elapsed_time_and_eta_are_real_rates_per_clock_second():
    """On the simulator's clock (here twice as fast as real time: 5 real seconds are 10 of
    its seconds) a person sees how long they waited and will wait; rates stay per second
    of the run's clock, the unit of the plan's qps limits."""
    waited = [0.0]
    clock = ScaledClock(0.5, real_time=lambda: waited[0])
    display = ProgressDisplay(terminal(), clock=clock)
    display(WaveStarted(0, "canary", 1000, 10, AT))
    for first in range(0, 300, 100):
        display(batch(first, 100))
    for n in range(206):
        display(InstanceFinished(result(n, Outcome.SUCCEEDED)))
    waited[0] = 5.0
    assert clock.monotonic() == 10.0
    bar, pace = rendered(display)[:2]
    assert bar.endswith("0:00:05")  # not 0:00:10
    assert "dispatch 30.0/s" in pace  # 300 instances in 10 s of the clock
    assert "ETA canary 0:00:19" in pace  # 794 left at 20.6 a clock second: 38.5 s, 19.3 real


def test_on_a_scaled_clock_a_pause_says_how_long_it_really_is():
    """A plan's `pause: 30s` on the demo fleet's clock (time_scale 0.05) lasts 1.5 s; its
    `until` is on the simulator's clock, which runs ahead of the person's."""
    console = log_console()
    display = ProgressDisplay(console, clock=ScaledClock(0.05))
    display(WavePaused(0, "canary", 30.0, AT))
    assert printed(console).strip() == (
        "pause after wave canary: 30 s of the simulator's clock (1.5 s real time)"
    )
    real = log_console()
    ProgressDisplay(real, clock=ManualClock())(WavePaused(0, "canary", 30.0, AT))
    assert printed(real).strip() == "pause after wave canary: 30 s, until 00:00:00Z"


def test_rates_cover_the_last_ten_seconds():
    """A burst long ago no longer counts: with nothing sent lately the rate falls to 0."""
    clock = ManualClock()
    display = ProgressDisplay(terminal(), clock=clock)
    display(WaveStarted(0, "canary", 200, 2, AT))
    display(batch(0, 100))
    clock.advance(5)
    assert "dispatch 20.0/s" in rendered(display)[1]
    display(batch(100, 100))
    clock.advance(5)
    assert "dispatch 20.0/s" in rendered(display)[1]
    clock.advance(20)
    assert "dispatch 0.0/s" in rendered(display)[1]
    assert "ETA canary —" in rendered(display)[1]  # nothing finishes: no forecast
    assert "API" not in rendered(display)[1]  # no call counter given


def test_the_eta_says_done_when_the_wave_is_complete():
    clock = ManualClock()
    display = ProgressDisplay(terminal(), clock=clock)
    display(WaveStarted(0, "canary", 3, 1, AT))
    for n in range(3):
        display(InstanceFinished(result(n, Outcome.SUCCEEDED)))
    clock.advance(1)
    assert "ETA canary done" in rendered(display)[1]


def test_the_height_stays_fixed_for_ten_thousand_instances():
    """Long outputs, long codes, every outcome: each line is cut, never wrapped."""
    clock = ManualClock()
    display = ProgressDisplay(terminal(), clock=clock, api_calls=lambda: 10**9)
    display(WaveStarted(0, "a-wave-with-a-long-name-indeed", 10_000, 100, AT))
    assert len(rendered(display)) == HEIGHT
    outcomes = list(Outcome)
    heights = set()
    for n in range(10_000):
        if n % 100 == 0:
            display(batch(n, 100))
            clock.advance(0.5)
        outcome = outcomes[n % len(outcomes)]
        display(
            InstanceFinished(
                InstanceResult(
                    f"i-{n:05d}-" + "z" * (n % 40),
                    outcome,
                    wave="a-wave-with-a-long-name-indeed",
                    exit_code=n,
                    error_code="InvocationTimeout.ExecutionTimeoutExceededByFar" * (n % 3),
                    output=("a very long line of output " * 20 + "\n") * (n % 4),
                    error_info="why " * 50,
                )
            )
        )
        if n % 500 == 0:
            heights.add(len(rendered(display)))
    assert heights == {HEIGHT}
    assert "10000/10000" in rendered(display)[0]


def test_the_live_display_runs_and_stands_aside_for_a_prompt():
    console = terminal()
    clock = ManualClock()
    decision = GateDecision(0, "canary", 2, Amount(0), 0, 1, Verdict.BREACH, "the (T+1)-th")
    with ProgressDisplay(console, clock=clock) as display:
        assert drawing(display)
        display(WaveStarted(0, "canary", 2, 1, AT))
        display(failure(1))
        display(ApprovalRequested("r-1", 0, "canary", "approval", "press y", AT))
        assert not drawing(display)  # a person is asked: no redraw over it
        display(ApprovalGranted(0, "canary", AT))
        assert drawing(display)
        display(GateDecided(decision))
    assert not drawing(display)
    out = printed(console)
    assert "waiting for approval of wave canary" in out
    assert "gate canary: breach" in out
    assert "i-00001" in out  # the last frame stays on the screen
    assert "latest failures" in out


def test_plain_lines_off_a_terminal_in_console_format():
    """What CI printed before structured logs, kept for `--log-format console` (and `-v`)."""
    console = log_console()
    with ProgressDisplay(console, verbose=True, clock=ManualClock()) as display:
        display(WaveStarted(0, "canary", 100, 1, AT))
        display(batch(0, 100))
        display(failure(3))
        display(WaveFinished(0, "canary", {Outcome.FAILED: 1}, AT))
    out = printed(console)
    assert "wave canary: 100 instances in 1 batches" in out
    assert "batch 0/0: 100 instances, t-0" in out
    assert "i-00003: failed exit 4" in out
    assert "wave canary done: 0 ok, 1 failed" in out
    assert "dispatch" not in out  # no live display in a log
