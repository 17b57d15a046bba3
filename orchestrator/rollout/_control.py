"""Ending a running rollout early, from outside it.

Two requests, as operators know them from Ansible and SSM: `drain()` (the first Ctrl-C,
or SIGTERM from a CI runner) stops dispatching and lets what already runs finish, so
every instance that ran has its result; `stop()` (`orchestrator stop RUN` from another
shell) also sends StopInvocation for everything still running. A drain can be escalated
to a stop, never the other way. The runner watches `RunControl.changed()`; whoever holds
the control (the CLI's signal handler, the stop-marker watcher, a test) calls the methods.
"""

from __future__ import annotations

import enum

import anyio


class Request(enum.IntEnum):
    """What was asked, in increasing force."""

    NONE = 0
    DRAIN = 1
    STOP = 2


class RunControl:
    """Requests to end a run early; `request` is the strongest one so far."""

    def __init__(self) -> None:
        self.request = Request.NONE
        self.reason = ""
        self._changed = anyio.Event()

    def drain(self, reason: str = "interrupted: dispatch stopped") -> None:
        """Send nothing more; let what runs finish."""
        self._raise_to(Request.DRAIN, reason)

    def stop(self, reason: str = "stopped by orchestrator stop") -> None:
        """Send nothing more, and stop what runs (StopInvocation)."""
        self._raise_to(Request.STOP, reason)

    def _raise_to(self, request: Request, reason: str) -> None:
        if request <= self.request:
            return
        self.request, self.reason = request, reason
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    async def changed(self, seen: Request) -> Request:
        """Wait until the request is stronger than `seen`; return it."""
        while self.request <= seen:
            await self._changed.wait()
        return self.request
