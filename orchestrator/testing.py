"""Helpers for testing code built on orchestrator: a clock you move by hand.

Our own tests use these first; they are public so that users' tests can too.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import anyio

__all__ = ["ManualClock"]

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class ManualClock:
    """A `Clock` whose time moves only when told to.

    `advance(seconds)` moves time and wakes every sleeper whose deadline has come. With
    `autojump=True`, a `sleep` moves time forward by itself instead of waiting: right for
    a test in which the code under test is the only sleeper (a client backing off), so
    the test needs no other task to drive time. Time never moves on its own, so exact
    assertions on it hold (`assert clock.monotonic() == 1.5`).
    """

    def __init__(self, start: datetime = _EPOCH, *, autojump: bool = False) -> None:
        self._start = start
        self._now = 0.0
        self.autojump = autojump
        self._sleepers: list[tuple[float, anyio.Event]] = []
        self.slept: list[float] = []  # every sleep asked for, in order

    def monotonic(self) -> float:
        return self._now

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._now)

    async def sleep(self, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        self.slept.append(seconds)
        if self.autojump:
            self.advance(seconds)
            await anyio.lowlevel.checkpoint()
            return
        deadline = self._now + seconds
        if deadline <= self._now:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        self._sleepers.append((deadline, event))
        await event.wait()

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds` and wake the sleepers that are due."""
        if seconds < 0 or math.isnan(seconds):
            raise ValueError("time only moves forward")
        self._now += seconds
        due = [(d, e) for d, e in self._sleepers if d <= self._now]
        self._sleepers = [(d, e) for d, e in self._sleepers if d > self._now]
        for _, event in due:
            event.set()
