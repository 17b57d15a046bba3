"""What each recorded event becomes in the journal: rows, written in one transaction.

Runs in the writer's worker thread. Rows are streamed, never listed: a wave's or a run's
results are encoded one by one as SQLite takes them (at 100,000 instances a list of them
would cost tens of megabytes). Each ClientToken's row moves through exactly one state.
"""

from __future__ import annotations

import sqlite3  # noqa: TC003 - the connection is used at run time
from dataclasses import dataclass
from itertools import chain, groupby
from operator import itemgetter
from typing import TYPE_CHECKING, Final, assert_never

from orchestrator.journal._codec import dumps, encode_halt, encode_result, encode_time
from orchestrator.journal._header import now_text
from orchestrator.journal._schema import transaction
from orchestrator.rollout._dispatcher import BatchAttempt
from orchestrator.rollout._events import (
    ApprovalDenied,
    ApprovalGranted,
    ApprovalRequested,
    BatchDispatched,
    BatchRefused,
    GateDecided,
    InstanceFinished,
    RunFinished,
    WaveFinished,
    WaveStarted,
)
from orchestrator.rollout._outcome import Outcome

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from orchestrator.rollout._results import InstanceResult

# Halts after which the run is not over: what was not sent yet is sent by a resume.
RESUMABLE_HALTS: Final = frozenset({"interrupted", "unanswered", "tracking"})


@dataclass(frozen=True, slots=True)
class WavePassed:
    """A wave passed its gate: its final results (verify merges included)."""

    index: int
    results: tuple[InstanceResult, ...]


@dataclass(frozen=True, slots=True)
class ExitCodeRow:
    """The exit code the process ends with."""

    code: int


Item = (
    BatchAttempt
    | WavePassed
    | ExitCodeRow
    | WaveStarted
    | BatchDispatched
    | BatchRefused
    | InstanceFinished
    | GateDecided
    | WaveFinished
    | RunFinished
    | ApprovalRequested
    | ApprovalGranted
    | ApprovalDenied
)
RECORDED: Final = (
    WaveStarted,
    BatchDispatched,
    BatchRefused,
    InstanceFinished,
    GateDecided,
    WaveFinished,
    RunFinished,
    ApprovalRequested,
    ApprovalGranted,
    ApprovalDenied,
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
# The wave whose approval the run waits for (schema v2), so `status` can say how to give it.
_WAITING: Final = "UPDATE run SET waiting_for = ?"
_TOUCH: Final = "UPDATE run SET updated_at = ?"


def write_items(connection: sqlite3.Connection, items: Sequence[Item]) -> None:
    """One transaction for `items`, in order; consecutive rows of one statement go in
    one `executemany`."""
    now = now_text()
    # Streamed, never listed: a wave's or a run's results are encoded row by row as
    # SQLite takes them (at 100,000 instances a list of them costs tens of megabytes).
    statements = chain((row for item in items for row in _statements(item, now)),
                       [(_TOUCH, (now,))])  # fmt: skip
    with transaction(connection):
        for sql, rows in groupby(statements, key=itemgetter(0)):
            connection.executemany(sql, (params for _, params in rows))


def _statements(item: Item, now: str) -> Iterator[_Statement]:
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
    item: WavePassed
    | ExitCodeRow
    | WaveStarted
    | GateDecided
    | WaveFinished
    | RunFinished
    | ApprovalRequested
    | ApprovalGranted
    | ApprovalDenied,
    now: str,
) -> Iterator[_Statement]:
    if isinstance(item, ApprovalRequested):
        yield _WAITING, (item.name,)
    elif isinstance(item, ApprovalGranted | ApprovalDenied):
        yield _WAITING, (None,)
    elif isinstance(item, WaveStarted):
        yield _WAVE_STARTED, (encode_time(item.at), item.index)
    elif isinstance(item, WaveFinished):
        yield _WAVE_FINISHED, (encode_time(item.at), item.index)
    elif isinstance(item, GateDecided):
        gate = item.decision
        verdict, summary = gate.verdict.value, gate.summary()
        yield _GATE, (gate.wave, gate.name, verdict, gate.errors, gate.threshold, summary, now)
    elif isinstance(item, WavePassed):
        yield from (_result_row(result) for result in item.results)
        yield _WAVE_PASSED, (item.index,)
    elif isinstance(item, RunFinished):
        yield _WAITING, (None,)  # however it ended, nobody is asked any more
        yield from _run_finished(item, now)
    elif isinstance(item, ExitCodeRow):
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
