"""Where a run's journal lives, its tables, and how an older journal file becomes current.

Each run keeps one SQLite file, `<state dir>/runs/<run id>/journal.sqlite`, next to the
run's approval markers, lock file and stop marker. The file is versioned because a run
interrupted before an upgrade of orchestrator must still resume after it: `migrate`
upgrades an older file in place, one step per version (`MIGRATIONS[i]` takes a file from
version i to i+1), each step in one transaction together with the new `user_version`,
so a crash leaves the file at the old version or the new one, never in between. An
older orchestrator refuses a newer file instead of misreading it.

The v1 statements below are frozen: any change, such as a new `BatchState` or a column,
is a new migration, never an edit, or a file created before the change would differ from
one created after it under the same version. `application_id` marks the file as a
journal, so a stray SQLite database is refused rather than "upgraded".
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Final

from orchestrator.errors import JournalError

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Iterator, Sequence

    Migration = Callable[[sqlite3.Connection], None]

JOURNAL_FILE: Final = "journal.sqlite"
APPLICATION_ID: Final = 0x4F524348  # "ORCH"

_V1: Final = (
    """
    CREATE TABLE run (
        one INTEGER PRIMARY KEY CHECK (one = 1),
        run_id TEXT NOT NULL,
        plan_name TEXT NOT NULL,
        plan_path TEXT NOT NULL,
        plan_sha256 TEXT NOT NULL,
        plan_text TEXT NOT NULL,
        target TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('running', 'interrupted', 'finished')),
        finished_at TEXT,
        halt TEXT,
        exit_code INTEGER,
        api_calls TEXT NOT NULL DEFAULT '{}',
        throttles INTEGER NOT NULL DEFAULT 0,
        pid INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE instances (
        instance_id TEXT PRIMARY KEY,
        position INTEGER NOT NULL UNIQUE,
        instance TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE skipped (
        instance_id TEXT PRIMARY KEY,
        position INTEGER NOT NULL UNIQUE,
        skipped TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE waves (
        idx INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        size INTEGER NOT NULL,
        batches INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'started', 'finished', 'passed')),
        started_at TEXT,
        finished_at TEXT
    )
    """,
    """
    CREATE TABLE batches (
        client_token TEXT PRIMARY KEY,
        purpose TEXT NOT NULL CHECK (purpose IN ('run', 'verify')),
        wave INTEGER NOT NULL,
        batch INTEGER NOT NULL,
        split_path TEXT NOT NULL,
        instance_ids TEXT NOT NULL,
        state TEXT NOT NULL CHECK (
            state IN ('sending', 'accepted', 'split', 'rejected', 'refused', 'withdrawn')
        ),
        invoke_id TEXT NOT NULL DEFAULT '',
        error_code TEXT NOT NULL DEFAULT '',
        updated_at TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE results (
        instance_id TEXT NOT NULL,
        purpose TEXT NOT NULL CHECK (purpose IN ('run', 'verify')),
        wave TEXT NOT NULL,
        outcome TEXT NOT NULL CHECK (
            outcome IN ('succeeded', 'failed', 'undelivered', 'stopped', 'skipped', 'not_sent')
        ),
        result TEXT NOT NULL,
        PRIMARY KEY (instance_id, purpose)
    )
    """,
    """
    CREATE TABLE gates (
        id INTEGER PRIMARY KEY,
        wave INTEGER NOT NULL,
        name TEXT NOT NULL,
        verdict TEXT NOT NULL CHECK (verdict IN ('pass', 'breach', 'inconclusive')),
        errors INTEGER NOT NULL,
        threshold INTEGER,
        summary TEXT NOT NULL,
        at TEXT NOT NULL
    )
    """,
    f"PRAGMA application_id = {APPLICATION_ID}",
)


def _create_v1(connection: sqlite3.Connection) -> None:
    for statement in _V1:
        connection.execute(statement)


def _v2_waiting_for(connection: sqlite3.Connection) -> None:
    """v2: the wave whose approval the run waits for, NULL when it waits for none."""
    connection.execute("ALTER TABLE run ADD COLUMN waiting_for TEXT")


def _v3_origin(connection: sqlite3.Connection) -> None:
    """v3: how the run came to be (`RunOrigin` as JSON); an older run was a plan file's."""
    connection.execute("ALTER TABLE run ADD COLUMN origin TEXT NOT NULL DEFAULT '{}'")


MIGRATIONS: Final[tuple[Migration, ...]] = (_create_v1, _v2_waiting_for, _v3_origin)
SCHEMA_VERSION: Final = len(MIGRATIONS)


# TRUNCATE: like FULL, every committed frame is copied into the main file and the main
# file is synced, so `journal.sqlite` alone holds the run as of this moment (a cache that
# keeps only that file loses only what came after); it also waits for the readers to
# leave the WAL and cuts it to zero bytes, so the WAL never outgrows one wave and a copy
# of the run directory taken between waves has nothing in its -wal to lose. PASSIVE
# could leave frames behind while a `status` reads, RESTART keeps the bytes on disk.
# The wait for readers is the connection's busy timeout; readers only ever hold a read
# transaction for one `read_journal`, milliseconds.
_CHECKPOINT: Final = "PRAGMA wal_checkpoint(TRUNCATE)"


def checkpoint(connection: sqlite3.Connection) -> bool:
    """Copy the WAL into the main file and sync it; False when a reader kept part of it
    back (the next checkpoint takes the rest). In a worker thread, never the event loop."""
    busy, _, _ = connection.execute(_CHECKPOINT).fetchone()
    return not busy


def journal_path(state_dir: Path, run_id: str) -> Path:
    """Where the journal of run `run_id` lives under `state_dir`."""
    return Path(state_dir) / "runs" / run_id / JOURNAL_FILE


def not_found(path: Path) -> JournalError:
    """The error for a run whose journal does not exist (`path` is a `journal_path`)."""
    run_dir = path.parent
    message = f"run {run_dir.name} not found in {run_dir.parent.parent}: no {path}"
    if run_dir.is_dir():  # the run was here (its lock file stays): its journal was lost
        message += f"; `orchestrator recover {run_dir.name} --plan PLAN` rebuilds it from the API"
    return JournalError(message)


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taken at once (a writer never upgrades a read lock)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def check_version(connection: sqlite3.Connection, known: int) -> int:
    """The journal's schema version (0: an empty file, nothing written yet).

    Raises `JournalError` when the file is not a journal, or is newer than the `known`
    version. `sqlite3.DatabaseError` passes through for a file that is not SQLite.
    """
    version = int(connection.execute("PRAGMA user_version").fetchone()[0])
    if version == 0:
        if connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise JournalError("not an orchestrator journal: a database of something else")
        return 0
    if connection.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
        raise JournalError("not an orchestrator journal: another application's database")
    if version > known:
        raise JournalError(
            f"written by a newer orchestrator: schema {version}, this one knows {known}"
        )
    return version


def migrate(connection: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring the journal up to `len(migrations)`, one transaction per step; the version.

    `connection` must be in autocommit mode (`isolation_level=None`): each step is its
    own explicit transaction. The version is read again inside each transaction, so two
    processes opening one file at once cannot apply a step twice.
    """
    known = len(migrations)
    while True:
        with transaction(connection):
            version = check_version(connection, known)
            if version == known:
                return version
            migrations[version](connection)
            connection.execute(f"PRAGMA user_version = {version + 1}")
