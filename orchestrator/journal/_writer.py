"""JournalWriter: the run's events and hooks, written to its journal as the run goes.

Two kinds of writes. The durable ones are awaited and on disk before the run goes on:
the header before anything is sent, each ClientToken before its RunCommand leaves
(`before_dispatch`), a wave's results once its gate passed (`after_wave`), and the exit
code. Everything else arrives as events through the synchronous sink, which must never
block the event loop: the sink only appends to a pending list, and the rows reach the
file with the next durable write or within `FLUSH_EVERY` seconds, whichever is first.

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

import os
import sqlite3
from collections.abc import Mapping  # noqa: TC003 - dataclass field types are read at run time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from itertools import chain, groupby
from operator import itemgetter
from typing import TYPE_CHECKING, Final, assert_never

import anyio

from orchestrator.ecs import Instance  # noqa: TC001
from orchestrator.errors import JournalError
from orchestrator.journal._codec import (
    dumps,
    encode_halt,
    encode_instance,
    encode_result,
    encode_skipped,
    encode_time,
)
from orchestrator.journal._schema import migrate, not_found, transaction
from orchestrator.rollout._dispatcher import BatchAttempt
from orchestrator.rollout._events import (
    BatchDispatched,
    BatchRefused,
    GateDecided,
    InstanceFinished,
    RunFinished,
    WaveFinished,
    WaveStarted,
)
from orchestrator.rollout._results import InstanceResult, Outcome
from orchestrator.rollout._wave import single_error
from orchestrator.targets import Skipped  # noqa: TC001

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Sequence
    from pathlib import Path

    from orchestrator.rollout._batches import WavePlan
    from orchestrator.rollout._events import Event

FLUSH_EVERY: Final = 0.2  # real seconds between flushes of buffered events: an I/O pace
# Halts after which the run is not over: what was not sent yet is sent by a resume.
RESUMABLE_HALTS: Final = frozenset({"interrupted", "unanswered", "tracking"})
# Target keys that name a credential: refused, so a secret can never be passed in by
# mistake and end up in a file that outlives the run (and is read by `status`).
CREDENTIAL_WORDS: Final = ("secret", "token", "password", "credential", "accesskey")


@dataclass(frozen=True, slots=True)
class WaveRow:
    """One wave as planned: its index, name, size and number of batches."""

    index: int
    name: str
    size: int
    batches: int


@dataclass(frozen=True, slots=True)
class RunHeader:
    """What a run is, written once, before anything is sent.

    `target` says where and how the run goes (`endpoint`, `region`, `sim`, `profile`
    and the like), never with what credentials: a key that names one (`CREDENTIAL_WORDS`)
    is refused. `instances` are the runnable targets in resolution order.
    """

    run_id: str
    plan_name: str
    plan_path: str
    plan_text: str
    plan_sha256: str
    target: Mapping[str, str | None] = field(hash=False)
    created_at: datetime
    instances: tuple[Instance, ...]
    skipped: tuple[Skipped, ...]
    waves: tuple[WaveRow, ...]

    def __post_init__(self) -> None:
        refused = sorted(key for key in self.target if _names_a_credential(key))
        if refused:
            raise ValueError(f"a run's target never holds credentials: {', '.join(refused)}")


def _names_a_credential(key: str) -> bool:
    bare = key.lower().replace("_", "").replace("-", "")  # access_key_id, AccessKeyId
    return any(word in bare for word in CREDENTIAL_WORDS)


@dataclass(frozen=True, slots=True)
class _WavePassed:
    index: int
    results: tuple[InstanceResult, ...]


@dataclass(frozen=True, slots=True)
class _ExitCode:
    code: int


_Item = (
    BatchAttempt
    | _WavePassed
    | _ExitCode
    | WaveStarted
    | BatchDispatched
    | BatchRefused
    | InstanceFinished
    | GateDecided
    | WaveFinished
    | RunFinished
)
_RECORDED: Final = (
    WaveStarted,
    BatchDispatched,
    BatchRefused,
    InstanceFinished,
    GateDecided,
    WaveFinished,
    RunFinished,
)
_Statement = tuple[str, tuple[object, ...]]

_INSERT_BATCH: Final = """
    INSERT OR IGNORE INTO batches
        (client_token, purpose, wave, batch, split_path, instance_ids, state, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, 'sending', ?)
