"""A journal's header and its file: created once, before anything is sent; reopened to
resume or stop the run.

The header says what the run is (its plan, as text and digest; where its calls go; its
instances, skipped targets and waves) and never with what credentials: a target key that
names one is refused. The file is created exclusively, so two processes creating one run
cannot both succeed, and a half-made file is removed rather than left to block the run
id forever. Everything here runs in a worker thread.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping  # noqa: TC003 - dataclass field types are read at run time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from orchestrator.ecs import Instance  # noqa: TC001
from orchestrator.errors import JournalError
from orchestrator.journal._codec import dumps, encode_instance, encode_skipped, encode_time
from orchestrator.journal._origin import PLAN_FILE, RunOrigin, encode_origin
from orchestrator.journal._schema import checkpoint, migrate, not_found, transaction
from orchestrator.targets import Skipped  # noqa: TC001

if TYPE_CHECKING:
    from pathlib import Path

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
    is refused. `instances` are the runnable targets in resolution order. `origin`:
    how the run came to be (a plan file, flags, or another run).
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
    origin: RunOrigin = PLAN_FILE

    def __post_init__(self) -> None:
        refused = sorted(key for key in self.target if _names_a_credential(key))
        if refused:
            raise ValueError(f"a run's target never holds credentials: {', '.join(refused)}")


def _names_a_credential(key: str) -> bool:
    bare = key.lower().replace("_", "").replace("-", "")  # access_key_id, AccessKeyId
    return any(word in bare for word in CREDENTIAL_WORDS)


# A resumed run is running again: what the row said about the attempt before is gone
# from it (the caller read the journal before reopening it).
_REOPEN: Final = """
    UPDATE run SET state = 'running', pid = ?, updated_at = ?,
        finished_at = NULL, halt = NULL, exit_code = NULL, waiting_for = NULL
"""


def now_text() -> str:
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


def create_file(path: Path, header: RunHeader) -> sqlite3.Connection:
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
            # Until a checkpoint the main file holds nothing, not even the header: a CI
            # cache that kept only journal.sqlite would orphan every instance sent.
            checkpoint(connection)
        except BaseException:
            connection.close()
            raise
    except BaseException:
        path.unlink(missing_ok=True)  # a half-made journal would block the run id forever
        raise
    return connection


def _write_header(connection: sqlite3.Connection, header: RunHeader) -> None:
    now = now_text()
    connection.execute(
        """
        INSERT INTO run (one, run_id, plan_name, plan_path, plan_sha256, plan_text, target,
            created_at, updated_at, state, pid, origin)
        VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)
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
            dumps(encode_origin(header.origin)),
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


def reopen_file(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise not_found(path)
    connection = _connect(path)
    try:
        with transaction(connection):
            marked = connection.execute(_REOPEN, (os.getpid(), now_text())).rowcount
    except BaseException:
        connection.close()
        raise
    if marked != 1:
        connection.close()
        raise JournalError(f"{path} has no run in it: its creation did not finish")
    return connection
