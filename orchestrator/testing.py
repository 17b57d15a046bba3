"""Helpers for testing code built on orchestrator: a clock you move by hand, and a
simulator with a client already pointed at it.

Our own tests use these first; they are public so that users' tests can too.
"""

from __future__ import annotations

import math
import random
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import aiohttp
import anyio

from orchestrator.clock import Clock, ScaledClock
from orchestrator.ecs import Credentials, EcsClient, RateLimiter
from orchestrator.sim import FleetSpec, RunningSimulator, load_fleet, serve

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["ManualClock", "Simulated", "simulated"]

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


@dataclass(frozen=True, slots=True)
class Simulated:
    """A running simulator and a client of it that share one clock."""

    sim: RunningSimulator
    client: EcsClient
    clock: Clock
    limiter: RateLimiter


@asynccontextmanager
async def simulated(
    fleet: FleetSpec | str,
    *,
    clock: Clock | None = None,
    request_timeout: float | None = None,
    seed: int = 0,
) -> AsyncIterator[Simulated]:
    """Serve `fleet` (a spec or fleet-file text) on 127.0.0.1 and hand back a rate-limited
    client signed with its key. Both run on `clock` (default: the fleet's scaled clock),
    so whole rollouts finish in a fraction of their simulated time."""
    spec = load_fleet(fleet) if isinstance(fleet, str) else fleet
    shared: Clock = clock if clock is not None else ScaledClock(spec.time_scale)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=5)
    async with serve(spec, clock=shared) as sim, aiohttp.ClientSession(timeout=timeout) as http:
        limiter = RateLimiter(shared)
        client = EcsClient(
            sim.url,
            http,
            Credentials.of(sim.access_key_id, sim.access_key_secret),
            region_id=sim.region,
            clock=shared,
            rng=random.Random(seed),  # noqa: S311 - reproducible jitter, not a secret
            rate_limiter=limiter,
            request_timeout=request_timeout,
        )
        yield Simulated(sim, client, shared, limiter)
