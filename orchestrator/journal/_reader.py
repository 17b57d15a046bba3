"""Reading a run's journal from any process, while its run goes on or after it ended.

The reader opens the file read-only (`mode=ro`): `orchestrator status` and `runs` never
write to a run's journal and, the file being in WAL mode, neither wait for its writer
nor make it wait. Each read is one read transaction, so what it returns is one moment of
the run, never half of a flush. A journal of an older schema is upgraded in a copy in
memory and the file is left as it is: only a writer upgrades a file. `list_runs` never
fails because of one bad file; it lists that run as `unreadable`, with why.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping  # noqa: TC003 - dataclass field types are read at run time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime  # noqa: TC003 - dataclass field types are read at run time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from orchestrator.errors import JournalError
from orchestrator.journal._codec import (
    decode_halt,
    decode_instance,
    decode_result,
    decode_skipped,
    decode_time,
)
from orchestrator.journal._header import RunHeader, WaveRow
from orchestrator.journal._origin import decode_origin
from orchestrator.journal._schema import (
    JOURNAL_FILE,
    MIGRATIONS,
    check_version,
    migrate,
    not_found,
)
from orchestrator.rollout._gates import Verdict
from orchestrator.rollout._history import BatchState, RecordedBatch, RunHistory
from orchestrator.rollout._outcome import Outcome

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from orchestrator.journal._schema import Migration
    from orchestrator.rollout._results import Halt, InstanceResult

UNREADABLE: Final = "unreadable"


@dataclass(frozen=True, slots=True)
class WaveState:
    """One wave as the journal knows it: `state` is pending, started, finished (its
    instances all have an outcome) or passed (its gate passed: its results are final)."""

    index: int
    name: str
    size: int
    batches: int
    state: str
    started_at: datetime | None
    finished_at: datetime | None
    counts: Mapping[Outcome, int] = field(hash=False)


@dataclass(frozen=True, slots=True)
class BatchRow:
    """One ClientToken: the batch it carries and where it stands."""

    client_token: str
    purpose: str  # "run" or "verify"
    wave: int
    batch: int
    split_path: str
    instance_ids: tuple[str, ...]
    state: BatchState
    invoke_id: str
    error_code: str


@dataclass(frozen=True, slots=True)
class GateRow:
    """One gate decision of a wave, with its numbers and its sentence."""

    wave: int
    name: str
    verdict: Verdict
    errors: int
    threshold: int | None
    summary: str
    at: datetime


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """Everything a run's journal holds, as of one moment.

    `halt` has the halt's numbers but not its `GateDecision` (see `gates`); `halt_text`
    is its sentence as it was when the run stopped. `waiting_for` is the wave whose
    approval the run waits for (while its process lives; a dead one left it as it was).
    """

    header: RunHeader
    state: str  # running | interrupted | finished
    updated_at: datetime
    finished_at: datetime | None
    halt: Halt | None
    halt_text: str
    exit_code: int | None
    api_calls: Mapping[str, int] = field(hash=False)
    throttles: int
    waves: tuple[WaveState, ...]
    batches: tuple[BatchRow, ...]
    results: Mapping[str, InstanceResult] = field(hash=False)  # by instance, target order
    gates: tuple[GateRow, ...]
    waiting_for: str | None = None

    def history(self) -> RunHistory:
        """What a resume needs: every token's state, the results, the waves that
        passed and those that started."""
        return RunHistory(
            batches={
                row.client_token: RecordedBatch(
                    row.client_token, row.state, row.invoke_id, row.error_code
                )
                for row in self.batches
            },
            results=self.results,
            passed_waves=frozenset(w.index for w in self.waves if w.state == "passed"),
            started_waves=frozenset(w.index for w in self.waves if w.state != "pending"),
        )

    def counts(self) -> dict[Outcome, int]:
        """Instances per outcome, of the results recorded (every outcome present)."""
        return _counts(result.outcome for result in self.results.values())


@dataclass(frozen=True, slots=True)
class RunListing:
    """One run in `list_runs`: its state and numbers, or `unreadable` and `error`."""

    run_id: str
    path: Path
    state: str  # running | interrupted | finished | unreadable
    plan_name: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    instances: int = 0
    counts: Mapping[Outcome, int] = field(default_factory=dict, hash=False)
    halt_reason: str = ""
    exit_code: int | None = None
    error: str = ""
    waiting_for: str | None = None
    kind: str = "run"  # how the run came to be (`RunOrigin.kind`)
    parent: str | None = None  # the run a retry or rollback was made from


def read_journal(path: Path, *, migrations: Sequence[Migration] = MIGRATIONS) -> JournalRecord:
    """The journal at `path`, read-only; works while its writer is open.

    Raises `JournalError` if the run does not exist, the file is not a readable journal,
    or it was written by a newer orchestrator (one that knows more than `migrations`).
    """
    with _reading(Path(path), migrations) as connection:
        return _record(connection)


def list_runs(state_dir: Path) -> list[RunListing]:
    """Every run under `state_dir`, newest first; unreadable journals last, with why."""
    listings = [_listing(path) for path in Path(state_dir).glob(f"runs/*/{JOURNAL_FILE}")]
    readable = [listing for listing in listings if listing.created_at is not None]
    readable.sort(key=lambda listing: (listing.created_at, listing.run_id), reverse=True)
    unreadable = sorted(
        (listing for listing in listings if listing.created_at is None),
        key=lambda listing: listing.run_id,
    )
    return readable + unreadable


@contextmanager
def _reading(path: Path, migrations: Sequence[Migration]) -> Iterator[sqlite3.Connection]:
    """A read transaction on the journal at `path`, upgraded in memory if it is older."""
    if not path.is_file():
        raise not_found(path)
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        source = sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error as error:
        raise JournalError(f"{path}: cannot open: {error}") from error
    copy: sqlite3.Connection | None = None
    try:
        source.execute("BEGIN")
        copy = _upgraded(source, migrations)
        yield source if copy is None else copy
    except JournalError as error:
        raise JournalError(f"{path}: {error}") from error
    except (sqlite3.Error, ValueError, KeyError, TypeError) as error:
        # Not SQLite, a broken page, a row that does not decode: the file cannot be read.
        raise JournalError(
            f"{path} is not a readable journal: {error}; `orchestrator recover "
            f"{path.parent.name} --plan PLAN` rebuilds it from the API"
        ) from error
    finally:
        if copy is not None:
            copy.close()
        source.close()


def _upgraded(
    source: sqlite3.Connection, migrations: Sequence[Migration]
) -> sqlite3.Connection | None:
    """A copy in memory of an older journal, upgraded; None when it is current."""
    version = check_version(source, len(migrations))
    if version == 0:
        raise JournalError("empty: its run has not written its header")
    if version == len(migrations):
        return None
    copy = sqlite3.connect(":memory:", isolation_level=None)
    try:
        source.backup(copy)
        migrate(copy, migrations)
    except BaseException:
        copy.close()
        raise
    return copy


def _record(connection: sqlite3.Connection) -> JournalRecord:
    run = connection.execute(
        """
        SELECT run_id, plan_name, plan_path, plan_text, plan_sha256, target, created_at,
            updated_at, state, finished_at, halt, exit_code, api_calls, throttles, waiting_for,
            origin
        FROM run
        """
    ).fetchone()
    if run is None:
        raise JournalError("no run in it: its creation did not finish")
    results = {
        instance_id: decode_result(json.loads(text))
        for instance_id, text in connection.execute(
            """
            SELECT results.instance_id, result FROM results
            LEFT JOIN instances USING (instance_id)
            WHERE purpose = 'run' ORDER BY position, results.instance_id
            """
        )
    }
    waves = _waves(connection, results)
    header = RunHeader(
        run_id=run[0],
        plan_name=run[1],
        plan_path=run[2],
        plan_text=run[3],
        plan_sha256=run[4],
        target=json.loads(run[5]),
        created_at=decode_time(run[6]),
        instances=tuple(
            decode_instance(json.loads(text))
            for (text,) in connection.execute("SELECT instance FROM instances ORDER BY position")
        ),
        skipped=tuple(
            decode_skipped(json.loads(text))
            for (text,) in connection.execute("SELECT skipped FROM skipped ORDER BY position")
        ),
        waves=tuple(WaveRow(w.index, w.name, w.size, w.batches) for w in waves),
        origin=decode_origin(json.loads(run[15])),
    )
    halt: dict[str, Any] | None = None if run[10] is None else json.loads(run[10])
    return JournalRecord(
        header=header,
        state=run[8],
        updated_at=decode_time(run[7]),
        finished_at=None if run[9] is None else decode_time(run[9]),
        halt=None if halt is None else decode_halt(halt),
        halt_text="" if halt is None else halt.get("text", ""),
        exit_code=run[11],
        api_calls=json.loads(run[12]),
        throttles=run[13],
        waves=waves,
        batches=_batches(connection),
        results=results,
        gates=_gates(connection),
        waiting_for=run[14],
    )


def _waves(
    connection: sqlite3.Connection, results: Mapping[str, InstanceResult]
) -> tuple[WaveState, ...]:
    by_wave: dict[str, list[Outcome]] = {}
    for result in results.values():
        by_wave.setdefault(result.wave, []).append(result.outcome)
    return tuple(
        WaveState(
            index=index,
            name=name,
            size=size,
            batches=batches,
            state=state,
            started_at=None if started is None else decode_time(started),
            finished_at=None if finished is None else decode_time(finished),
            counts=_counts(by_wave.get(name, ())),
        )
        for index, name, size, batches, state, started, finished in connection.execute(
            """
            SELECT idx, name, size, batches, state, started_at, finished_at
            FROM waves ORDER BY idx
            """
        )
    )


def _batches(connection: sqlite3.Connection) -> tuple[BatchRow, ...]:
    return tuple(
        BatchRow(
            client_token=token,
            purpose=purpose,
            wave=wave,
            batch=batch,
            split_path=split_path,
            instance_ids=tuple(json.loads(ids)),
            state=BatchState(state),
            invoke_id=invoke_id,
            error_code=error_code,
        )
        for token, purpose, wave, batch, split_path, ids, state, invoke_id, error_code in (
            connection.execute(
                """
                SELECT client_token, purpose, wave, batch, split_path, instance_ids, state,
                    invoke_id, error_code
                FROM batches ORDER BY rowid
                """
            )
        )
    )


def _gates(connection: sqlite3.Connection) -> tuple[GateRow, ...]:
    return tuple(
        GateRow(wave, name, Verdict(verdict), errors, threshold, summary, decode_time(at))
        for wave, name, verdict, errors, threshold, summary, at in connection.execute(
            "SELECT wave, name, verdict, errors, threshold, summary, at FROM gates ORDER BY id"
        )
    )


def _listing(path: Path) -> RunListing:
    try:
        with _reading(path, MIGRATIONS) as connection:
            return _summary(connection, path)
    except (JournalError, OSError) as error:
        return RunListing(path.parent.name, path, UNREADABLE, error=str(error))


def _summary(connection: sqlite3.Connection, path: Path) -> RunListing:
    run = connection.execute(
        """
        SELECT run_id, plan_name, state, created_at, updated_at, halt, exit_code, waiting_for,
            origin
        FROM run
        """
    ).fetchone()
    if run is None:
        raise JournalError("no run in it: its creation did not finish")
    run_id, plan_name, state, created_at, updated_at, halt, exit_code, waiting_for, text = run
    origin = decode_origin(json.loads(text))
    counts = dict.fromkeys(Outcome, 0)
    for outcome, count in connection.execute(
        "SELECT outcome, count(*) FROM results WHERE purpose = 'run' GROUP BY outcome"
    ):
        counts[Outcome(outcome)] = count
    return RunListing(
        run_id=run_id,
        path=path,
        state=state,
        plan_name=plan_name,
        created_at=decode_time(created_at),
        updated_at=decode_time(updated_at),
        instances=connection.execute("SELECT count(*) FROM instances").fetchone()[0],
        counts=counts,
        halt_reason="" if halt is None else json.loads(halt)["reason"],
        exit_code=exit_code,
        waiting_for=waiting_for,
        kind=origin.kind,
        parent=origin.parent,
    )


def _counts(outcomes: Iterable[Outcome]) -> dict[Outcome, int]:
    counts = dict.fromkeys(Outcome, 0)
    for outcome in outcomes:
        counts[outcome] += 1
    return counts