"""
_ACCEPT_BATCH: Final = """
    UPDATE batches SET state = 'accepted', invoke_id = ?, updated_at = ? WHERE client_token = ?
"""
_REFUSE_BATCH: Final = """
    UPDATE batches SET state = ?, error_code = ?, updated_at = ? WHERE client_token = ?
"""
_UPSERT_RESULT: Final = """
    INSERT INTO results (instance_id, purpose, wave, outcome, result) VALUES (?, 'run', ?, ?, ?)
    ON CONFLICT (instance_id, purpose)
    DO UPDATE SET wave = excluded.wave, outcome = excluded.outcome, result = excluded.result
"""
# A resumed run starts its waves again: the first start is kept, and a passed wave stays
# passed (its results are final).
_WAVE_STARTED: Final = """
    UPDATE waves SET state = CASE state WHEN 'passed' THEN 'passed' ELSE 'started' END,
        started_at = coalesce(started_at, ?)
    WHERE idx = ?
"""
_WAVE_FINISHED: Final = """
    UPDATE waves SET state = CASE state WHEN 'passed' THEN 'passed' ELSE 'finished' END,
        finished_at = ?
    WHERE idx = ?
"""
_WAVE_PASSED: Final = "UPDATE waves SET state = 'passed' WHERE idx = ?"
_GATE: Final = """
    INSERT INTO gates (wave, name, verdict, errors, threshold, summary, at)
    VALUES (?, ?, ?, ?, ?, ?, ?)
"""
_RUN_FINISHED: Final = """
    UPDATE run SET state = ?, halt = ?, api_calls = ?, throttles = ?, finished_at = ?
"""
_EXIT_CODE: Final = "UPDATE run SET exit_code = ?"
_TOUCH: Final = "UPDATE run SET updated_at = ?"
# A resumed run is running again: what the row said about the attempt before is gone
# from it (the caller read the journal before reopening it).
_REOPEN: Final = """
    UPDATE run SET state = 'running', pid = ?, updated_at = ?,
        finished_at = NULL, halt = NULL, exit_code = NULL
"""


class JournalWriter:
    """Records one run: an `EventSink` (buffered) and the engine's `RolloutHooks` (durable).

    Made by `create_journal` or `reopen_journal`, which run its flusher and close it.
    """

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._connection = connection
        self._lock = anyio.Lock()
        self._pending: list[_Item] = []
        self._appended = 0  # sequence number of the last item appended
        self._flushed = 0  # every item up to this sequence number is on disk
        self._transactions = 0

    @property
    def transactions(self) -> int:
        """Transactions written so far (group commit keeps this far below the commits
        asked for)."""
        return self._transactions

    def __call__(self, event: Event) -> None:
        """Keep a recorded event for the next flush; never blocks, never raises."""
        if isinstance(event, _RECORDED):
            self._append(event)

    async def before_dispatch(self, attempt: BatchAttempt) -> None:
        """The ClientToken is on disk (state `sending`) when this returns. A token that
        is already recorded keeps its row: a resume re-sending it learns nothing new."""
        self._append(attempt)
        await self.commit()

    async def after_wave(self, wave: WavePlan, results: Sequence[InstanceResult]) -> bool:
        """The wave passed its gate: its results (with their verify) and the wave's
        state `passed` are on disk when this returns. Always goes on."""
        self._append(_WavePassed(wave.index, tuple(results)))
        await self.commit()
        return True

    async def finish(self, exit_code: int) -> None:
        """Record the process's exit code, durably."""
        self._append(_ExitCode(exit_code))
        await self.commit()

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
                    await anyio.to_thread.run_sync(_write, self._connection, items)
                except sqlite3.Error as error:
                    self._pending[:0] = items  # kept, in order, for the next try
                    raise JournalError(f"journal {self.path}: cannot write: {error}") from error
            self._flushed = upto
            self._transactions += 1

    def _append(self, item: _Item) -> None:
        self._pending.append(item)
        self._appended += 1

    async def _flush_forever(self) -> None:
        while True:
            await anyio.sleep(FLUSH_EVERY)
            await self.commit()

    async def _close(self) -> None:
        try:
            await self.commit()
        finally:
            async with self._lock:
                await anyio.to_thread.run_sync(self._connection.close)


