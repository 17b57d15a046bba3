"""The journal's schema on real files: v1 from nothing, its constraints, and upgrades:
an older file is upgraded in place with its data, a failed step leaves it as it was, a
reader upgrades only a copy, and a newer file is refused."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from orchestrator.api import InstanceStatus
from orchestrator.ecs import Instance
from orchestrator.errors import JournalError
from orchestrator.journal import (
    MIGRATIONS,
    SCHEMA_VERSION,
    RunHeader,
    RunOrigin,
    WaveRow,
    create_journal,
    journal_path,
    migrate,
    read_journal,
    reopen_journal,
)
from orchestrator.journal._schema import APPLICATION_ID
from orchestrator.rollout import (
    ApprovalGranted,
    ApprovalRequested,
    InstanceFinished,
    InstanceResult,
    Outcome,
    Verdict,
)
from orchestrator.rollout._history import BatchState

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
HEADER = RunHeader(
    run_id="run-1",
    plan_name="p",
    plan_path="p.yaml",
    plan_text="name: p\n",
    plan_sha256="00" * 32,
    target={"region": "cn-hangzhou"},
    created_at=T0,
    instances=(Instance("i-1", "one", InstanceStatus.RUNNING, "z", "r", "linux"),),
    skipped=(),
    waves=(WaveRow(0, "all", 1, 1),),
)
RESULT = InstanceResult("i-1", Outcome.FAILED, wave="all", exit_code=2)


def connect(path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def version_of(path) -> int:
    connection = connect(path)
    try:
        return int(connection.execute("PRAGMA user_version").fetchone()[0])
    finally:
        connection.close()


def add_note(connection: sqlite3.Connection) -> None:
    """The test's next version: a column on the run row."""
    connection.execute("ALTER TABLE run ADD COLUMN note TEXT NOT NULL DEFAULT 'from v1'")


def half_done(connection: sqlite3.Connection) -> None:
    """A next version that fails after its first statement."""
    connection.execute("ALTER TABLE run ADD COLUMN note TEXT")
    raise RuntimeError("the upgrade broke half-way")


@pytest.fixture
async def v1_journal(tmp_path):
    """A journal of the current version (the name is historical) with one result, closed."""
    path = journal_path(tmp_path, "run-1")
    async with create_journal(path, HEADER) as writer:
        writer(InstanceFinished(RESULT))
    return path


def test_migrate_makes_v1_from_an_empty_file(tmp_path):
    connection = connect(tmp_path / "j.sqlite")
    assert migrate(connection) == SCHEMA_VERSION == len(MIGRATIONS) == 3
    assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert connection.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"run", "instances", "skipped", "waves", "batches", "results", "gates"} <= tables
    assert migrate(connection) == SCHEMA_VERSION  # nothing left to do


@pytest.mark.parametrize(
    ("table", "column", "values"),
    [
        ("batches", "state", [s.value for s in BatchState]),
        ("results", "outcome", [o.value for o in Outcome]),
        ("gates", "verdict", [v.value for v in Verdict]),
    ],
)
def test_the_v1_checks_know_every_value_of_the_engine(tmp_path, table, column, values):
    """If the engine grows a state, this fails: the DDL is frozen, so the new value needs
    a migration."""
    connection = connect(tmp_path / "j.sqlite")
    migrate(connection)
    sql = {
        "batches": "INSERT INTO batches VALUES (?, 'run', 0, 0, '', '[]', ?, '', '', 'now')",
        "results": "INSERT INTO results VALUES (?, 'run', 'w', ?, '{}')",
        "gates": "INSERT INTO gates VALUES (NULL, 0, ?, ?, 0, NULL, '', 'now')",
    }[table]
    for n, value in enumerate(values):
        connection.execute(sql, (f"key-{n}", value))
    with pytest.raises(sqlite3.IntegrityError, match=f"CHECK constraint failed: {column}"):
        connection.execute(sql, ("key-bad", "bogus"))


async def test_an_older_file_is_upgraded_in_place_and_keeps_its_data(v1_journal):
    """A test-supplied next migration: the file ends at the next version, its rows
    intact, and the new column has its default on the old row."""
    two = (*MIGRATIONS, add_note)
    connection = connect(v1_journal)
    try:
        assert migrate(connection, two) == SCHEMA_VERSION + 1
        assert connection.execute("SELECT note, run_id FROM run").fetchone() == ("from v1", "run-1")
    finally:
        connection.close()
    assert version_of(v1_journal) == SCHEMA_VERSION + 1
    record = read_journal(v1_journal, migrations=two)
    assert record.header == HEADER
    assert record.results == {"i-1": RESULT}


