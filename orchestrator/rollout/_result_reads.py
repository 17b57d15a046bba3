"""Reading finished invocations' DescribeInvocationResults beside the polls, not between them.

When a listing shows every instance of an invocation done, its records (the output) are
read once. Those reads run in tasks of their own, at most `RESULTS_IN_FLIGHT` at once
(each attempt still waits for the client's rate limiter), so a wave whose last batches
end together has them read in parallel, and the next poll is not held back by them:
a 0.25 s poll would otherwise wait behind twenty reads. Each invocation is handed over
(`on_read`) as soon as its own records are in, so its results reach the ledger in the
order they do today (the instance's `settled` first, from the listing, then its output
and its result). A read that fails is kept (`take_failure`): the tracker treats it as a
failed poll (the outage rules), and the next poll starts the read again.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

import anyio

from orchestrator.errors import OrchestratorError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from anyio.abc import TaskGroup

    from orchestrator.ecs import EcsClient
    from orchestrator.ecs import InvocationResult as Record
    from orchestrator.rollout._watch import WatchedInvocation

# Enough to read a wave's last batches in about one round trip, few enough not to take
# every token of the Describe bucket at once (the next poll shares it).
RESULTS_IN_FLIGHT: Final = 8


class ResultReads:
    """The reads under way for one `track()`; `running()` holds their task group."""

    def __init__(
        self,
        client: EcsClient,
        *,
        on_read: Callable[[WatchedInvocation, dict[str, Record]], None],
        on_end: Callable[[], None],
        in_flight: int = RESULTS_IN_FLIGHT,
    ) -> None:
        self._client = client
        self._on_read = on_read  # its records are in: record it, stop watching it
        self._on_end = on_end  # a read ended (read or failed): the loop may go on
        self._in_flight = in_flight
        self._serving: tuple[TaskGroup, anyio.CapacityLimiter] | None = None
        self._reading: set[str] = set()
        self._failure: OrchestratorError | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Reads may start inside; on the way out, those under way are waited for (or
        cancelled with the caller)."""
        async with anyio.create_task_group() as group:
            self._serving = group, anyio.CapacityLimiter(self._in_flight)
            try:
                yield
            finally:
                self._serving = None

    def cancel(self) -> None:
        """Tracking ends early: the reads under way are dropped."""
        if self._serving is not None:
            self._serving[0].cancel_scope.cancel()

    def reading(self, invoke_id: str) -> bool:
        return invoke_id in self._reading

    def start(self, watched: WatchedInvocation) -> None:
        """Read `watched`'s records unless that is under way already."""
        if watched.invoke_id in self._reading:
            return
        if self._serving is None:
            raise RuntimeError("ResultReads.start outside running()")
        group, limit = self._serving
        self._reading.add(watched.invoke_id)
        group.start_soon(self._read, watched, limit)

    def take_failure(self) -> OrchestratorError | None:
        """The first read that failed since the last call, if any."""
        failure, self._failure = self._failure, None
        return failure

    async def _read(self, watched: WatchedInvocation, limit: anyio.CapacityLimiter) -> None:
        try:
            async with limit:
                records = {
                    record.instance_id: record
                    async for record in self._client.describe_invocation_results(
                        invoke_id=watched.invoke_id
                    )
                }
        except OrchestratorError as error:
            self._failure = self._failure or error
        else:
            self._on_read(watched, records)
        finally:
            self._reading.discard(watched.invoke_id)
            self._on_end()