@asynccontextmanager
async def create_journal(path: Path, header: RunHeader) -> AsyncIterator[JournalWriter]:
    """A new journal at `path` with `header` on disk (state `running`), then its writer.

    Raises `JournalError` if the file already exists: a run is created once.
    """
    with anyio.CancelScope(shield=True):  # an opened connection is never left unclosed
        connection = await anyio.to_thread.run_sync(partial(_create, path, header))
    async with _serving(path, connection) as writer:
        yield writer


@asynccontextmanager
async def reopen_journal(path: Path) -> AsyncIterator[JournalWriter]:
    """The writer of an existing journal (to resume or stop its run), marked `running`
    again by this process. Upgrades an older journal first."""
    with anyio.CancelScope(shield=True):
        connection = await anyio.to_thread.run_sync(_reopen, path)
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


def _now() -> str:
    return encode_time(datetime.now(UTC))


def _connect(path: Path) -> sqlite3.Connection:
    # Autocommit mode: every transaction is an explicit BEGIN IMMEDIATE ... COMMIT.
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        migrate(connection)
        connection.execute("PRAGMA journal_mode = WAL")
        # With WAL, NORMAL syncs at checkpoints only: a commit survives the death of the
        # process (SIGKILL included: it is in the WAL file, which the OS keeps), and only
        # a power loss can take the last commits with it. Even then no RunCommand runs
        # twice: a resume derives the same ClientTokens and the service answers a token
        # it has seen with that invocation.
        connection.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError as error:
        connection.close()
        raise JournalError(f"{path} is not a journal: {error}") from error
    except JournalError as error:
        connection.close()
        raise JournalError(f"{path}: {error}") from error
    return connection


def _create(path: Path, header: RunHeader) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Created exclusively, so two processes creating one run cannot both succeed.
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        raise JournalError(f"run {header.run_id} already has a journal: {path}") from None
    try:
        connection = _connect(path)
        try:
            with transaction(connection):
                _write_header(connection, header)
        except BaseException:
            connection.close()
            raise
    except BaseException:
        path.unlink(missing_ok=True)  # a half-made journal would block the run id forever
        raise
    return connection


def _write_header(connection: sqlite3.Connection, header: RunHeader) -> None:
    now = _now()
    connection.execute(
        """
        INSERT INTO run (one, run_id, plan_name, plan_path, plan_sha256, plan_text, target,
            created_at, updated_at, state, pid)
        VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?)
        """,
        (
            header.run_id,
            header.plan_name,
            header.plan_path,
            header.plan_sha256,
            header.plan_text,
            dumps(dict(header.target)),
            encode_time(header.created_at),
            now,
            os.getpid(),
        ),
    )
    connection.executemany(
        "INSERT INTO instances (instance_id, position, instance) VALUES (?, ?, ?)",
        (  # a generator: 100,000 encoded instances are never all in memory at once
            (instance.instance_id, position, dumps(encode_instance(instance)))
            for position, instance in enumerate(header.instances)
        ),
    )
    connection.executemany(
        "INSERT INTO skipped (instance_id, position, skipped) VALUES (?, ?, ?)",
        [
            (skipped.instance_id, position, dumps(encode_skipped(skipped)))
            for position, skipped in enumerate(header.skipped)
        ],
    )
    connection.executemany(
        "INSERT INTO waves (idx, name, size, batches) VALUES (?, ?, ?, ?)",
        [(wave.index, wave.name, wave.size, wave.batches) for wave in header.waves],
    )


