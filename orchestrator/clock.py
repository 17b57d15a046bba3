"""The one place that says what time it is and how to wait for it.

Policy time (backoff, polling, pauses, simulated agents, throttle windows) goes through
a `Clock`, so tests and the simulator can run it faster or by hand. I/O deadlines on
real sockets stay with anyio cancel scopes.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

import anyio


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
    """

    def __init__(self, time_scale: float) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.time_scale = time_scale
        self._real_origin = time.monotonic()
        self._wall_origin = datetime.now(UTC)

    def monotonic(self) -> float:
        return (time.monotonic() - self._real_origin) / self.time_scale

    def now(self) -> datetime:
        return self._wall_origin + timedelta(seconds=self.monotonic())

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(seconds, 0.0) * self.time_scale)
