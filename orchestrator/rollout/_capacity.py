"""The cap on instances executing at once (`limits.max_concurrency`, or a wave's own).

An instance holds a slot from the moment its batch is about to be sent until the tracker
sees it done (or gives up on it); a batch waits until enough slots are free. Waiting is
event-driven: every release wakes the one waiter, which re-checks; nothing polls.
"""

from __future__ import annotations

import anyio


class ExecutionSlots:
    """`limit` slots (None: no cap). `peak` is the most ever held at once."""

    def __init__(self, limit: int | None) -> None:
        if limit is not None and limit < 1:
            raise ValueError("the concurrency cap must be >= 1")
        self.limit = limit
        self.in_use = 0
        self.peak = 0
        self._released = anyio.Event()

    def __repr__(self) -> str:
        return f"<ExecutionSlots {self.in_use}/{self.limit if self.limit is not None else '-'}>"

    def resize(self, limit: int | None) -> None:
        """A new cap, between waves (a wave's `max_concurrency` overrides the plan's)."""
        if limit is not None and limit < 1:
            raise ValueError("the concurrency cap must be >= 1")
        self.limit = limit
        released, self._released = self._released, anyio.Event()
        released.set()  # a waiter re-checks against the new cap

    async def acquire(self, count: int) -> None:
        """Wait until `count` more instances may execute, then take their slots."""
        if self.limit is not None:
            if count > self.limit:
                raise ValueError(f"a batch of {count} cannot fit under a cap of {self.limit}")
            while self.in_use + count > self.limit:
                released = self._released
                await released.wait()
        else:
            await anyio.lowlevel.checkpoint()
        self.in_use += count
        self.peak = max(self.peak, self.in_use)

    def take(self, count: int) -> None:
        """Take `count` slots at once, over the cap if need be: for instances already
        executing (an earlier attempt of the run sent them), which do hold capacity."""
        self.in_use += count
        self.peak = max(self.peak, self.in_use)

    def release(self, count: int = 1) -> None:
        """Give `count` slots back (instances done, refused, or never sent)."""
        if count > self.in_use:
            raise ValueError("released more slots than were taken")
        self.in_use -= count
        released, self._released = self._released, anyio.Event()
        released.set()