def _reopen(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise not_found(path)
    connection = _connect(path)
    try:
        with transaction(connection):
            marked = connection.execute(_REOPEN, (os.getpid(), _now())).rowcount
    except BaseException:
        connection.close()
        raise
    if marked != 1:
        connection.close()
        raise JournalError(f"{path} has no run in it: its creation did not finish")
    return connection


def _write(connection: sqlite3.Connection, items: Sequence[_Item]) -> None:
    """One transaction for `items`, in order; consecutive rows of one statement go in
    one `executemany`."""
    now = _now()
    # Streamed, never listed: a wave's or a run's results are encoded row by row as
    # SQLite takes them (at 100,000 instances a list of them costs tens of megabytes).
    statements = chain((row for item in items for row in _statements(item, now)),
                       [(_TOUCH, (now,))])  # fmt: skip
    with transaction(connection):
        for sql, rows in groupby(statements, key=itemgetter(0)):
            connection.executemany(sql, (params for _, params in rows))


def _statements(item: _Item, now: str) -> Iterator[_Statement]:
    if isinstance(item, InstanceFinished):
        yield _result_row(item.result)
    elif isinstance(item, BatchAttempt):
        ids = dumps(list(item.instance_ids))
        row = (item.client_token, item.purpose, item.wave, item.batch, item.split_path, ids, now)
        yield _INSERT_BATCH, row
    elif isinstance(item, BatchDispatched):
        yield _ACCEPT_BATCH, (item.invoke_id, now, item.client_token)
    elif isinstance(item, BatchRefused):
        yield _REFUSE_BATCH, (item.state.value, item.code, now, item.client_token)
    else:
        yield from _progress(item, now)


def _progress(
    item: _WavePassed | _ExitCode | WaveStarted | GateDecided | WaveFinished | RunFinished,
    now: str,
) -> Iterator[_Statement]:
    if isinstance(item, WaveStarted):
        yield _WAVE_STARTED, (encode_time(item.at), item.index)
    elif isinstance(item, WaveFinished):
        yield _WAVE_FINISHED, (encode_time(item.at), item.index)
    elif isinstance(item, GateDecided):
        gate = item.decision
        verdict, summary = gate.verdict.value, gate.summary()
        yield _GATE, (gate.wave, gate.name, verdict, gate.errors, gate.threshold, summary, now)
    elif isinstance(item, _WavePassed):
        yield from (_result_row(result) for result in item.results)
        yield _WAVE_PASSED, (item.index,)
    elif isinstance(item, RunFinished):
        yield from _run_finished(item, now)
    elif isinstance(item, _ExitCode):
        yield _EXIT_CODE, (item.code,)
    else:
        assert_never(item)


def _result_row(result: InstanceResult) -> _Statement:
    row = (result.instance_id, result.wave, result.outcome.value, dumps(encode_result(result)))
    return _UPSERT_RESULT, row


def _run_finished(event: RunFinished, now: str) -> Iterator[_Statement]:
    result = event.result
    halt = result.halt
    resumable = event.interrupted or (halt is not None and halt.reason in RESUMABLE_HALTS)
    for instance in result.results:
        # Every other result was written as it came (InstanceFinished, a passed wave's
        # after_wave); left are the NOT_SENT ones and the verify merges of a wave that did
        # not pass. An interrupted run's NOT_SENT instances are not sent *yet*: a resume
        # sends them.
        if instance.outcome is Outcome.NOT_SENT:
            if not resumable:
                yield _result_row(instance)
        elif instance.verify is not None:
            yield _result_row(instance)
    finished_at = now if result.finished_at is None else encode_time(result.finished_at)
    yield (
        _RUN_FINISHED,
        (
            "interrupted" if resumable else "finished",
            None if halt is None else dumps(encode_halt(halt)),
            dumps(dict(result.api_calls)),
            result.throttles,
            finished_at,
        ),
    )
