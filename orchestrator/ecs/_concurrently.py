"""Calls side by side under structured concurrency, their results in order, one error.

The client's rate limiter paces every attempt; running calls at once only lets their
round trips overlap, so a paced listing is bound by the rate and not by the latency.
Each job runs in a task group (nothing outlives the call that started it) and at most
`at_once` are in the air. The first error cancels the rest and is raised as itself, not
inside an ExceptionGroup: callers catch `ApiError` and its kin as they did when the
calls ran one after another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import anyio

from orchestrator.taskgroups import single_error

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

T = TypeVar("T")


async def gather_in_order(jobs: Sequence[Callable[[], Awaitable[T]]], *, at_once: int) -> list[T]:
    """Each job's result, in the order of `jobs`; at most `at_once` running at a time."""
    if at_once < 1:
        raise ValueError(f"at_once must be >= 1, not {at_once}")
    results: dict[int, T] = {}
    slots = anyio.CapacityLimiter(at_once)

    async def run(index: int, job: Callable[[], Awaitable[T]]) -> None:
        async with slots:
            results[index] = await job()

    try:
        async with anyio.create_task_group() as group:
            for index, job in enumerate(jobs):
                group.start_soon(run, index, job)
    except BaseExceptionGroup as errors:
        raise single_error(errors) from errors
    return [results[index] for index in range(len(jobs))]
