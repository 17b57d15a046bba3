"""The one place that says what time it is and how to wait for it.

Policy time (backoff, polling, pauses, simulated agents, throttle windows) goes through
a `Clock`, so tests and the simulator can run it faster or by hand. I/O deadlines on
real sockets stay with anyio cancel scopes. Times shown to people are real: a run on
the simulator's `ScaledClock` says so (`ClockInfo`), and its durations are converted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, Protocol

import anyio

if TYPE_CHECKING:
    from collections.abc import Callable


class Clock(Protocol):
    """What code that waits on policy time needs."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; only differences mean anything."""
        ...

    def now(self) -> datetime:
        """The current UTC wall time, timezone-aware."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time."""
        ...


class SystemClock:
    """Real time."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(seconds, 0.0))


class ScaledClock:
    """Time that runs `1 / time_scale` times faster than real time.

    With `time_scale=0.001` a 60 s sleep takes 60 ms. The wall time starts at the real
    time when the clock is made and advances at the scaled rate, so the timestamps the
    simulator reports stay plausible.

    `real_time` is where real seconds come from (`time.monotonic`); a test passes its own
    to have a clock whose real and scaled time differ by a known amount.
    """

    def __init__(
        self, time_scale: float, *, real_time: Callable[[], float] = time.monotonic
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.time_scale = time_scale
        self._real_time = real_time
        self._real_origin = real_time()
        self._wall_origin = datetime.now(UTC)

    def real_elapsed(self) -> float:
        """Real seconds since the clock was made (what a person waited)."""
        return self._real_time() - self._real_origin

    def monotonic(self) -> float:
        return self.real_elapsed() / self.time_scale

    def now(self) -> datetime:
        return self._wall_origin + timedelta(seconds=self.monotonic())

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(seconds, 0.0) * self.time_scale)


@dataclass(frozen=True, slots=True)
class ClockInfo:
    """Which clock a run's times are on, for whoever reads them: `real`, or `scaled`
    (the simulator's, `--sim`: one of its seconds is `time_scale` real seconds). A
    duration shown to a person is converted with `real_seconds`: 36 simulated seconds
    on the demo fleet's clock were 1.8 s of the person's time."""

    kind: Literal["real", "scaled"] = "real"
    time_scale: float = 1.0  # real seconds per second of the clock

    def real_seconds(self, seconds: float) -> float:
        """`seconds` of this clock's time, in real seconds."""
        return seconds * self.time_scale


REAL_CLOCK = ClockInfo()


def clock_info(clock: Clock) -> ClockInfo:
    """What `clock` is. Any clock but a `ScaledClock` counts as real: a test's
    hand-advanced clock has no real speed, and its seconds are taken as they are."""
    if isinstance(clock, ScaledClock):
        return ClockInfo("scaled", clock.time_scale)
    return REAL_CLOCK
