"""A task group's failure reaches callers as the error that caused it."""

from __future__ import annotations

import anyio
import pytest

from orchestrator.errors import ServerError
from orchestrator.taskgroups import single_error

pytestmark = pytest.mark.anyio


async def test_the_first_real_error_stands_for_the_group_and_keeps_it_as_cause():
    first = ServerError("InternalError", "first")

    async def fails() -> None:
        raise first

    async def waits() -> None:
        await anyio.sleep_forever()

    async def run() -> None:
        try:
            async with anyio.create_task_group() as outer:
                outer.start_soon(waits)
                async with anyio.create_task_group() as inner:
                    inner.start_soon(waits)
                    inner.start_soon(fails)
        except BaseExceptionGroup as group:
            raise single_error(group) from group

    with pytest.raises(ServerError) as caught:
        await run()
    assert caught.value is first
    assert isinstance(caught.value.__cause__, BaseExceptionGroup)


async def test_a_group_of_nothing_but_cancellations_stays_a_group():
    cancelled = anyio.get_cancelled_exc_class()
    group = BaseExceptionGroup("echo", [cancelled()])
    assert single_error(group) is group
