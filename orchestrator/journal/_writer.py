"""JournalWriter: the run's events and hooks, written to its journal as the run goes.

Two kinds of writes. The durable ones are awaited and on disk before the run goes on:
the header before anything is sent, each ClientToken before its RunCommand leaves
(`before_dispatch`), a wave's results once its gate passed (`after_wave`), and the exit
code. After the header, each wave's results, the exit code and on close, the WAL is
checkpointed into the main file (`_schema.checkpoint`), so `journal.sqlite` alone (a CI
cache that dropped the -wal) still holds the run up to its last passed wave.
Everything else arrives as events through the synchronous sink, which must never block
the event loop: the sink only appends to a pending list, and the rows reach the file
with the next durable write or within `FLUSH_EVERY` seconds, whichever is first.

Group commit: every write takes the lock, then checks whether a transaction that began
after its rows were appended already covered them (sequence numbers) and if so returns
at once, so a burst of concurrent `before_dispatch` calls shares one transaction, and
buffered rows of all kinds ride along. SQLite runs in a worker thread, one at a time
under one lock, never on the event loop; each flush is one transaction. A flush is
shielded from cancellation, so a Ctrl-C never leaves rows taken from the pending list but
not written; on exit, cancelled or not, what is pending is written before the file
closes (that is how an interrupted run's `RunFinished` reaches the journal).

Rows are encoded in the worker thread too: the event loop only ever appends a reference.
"""

from __future__ import annotations

import sqlite3
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Final

import anyio
import structlog

from orchestrator.errors import JournalError
from orchestrator.journal._header import RunHeader, create_file, reopen_file
from orchestrator.journal._rows import RECORDED, ExitCodeRow, Item, WavePassed, write_items
from orchestrator.journal._schema import checkpoint
from orchestrator.taskgroups import single_error

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from pathlib import Path

    from orchestrator.rollout._batches import WavePlan
    from orchestrator.rollout._dispatcher import BatchAttempt
    from orchestrator.rollout._events import ApprovalRequested, Event
    from orchestrator.rollout._results import InstanceResult

FLUSH_EVERY: Final = 0.2  # real seconds between flushes of buffered events: an I/O pace

_log = structlog.get_logger(__name__)


class JournalWriter:
    """Records one run: an `EventSink` (buffered) and the engine's `RolloutHooks` (durable).

    Made by `create_journal` or `reopen_journal`, which run its flusher and close it.
    """

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._connection = connection
        self._lock = anyio.Lock()
        self._pending: list[Item] = []
        self._appended = 0  # sequence number of the last item appended
        self._flushed = 0  # every item up to this sequence number is on disk
        self._transactions = 0
        self._checkpoints = 0

    @property
    def transactions(self) -> int:
        """Transactions written so far (group commit keeps this far below the commits
        asked for)."""
        return self._transactions

    def __call__(self, event: Event) -> None:
        """Keep a recorded event for the next flush; never blocks, never raises."""
        if isinstance(event, RECORDED):
            self._append(event)

    async def before_dispatch(self, attempt: BatchAttempt) -> None:
        """The ClientToken is on disk (state `sending`) when this returns. A token that
        is already recorded keeps its row: a resume re-sending it learns nothing new."""
        self._append(attempt)
        await self.commit()

    async def before_approval(self, request: ApprovalRequested) -> None:
        """The wave the run is about to wait at is on disk when this returns (the event
        itself, told right after, records it once more: one row, the same value)."""
        self._append(request)
        await self.commit()

    async def after_wave(self, wave: WavePlan, results: Sequence[InstanceResult]) -> bool:
        """The wave passed its gate: its results (with their verify) and the wave's
        state `passed` are on disk when this returns. Always goes on."""
        self._append(WavePassed(wave.index, tuple(results)))
        await self.commit()
        await self.checkpoint()
        return True

    async def finish(self, exit_code: int) -> None:
        """Record the process's exit code, durably."""
        self._append(ExitCodeRow(exit_code))
        await self.commit()
        await self.checkpoint()

    async def checkpoint(self) -> None:
        """Copy what is committed into the main file (`journal.sqlite` alone then holds
        it), in the worker thread, under the lock; a failure or a busy reader is logged,
        never raised: the rows are safe in the WAL, and the next checkpoint catches up."""
        async with self._lock:
            with anyio.CancelScope(shield=True):
                try:
                    done = await anyio.to_thread.run_sync(checkpoint, self._connection)
                except sqlite3.Error as error:
                    _log.warning("journal.checkpoint_failed", path=str(self.path), error=str(error))
                    return
            if not done:
                _log.warning("journal.checkpoint_partial", path=str(self.path))
            self._checkpoints += 1

    @property
    def checkpoints(self) -> int:
        """Checkpoints written so far (the header's, by `create_journal`, not counted)."""
        return self._checkpoints

    async def commit(self) -> None:
        """Write everything appended so far in one transaction, unless a transaction that
        began after it was appended already wrote it; returns when it is on disk."""
        wanted = self._appended
        async with self._lock:
            if self._flushed >= wanted:
                return
            items, self._pending = self._pending, []
            upto = self._appended
            with anyio.CancelScope(shield=True):
                try:
                    await anyio.to_thread.run_sync(write_items, self._connection, items)
                except sqlite3.Error as error:
                    self._pending[:0] = items  # kept, in order, for the next try
                    raise JournalError(f"journal {self.path}: cannot write: {error}") from error
            self._flushed = upto
            self._transactions += 1

    def _append(self, item: Item) -> None:
        self._pending.append(item)
        self._appended += 1

    async def _flush_forever(self) -> None:
        while True:
            await anyio.sleep(FLUSH_EVERY)
            await self.commit()

    async def _close(self) -> None:
        try:
            await self.commit()
            await self.checkpoint()
        finally:
            async with self._lock:
                await anyio.to_thread.run_sync(self._connection.close)


@asynccontextmanager
async def create_journal(path: Path, header: RunHeader) -> AsyncIterator[JournalWriter]:
    """A new journal at `path` with `header` on disk (state `running`), then its writer.

    Raises `JournalError` if the file already exists: a run is created once.
    """
    with anyio.CancelScope(shield=True):  # an opened connection is never left unclosed
        connection = await anyio.to_thread.run_sync(partial(create_file, path, header))
    async with _serving(path, connection) as writer:
        yield writer


@asynccontextmanager
async def reopen_journal(path: Path) -> AsyncIterator[JournalWriter]:
    """The writer of an existing journal (to resume or stop its run), marked `running`
    again by this process. Upgrades an older journal first."""
    with anyio.CancelScope(shield=True):
        connection = await anyio.to_thread.run_sync(reopen_file, path)
    async with _serving(path, connection) as writer:
        yield writer


@asynccontextmanager
async def _serving(path: Path, connection: sqlite3.Connection) -> AsyncIterator[JournalWriter]:
    writer = JournalWriter(path, connection)
    try:
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(writer._flush_forever)  # noqa: SLF001 - its own flusher
                yield writer
                group.cancel_scope.cancel()
        except BaseExceptionGroup as errors:
            raise single_error(errors) from errors
    finally:
        with anyio.CancelScope(shield=True):
            await writer._close()  # noqa: SLF001 - the writer's owner closes it


# --- in the worker thread ------------------------------------------------------------------