async def test_a_failed_upgrade_step_leaves_the_file_as_it_was(v1_journal):
    connection = connect(v1_journal)
    try:
        with pytest.raises(RuntimeError, match="half-way"):
            migrate(connection, (*MIGRATIONS, half_done))
        columns = {row[1] for row in connection.execute("PRAGMA table_info(run)")}
    finally:
        connection.close()
    assert "note" not in columns
    assert version_of(v1_journal) == SCHEMA_VERSION
    assert read_journal(v1_journal).results == {"i-1": RESULT}


async def test_a_reader_upgrades_a_copy_and_leaves_the_file(v1_journal):
    record = read_journal(v1_journal, migrations=(*MIGRATIONS, add_note))
    assert record.results == {"i-1": RESULT}
    assert version_of(v1_journal) == SCHEMA_VERSION


async def test_a_newer_file_is_refused_by_readers_and_writers(v1_journal):
    connection = connect(v1_journal)
    migrate(connection, (*MIGRATIONS, add_note))
    connection.close()
    message = (
        f"written by a newer orchestrator: schema {SCHEMA_VERSION + 1}, "
        f"this one knows {SCHEMA_VERSION}"
    )
    with pytest.raises(JournalError, match=message):
        read_journal(v1_journal)
    with pytest.raises(JournalError, match=message):
        async with reopen_journal(v1_journal):
            pass
    assert version_of(v1_journal) == SCHEMA_VERSION + 1


def test_another_applications_database_is_not_upgraded(tmp_path):
    """A database with a user_version but not our application_id is not a journal."""
    path = tmp_path / "other.sqlite"
    connection = connect(path)
    connection.execute("CREATE TABLE theirs (x)")
    connection.execute("PRAGMA user_version = 1")
    with pytest.raises(JournalError, match="another application's database"):
        migrate(connection)
    connection.close()


async def test_a_v1_journal_gains_the_wave_it_waits_for_on_reopening(v1_journal):
    """v1 -> v2 (`waiting_for`): a journal as v1 wrote it reads as waiting for nothing,
    is upgraded in place by its writer, and then records the approval asked and given."""
    connection = connect(v1_journal)
    connection.execute("ALTER TABLE run DROP COLUMN origin")  # as v1 created it
    connection.execute("ALTER TABLE run DROP COLUMN waiting_for")
    connection.execute("PRAGMA user_version = 1")
    connection.close()
    assert read_journal(v1_journal).waiting_for is None
    assert version_of(v1_journal) == 1  # a reader upgrades only a copy
    async with reopen_journal(v1_journal) as writer:
        writer(ApprovalRequested("run-1", 0, "all", "the plan asks", "approve it", T0))
        await writer.commit()
        assert read_journal(v1_journal).waiting_for == "all"
        writer(ApprovalGranted(0, "all", T0))
        await writer.commit()
        assert read_journal(v1_journal).waiting_for is None
    assert version_of(v1_journal) == SCHEMA_VERSION
    assert read_journal(v1_journal).results == {"i-1": RESULT}


async def test_a_v2_journal_reads_as_a_plan_files_run_and_keeps_it_on_reopening(v1_journal):
    """v2 -> v3 (`origin`): a run recorded before origins existed was a plan file's run,
    with nothing overridden; its writer upgrades the file in place."""
    connection = connect(v1_journal)
    connection.execute("ALTER TABLE run DROP COLUMN origin")  # as v2 created it
    connection.execute("PRAGMA user_version = 2")
    connection.close()
    assert read_journal(v1_journal).header.origin == RunOrigin()
    assert version_of(v1_journal) == 2  # a reader upgrades only a copy
    async with reopen_journal(v1_journal):
        pass
    assert version_of(v1_journal) == SCHEMA_VERSION
    assert read_journal(v1_journal).header.origin.from_plan_file


async def test_an_origin_round_trips_with_its_overrides(tmp_path):
    """A retry's origin, overrides included, reads back as written."""
    origin = RunOrigin(
        kind="retry",
        parent="run-0",
        limit=("zone=cn-hangzhou-h", "i-1"),
        params={"version": "1.2.3"},
        only=("failed", "undelivered"),
    )
    path = journal_path(tmp_path, "run-1")
    async with create_journal(path, replace(HEADER, origin=origin)):
        pass
    assert read_journal(path).header.origin == origin
    assert not origin.from_plan_file


@pytest.mark.parametrize(
    ("kind", "parent"), [("retry", None), ("rollback", None), ("run", "run-0"), ("x", None)]
)
def test_an_origin_is_refused_when_its_kind_and_parent_disagree(kind, parent):
    with pytest.raises(ValueError, match=r"origin is one of|parent"):
        RunOrigin(kind=kind, parent=parent)
