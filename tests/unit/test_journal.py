"""The run journal on real SQLite files: the codec's round trips, durable and buffered
writes, what a resume reads back, readers beside a live writer, and listing runs."""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import anyio
import pytest

from orchestrator.api import InstanceStatus
from orchestrator.ecs import Instance
from orchestrator.errors import JournalError
from orchestrator.journal import (
    UNREADABLE,
    JournalRecord,
    RunHeader,
    WaveRow,
    create_journal,
    journal_path,
    list_runs,
    read_journal,
    reopen_journal,
)
from orchestrator.journal._codec import (
    decode_halt,
    decode_instance,
    decode_result,
    decode_skipped,
    encode_halt,
    encode_instance,
    encode_result,
    encode_skipped,
)
from orchestrator.plan._model import Amount
from orchestrator.rollout import (
    ApprovalRequested,
    BatchAttempt,
    BatchDispatched,
    GateDecided,
    GateDecision,
    Halt,
    InstanceFinished,
    InstanceResult,
    Outcome,
    RolloutResult,
    RunFinished,
    Verdict,
    WaveFinished,
    WavePlan,
    WaveStarted,
    client_token,
)
from orchestrator.rollout._events import BatchRefused, RunStarted
from orchestrator.rollout._history import BatchState
from orchestrator.targets import Skipped, SkipReason

pytestmark = pytest.mark.anyio

RUN = "run-1"
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SECRET = "s3cr3t-NEVER-ON-DISK-7f1c2a"
# A real SQLite failure, made by the database itself, for the writer to meet.
REFUSE_GATES = """
    CREATE TRIGGER no_gates BEFORE INSERT ON gates
    BEGIN SELECT RAISE(ABORT, 'disk says no'); END
"""


def instance(n: int) -> Instance:
    return Instance(
        f"i-{n:04d}",
        f"web-{n}",
        InstanceStatus.RUNNING,
        "cn-hangzhou-h",
        "cn-hangzhou",
        "linux",
        os_name="Alibaba Cloud Linux 3",
        creation_time=T0 - timedelta(days=n),
        private_ips=(f"10.0.0.{n}",),
        tags={"env": "prod", "n": str(n)},
    )


INSTANCES = tuple(instance(n) for n in range(5))
IDS = tuple(i.instance_id for i in INSTANCES)
SKIPPED = (Skipped("i-gone", SkipReason.NOT_FOUND, "DescribeInstances does not know it"),)
WAVES = (WaveRow(0, "canary", 1, 1), WaveRow(1, "rest", 4, 2))


def header(run_id: str = RUN, created_at: datetime = T0) -> RunHeader:
    return RunHeader(
        run_id=run_id,
        plan_name="patch-openssl",
        plan_path="plans/patch.yaml",
        plan_text="name: patch-openssl\ncommand: {type: RunShellScript, content: 'true'}\n",
        plan_sha256="ab" * 32,
        target={"endpoint": "http://127.0.0.1:8080", "region": "cn-hangzhou", "profile": None},
        created_at=created_at,
        instances=INSTANCES,
        skipped=SKIPPED,
        waves=WAVES,
    )


def attempt(wave: int, batch: int, ids: tuple[str, ...], path: str = "") -> BatchAttempt:
    return BatchAttempt(RUN, wave, batch, path, client_token(RUN, wave, batch, path), ids)


def result(index: int, outcome: Outcome = Outcome.SUCCEEDED, **fields: object) -> InstanceResult:
    wave = "canary" if index == 0 else "rest"
    return InstanceResult(IDS[index], outcome, wave=wave, **fields)  # type: ignore[arg-type]


def wave_plan(index: int) -> WavePlan:
    members = INSTANCES[:1] if index == 0 else INSTANCES[1:]
    return WavePlan(index, WAVES[index].name, members, ())


def decision(wave: int, verdict: Verdict, errors: int) -> GateDecision:
    name = WAVES[wave].name
    return GateDecision(wave, name, WAVES[wave].size, Amount(1), 1, errors, verdict, "numbers")


def finished(*results: InstanceResult, halt: Halt | None = None, interrupted: bool = False):
    outcome = RolloutResult(
        RUN,
        results,
        api_calls={"RunCommand": 3, "DescribeInvocations": 7},
        throttles=2,
        finished_at=T0 + timedelta(minutes=5),
        halt=halt,
    )
    return RunFinished(outcome, interrupted=interrupted)


def execute(path, sql: str) -> None:
    """One statement on a connection of the test's own, beside the writer's."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute(sql)
    finally:
        connection.close()


@pytest.fixture
def path(tmp_path):
    return journal_path(tmp_path, RUN)


# --- the codec ---------------------------------------------------------------------------


def through_json(data: dict[str, object]) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(json.dumps(data))
    return loaded


def test_instances_and_skipped_round_trip():
    """Every field comes back, tags and IPs included; a missing creation time stays None."""
    bare = Instance("i-bare", "", InstanceStatus.STOPPED, "", "", "windows")
    for original in (*INSTANCES, bare):
        assert decode_instance(through_json(encode_instance(original))) == original
    assert decode_instance(through_json(encode_instance(bare))).creation_time is None
    assert decode_skipped(through_json(encode_skipped(SKIPPED[0]))) == SKIPPED[0]


def test_results_round_trip_with_nested_verify_and_times():
    """The verify result nests; times keep their offset; None times stay None."""
    east = timezone(timedelta(hours=8))
    verify = InstanceResult(
        "i-0001",
        Outcome.FAILED,
        wave="rest",
        invoke_id="t-verify",
        status="Failed",
        exit_code=3,
        start_time=datetime(2026, 5, 1, 20, 0, 1, 250000, tzinfo=east),
        finish_time=None,
        output="verify: bad\n",
    )
    original = InstanceResult(
        "i-0001",
        Outcome.FAILED,
        wave="rest",
        zone_id="cn-hangzhou-h",
        invoke_id="t-run",
        status="Success",
        exit_code=0,
        error_code="",
        error_info="verify failed",
        start_time=T0,
        finish_time=T0 + timedelta(seconds=9),
        output="head…tail \u00e9",
        output_dropped=123,
        verify=verify,
    )
    decoded = decode_result(through_json(encode_result(original)))
    assert decoded == original
    assert decoded.verify is not None
    assert decoded.verify.start_time is not None
    assert decoded.verify.start_time.utcoffset() == timedelta(hours=8)
    assert decoded.outcome is Outcome.FAILED
    assert encode_result(original)["outcome"] == "failed"  # by value


def test_a_naive_time_is_stored_as_utc():
    naive = InstanceResult("i-1", Outcome.SUCCEEDED, start_time=datetime(2026, 5, 1, 12))  # noqa: DTZ001
    assert decode_result(encode_result(naive)).start_time == T0


def test_halt_keeps_its_numbers_and_sentence_without_the_decision():
    halt = Halt(
        "breach",
        message="wave rest breached",
        wave="rest",
        decision=decision(1, Verdict.BREACH, 2),
        in_flight=3,
        stop_requested=3,
        stopped=2,
        not_started=("last",),
    )
    data = through_json(encode_halt(halt))
    assert data["text"] == halt.describe()
    assert "breached: 2 errors > max_errors 1" in str(data["text"])
    decoded = decode_halt(data)
    assert decoded.decision is None
    assert decoded == Halt(
        "breach",
        message="wave rest breached",
        wave="rest",
        in_flight=3,
        stop_requested=3,
        stopped=2,
        not_started=("last",),
    )


# --- writing and reading back --------------------------------------------------------------


async def test_create_writes_the_header_before_anything(path):
    """Inside the block, before any event, another connection reads the whole header."""
    async with create_journal(path, header()) as writer:
        record = read_journal(path)
        assert record.header == header()
        assert record.state == "running"
        assert [w.state for w in record.waves] == ["pending", "pending"]
        assert record.results == {}
        assert record.batches == ()
        assert writer.path == path
    connection = sqlite3.connect(path)
    try:
        row = connection.execute("SELECT pid, target FROM run").fetchone()
    finally:
        connection.close()
    assert row[0] == os.getpid()
    assert json.loads(row[1])["region"] == "cn-hangzhou"


async def test_before_dispatch_is_durable_before_it_returns(path):
    """The token is readable from another connection the moment before_dispatch returns,
    with no commit and no flusher turn in between."""
    first = attempt(0, 0, IDS[:1])
    async with create_journal(path, header()) as writer:
        await writer.before_dispatch(first)
        (row,) = read_journal(path).batches
        assert row.client_token == first.client_token
        assert row.state is BatchState.SENDING
        assert row.instance_ids == IDS[:1]
        assert (row.purpose, row.wave, row.batch, row.split_path) == ("run", 0, 0, "")


async def test_before_approval_is_durable_before_it_returns(path):
    """The wave a run is about to wait at is readable from another connection the moment
    before_approval returns: a person told "waiting" finds it in `status` at once."""
    async with create_journal(path, header()) as writer:
        request = ApprovalRequested("run-1", 0, "canary", "the plan asks", "approve it", T0)
        await writer.before_approval(request)
        assert read_journal(path).waiting_for == "canary"
        writer(request)  # then told to the world: the same row, the same value
        await writer.commit()
        assert read_journal(path).waiting_for == "canary"


async def test_events_are_buffered_until_a_commit(path):
    """A sink call writes nothing by itself; the next commit writes every pending row."""
    token = attempt(0, 0, IDS[:1])
    async with create_journal(path, header()) as writer:
        await writer.before_dispatch(token)
        writer(BatchDispatched(0, 0, "", token.client_token, "t-1", IDS[:1], T0))
        writer(InstanceFinished(result(0)))
        writer(RunStarted(RUN, "p", 5, (1, 4), T0))  # not recorded, and no error
        before = read_journal(path)
        assert before.batches[0].state is BatchState.SENDING
        assert before.results == {}
        await writer.commit()
        after = read_journal(path)
        assert after.batches[0].state is BatchState.ACCEPTED
        assert after.batches[0].invoke_id == "t-1"
        assert after.results == {IDS[0]: result(0)}


async def test_leaving_the_block_writes_what_is_pending(path):
    async with create_journal(path, header()) as writer:
        writer(InstanceFinished(result(0)))
    assert read_journal(path).results == {IDS[0]: result(0)}


async def test_a_cancelled_run_still_writes_its_last_events(path):
    """Ctrl-C: the block is cancelled, and the pending rows reach the file anyway."""
    with anyio.CancelScope() as scope:
        async with create_journal(path, header()) as writer:
            writer(InstanceFinished(result(0)))
            writer(finished(result(0), halt=Halt("interrupted"), interrupted=True))
            scope.cancel()
            await anyio.sleep_forever()
    record = read_journal(path)
    assert record.state == "interrupted"
    assert record.results == {IDS[0]: result(0)}


async def test_a_commit_cancelled_as_it_starts_loses_nothing(path):
    """A cancellation that lands while a commit takes the lock (another task cancels it
    at that very moment) neither loses the rows the commit took nor half-writes them."""
    cancelled = anyio.CancelScope()

    async def commit(writer) -> None:
        with cancelled:
            await writer.commit()

    async def cancel() -> None:
        cancelled.cancel()

    async with create_journal(path, header()) as writer:
        writer(InstanceFinished(result(0)))
        async with anyio.create_task_group() as group:
            group.start_soon(commit, writer)
            group.start_soon(cancel)
        assert read_journal(path).results == {IDS[0]: result(0)}


async def test_a_whole_run_reads_back(path):
    """Waves, tokens, results (replaced by their verify merge), gates, the end."""
    canary, rest = attempt(0, 0, IDS[:1]), attempt(1, 0, IDS[1:3])
    split_left, split_right = attempt(1, 1, IDS[3:4], "0"), attempt(1, 1, IDS[4:5], "1")
    merged = result(0, verify=InstanceResult(IDS[0], Outcome.SUCCEEDED, wave="canary"))
    async with create_journal(path, header()) as writer:
        writer(WaveStarted(0, "canary", 1, 1, T0))
        await writer.before_dispatch(canary)
        writer(BatchDispatched(0, 0, "", canary.client_token, "t-c", IDS[:1], T0))
        writer(InstanceFinished(result(0)))
        writer(GateDecided(decision(0, Verdict.PASS, 0)))
        writer(WaveFinished(0, "canary", {Outcome.SUCCEEDED: 1}, T0 + timedelta(seconds=30)))
        assert await writer.after_wave(wave_plan(0), [merged])
        writer(WaveStarted(1, "rest", 4, 2, T0 + timedelta(minutes=1)))
        await writer.before_dispatch(rest)
        writer(BatchDispatched(1, 0, "", rest.client_token, "t-r", IDS[1:3], T0))
        await writer.before_dispatch(split_left)
        writer(
            BatchRefused(
                1,
                1,
                "0",
                split_left.client_token,
                BatchState.REJECTED,
                "InvalidInstance.NotFound",
                "gone",
            )
        )
        await writer.before_dispatch(split_right)
        writer(BatchDispatched(1, 1, "1", split_right.client_token, "t-s", IDS[4:5], T0))
        writer(InstanceFinished(result(1)))
        writer(InstanceFinished(result(2, Outcome.FAILED, exit_code=1)))
        writer(InstanceFinished(result(3, Outcome.SKIPPED, error_code="InvalidInstance.NotFound")))
        writer(InstanceFinished(result(4)))
        writer(GateDecided(decision(1, Verdict.BREACH, 2)))
        writer(WaveFinished(1, "rest", {}, T0 + timedelta(minutes=2)))
        writer(finished(merged, *(result(n) for n in (1, 3, 4)), result(2, Outcome.FAILED)))
        await writer.finish(1)

    record = read_journal(path)
    assert record.state == "finished"
    assert record.exit_code == 1
    assert record.api_calls == {"RunCommand": 3, "DescribeInvocations": 7}
    assert record.throttles == 2
    assert record.finished_at == T0 + timedelta(minutes=5)
    assert record.halt is None
    assert record.halt_text == ""
    assert [(w.name, w.state) for w in record.waves] == [("canary", "passed"), ("rest", "finished")]
    assert record.waves[0].started_at == T0
    assert record.waves[0].finished_at == T0 + timedelta(seconds=30)
    assert record.waves[1].counts[Outcome.SUCCEEDED] == 2
    assert record.waves[1].counts[Outcome.FAILED] == 1
    assert record.waves[1].counts[Outcome.SKIPPED] == 1
    assert record.results[IDS[0]] == merged  # the verify merge replaced the first result
    assert list(record.results) == list(IDS)  # in target order
    assert record.counts() == {
        Outcome.SUCCEEDED: 3,
        Outcome.FAILED: 1,
        Outcome.UNDELIVERED: 0,
        Outcome.STOPPED: 0,
        # Results are written as they come; RunFinished writes only what never came
        # (NOT_SENT, verify merges of a wave that did not pass), so it replaces nothing.
        Outcome.SKIPPED: 1,
        Outcome.NOT_SENT: 0,
    }
    assert [(b.client_token, b.state, b.invoke_id, b.error_code) for b in record.batches] == [
        (canary.client_token, BatchState.ACCEPTED, "t-c", ""),
        (rest.client_token, BatchState.ACCEPTED, "t-r", ""),
        (split_left.client_token, BatchState.REJECTED, "", "InvalidInstance.NotFound"),
        (split_right.client_token, BatchState.ACCEPTED, "t-s", ""),
    ]
    assert [(g.wave, g.verdict, g.errors, g.threshold) for g in record.gates] == [
        (0, Verdict.PASS, 0, 1),
        (1, Verdict.BREACH, 2, 1),
    ]
    assert record.gates[1].summary == "wave rest breached: 2 errors > max_errors 1"


@pytest.mark.parametrize(
    ("halt", "interrupted"),
    [
        (Halt("interrupted", message="the run was cancelled"), True),
        (Halt("unanswered", "ServiceUnavailable", "no answer", wave="rest", in_flight=2), False),
        (Halt("tracking", "InternalError", "cannot read results"), True),
    ],
)
async def test_an_interrupted_run_keeps_not_sent_instances_unsent(path, halt, interrupted):
    """A resumable stop: state `interrupted`, and NOT_SENT is not recorded as an outcome."""
    async with create_journal(path, header()) as writer:
        writer(InstanceFinished(result(0)))
        writer(finished(result(0), result(1, Outcome.NOT_SENT), halt=halt, interrupted=interrupted))
    record = read_journal(path)
    assert record.state == "interrupted"
    assert record.results == {IDS[0]: result(0)}
    assert record.halt == halt
    assert record.halt_text == halt.describe()


async def test_a_halted_run_is_finished_with_its_not_sent_instances(path):
    halt = Halt(
        "breach", wave="canary", decision=decision(0, Verdict.BREACH, 2), not_started=("rest",)
    )
    async with create_journal(path, header()) as writer:
        writer(finished(result(0, Outcome.FAILED), result(1, Outcome.NOT_SENT), halt=halt))
        await writer.finish(3)
    record = read_journal(path)
    assert record.state == "finished"
    assert record.exit_code == 3
    assert record.results[IDS[1]].outcome is Outcome.NOT_SENT
    assert record.halt is not None
    assert record.halt.reason == "breach"
    assert record.halt.not_started == ("rest",)
    assert (
        record.halt_text == "wave canary breached: 2 errors > max_errors 1; wave rest not started"
    )


async def test_history_has_one_state_per_token_and_the_passed_waves(path):
    """What a resume needs: each token once, in its last state; passed and started waves."""
    whole = attempt(1, 0, IDS[1:5])
    halves = [attempt(1, 0, IDS[1:3], "0"), attempt(1, 0, IDS[3:5], "1")]
    lone = [attempt(1, 0, IDS[3:4], "10"), attempt(1, 0, IDS[4:5], "11")]
    refused = attempt(1, 1, IDS[1:2])
    withdrawn = attempt(1, 2, IDS[2:3])
    async with create_journal(path, header()) as writer:
        writer(WaveStarted(0, "canary", 1, 1, T0))
        await writer.after_wave(wave_plan(0), [result(0)])
        writer(WaveStarted(1, "rest", 4, 2, T0))
        for sent in (whole, *halves, *lone, refused, withdrawn):
            await writer.before_dispatch(sent)

        def refuse(sent: BatchAttempt, state: BatchState, code: str) -> None:
            writer(BatchRefused(1, sent.batch, sent.split_path, sent.client_token, state, code, ""))

        refuse(whole, BatchState.SPLIT, "InvalidInstance.NotFound")
        refuse(halves[1], BatchState.SPLIT, "InvalidInstance.NotFound")
        refuse(lone[0], BatchState.REJECTED, "InvalidInstance.NotFound")
        refuse(refused, BatchState.REFUSED, "Invocation.ExceedQuota")
        refuse(withdrawn, BatchState.WITHDRAWN, "")
        writer(BatchDispatched(1, 0, "0", halves[0].client_token, "t-h", IDS[1:3], T0))
        await writer.before_dispatch(halves[0])  # sent again: its answer is kept

    history = read_journal(path).history()
    assert {token: b.state for token, b in history.batches.items()} == {
        whole.client_token: BatchState.SPLIT,
        halves[0].client_token: BatchState.ACCEPTED,
        halves[1].client_token: BatchState.SPLIT,
        lone[0].client_token: BatchState.REJECTED,
        lone[1].client_token: BatchState.SENDING,
        refused.client_token: BatchState.REFUSED,
        withdrawn.client_token: BatchState.WITHDRAWN,
    }
    assert history.batch(halves[0].client_token).invoke_id == "t-h"  # type: ignore[union-attr]
    assert history.batch(refused.client_token).error_code == "Invocation.ExceedQuota"  # type: ignore[union-attr]
    assert history.passed_waves == frozenset({0})
    assert history.started_waves == frozenset({0, 1})
    assert history.results == {IDS[0]: result(0)}


async def test_reopen_marks_the_run_running_and_keeps_what_it_knew(path):
    sent = attempt(0, 0, IDS[:1])
    async with create_journal(path, header()) as writer:
        await writer.before_dispatch(sent)
        writer(BatchDispatched(0, 0, "", sent.client_token, "t-1", IDS[:1], T0))
        writer(finished(halt=Halt("interrupted"), interrupted=True))
        await writer.finish(130)
    assert read_journal(path).state == "interrupted"
    async with reopen_journal(path) as writer:
        record = read_journal(path)
        assert record.state == "running"
        assert (record.halt, record.exit_code, record.finished_at) == (None, None, None)
        await writer.before_dispatch(sent)  # the resume re-sends the same token
        writer(finished(result(0)))
    record = read_journal(path)
    assert record.state == "finished"
    (row,) = record.batches
    assert (row.state, row.invoke_id) == (BatchState.ACCEPTED, "t-1")


async def test_a_run_is_created_once(path):
    async with create_journal(path, header()) as writer:
        writer(InstanceFinished(result(0)))
    with pytest.raises(JournalError, match="run run-1 already has a journal"):
        async with create_journal(path, header()):
            pass
    assert read_journal(path).results == {IDS[0]: result(0)}  # the first is untouched


async def test_a_missing_run_names_the_run_and_the_state_dir(tmp_path):
    missing = journal_path(tmp_path, "run-404")
    with pytest.raises(JournalError) as raised:
        read_journal(missing)
    assert "run-404" in str(raised.value)
    assert str(tmp_path) in str(raised.value)
    with pytest.raises(JournalError, match="run-404"):
        async with reopen_journal(missing):
            pass
    assert not missing.exists()


async def test_readers_work_beside_an_open_writer_and_after_it(path):
    """WAL: a read-only reader sees every commit while the writer holds the file, and
    reads the file alone once the writer closed it."""
    async with create_journal(path, header()) as writer:
        writer(InstanceFinished(result(0)))
        await writer.commit()
        assert path.with_name(path.name + "-wal").exists()
        assert read_journal(path).results == {IDS[0]: result(0)}
        assert list_runs(path.parent.parent.parent)[0].state == "running"
        writer(InstanceFinished(result(1)))
        await writer.commit()
        assert len(read_journal(path).results) == 2
    assert not path.with_name(path.name + "-wal").exists()
    assert len(read_journal(path).results) == 2


async def test_many_events_and_concurrent_dispatches_share_few_transactions(path):
    """10,000 results and 200 tokens sent at once: every row lands, and group commit
    writes them in a handful of transactions, not one per call."""
    ids = tuple(f"i-{n:05d}" for n in range(10_000))
    async with create_journal(path, header()) as writer:
        for instance_id in ids:
            writer(InstanceFinished(InstanceResult(instance_id, Outcome.SUCCEEDED, wave="rest")))
        async with anyio.create_task_group() as group:
            for batch in range(200):
                group.start_soon(writer.before_dispatch, attempt(1, batch, IDS[1:2]))
        assert writer.transactions < 10
    record = read_journal(path)
    assert len(record.results) == 10_000
    assert len(record.batches) == 200
    assert {b.state for b in record.batches} == {BatchState.SENDING}


async def test_a_failed_write_keeps_its_rows_for_the_next(path):
    """When SQLite refuses a flush, commit raises JournalError and loses nothing."""
    async with create_journal(path, header()) as writer:
        execute(path, REFUSE_GATES)
        writer(InstanceFinished(result(0)))
        writer(GateDecided(decision(0, Verdict.PASS, 0)))
        with pytest.raises(JournalError, match="disk says no"):
            await writer.commit()
        assert read_journal(path).results == {}  # nothing of the failed transaction
        execute(path, "DROP TRIGGER no_gates")
        await writer.commit()
        record = read_journal(path)
        assert record.results == {IDS[0]: result(0)}
        assert len(record.gates) == 1


async def test_a_flusher_that_cannot_write_stops_the_run(path):
    """The background flush failing cancels the block and raises its JournalError (not an
    exception group): a run that cannot be journaled must not go on."""

    async def until_the_flusher_fails() -> None:
        async with create_journal(path, header()) as writer:
            execute(path, REFUSE_GATES)
            writer(GateDecided(decision(0, Verdict.PASS, 0)))
            try:
                await anyio.sleep_forever()  # until the flusher's error cancels it
            finally:
                execute(path, "DROP TRIGGER no_gates")  # so that the final flush works

    with pytest.raises(JournalError, match="disk says no"):
        await until_the_flusher_fails()
    assert len(read_journal(path).gates) == 1  # kept, and written on the way out


async def test_an_error_in_the_block_comes_out_as_itself(path):
    async def failing_run() -> None:
        async with create_journal(path, header()) as writer:
            writer(InstanceFinished(result(0)))
            raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        await failing_run()
    assert read_journal(path).results == {IDS[0]: result(0)}


async def test_no_credential_reaches_the_file(path, monkeypatch):
    """The journal holds the target, never credentials: neither a secret in the
    environment nor one passed in the target can end up on disk."""
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI-test-key-id")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", SECRET + "-token")
    for key in ("access_key_secret", "security_token", "AccessKeyId"):
        with pytest.raises(ValueError, match=f"never holds credentials: {key}"):
            replace(header(), target={"region": "x", key: SECRET})
    assert replace(header(), target={"region": "x", "ignore_quota": "yes"}).target
    async with create_journal(path, header()) as writer:
        await writer.before_dispatch(attempt(0, 0, IDS[:1]))
        writer(InstanceFinished(result(0)))
        writer(finished(result(0), halt=Halt("refused", "Forbidden.RAM", "not allowed")))
        await writer.commit()
        files = list(path.parent.iterdir())
        assert any(f.name.endswith("-wal") for f in files)
        for file in files:
            assert SECRET.encode() not in file.read_bytes()
    assert SECRET.encode() not in path.read_bytes()


# --- reading what is not a good journal, and listing runs -------------------------------


async def test_list_runs_newest_first_with_a_bad_file_among_them(tmp_path):
    older, newer = journal_path(tmp_path, "run-a"), journal_path(tmp_path, "run-b")
    async with create_journal(older, header("run-a", T0)) as writer:
        writer(InstanceFinished(result(0, Outcome.FAILED)))
        writer(finished(result(0, Outcome.FAILED), halt=Halt("denied", wave="canary")))
        await writer.finish(4)
    async with create_journal(newer, header("run-b", T0 + timedelta(hours=1))) as writer:
        writer(InstanceFinished(result(0)))
    garbage = journal_path(tmp_path, "run-garbage")
    garbage.parent.mkdir(parents=True)
    garbage.write_bytes(b"this is not SQLite at all, just bytes" * 100)
    empty = journal_path(tmp_path, "run-empty")
    empty.parent.mkdir(parents=True)
    empty.touch()
    (tmp_path / "runs" / "run-no-journal" / "approvals").mkdir(parents=True)

    listing = list_runs(tmp_path)
    assert [r.run_id for r in listing] == ["run-b", "run-a", "run-empty", "run-garbage"]
    b, a, bad_empty, bad_garbage = listing
    assert (b.state, b.plan_name, b.instances, b.created_at) == (
        "running",
        "patch-openssl",
        5,
        T0 + timedelta(hours=1),
    )
    assert b.counts[Outcome.SUCCEEDED] == 1
    assert (a.state, a.halt_reason, a.exit_code, a.counts[Outcome.FAILED]) == (
        "finished",
        "denied",
        4,
        1,
    )
    assert a.updated_at is not None
    assert a.error == ""
    assert (bad_garbage.state, bad_garbage.path) == (UNREADABLE, garbage)
    assert "not a readable journal" in bad_garbage.error
    assert bad_empty.state == UNREADABLE
    assert "empty" in bad_empty.error
    assert list_runs(tmp_path / "nowhere") == []


def test_a_file_that_is_not_a_journal_is_refused(path):
    path.parent.mkdir(parents=True)
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE mine (x)")
    other.close()
    with pytest.raises(JournalError, match="not an orchestrator journal"):
        read_journal(path)
    path.write_bytes(b"\x00garbage" * 512)
    with pytest.raises(JournalError, match="not a readable journal"):
        read_journal(path)


async def test_reopen_refuses_a_file_that_is_not_a_journal(path):
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x00garbage" * 512)
    with pytest.raises(JournalError, match="is not a journal"):
        async with reopen_journal(path):
            pass
    assert path.read_bytes() == b"\x00garbage" * 512


async def test_the_main_file_alone_holds_the_header_and_each_passed_wave(path, tmp_path):
    """Checkpoints: a copy of journal.sqlite without its -wal, taken while the writer is
    open, has the header at once and a wave's results once `after_wave` returned."""

    def main_file_alone() -> JournalRecord:
        copy = tmp_path / "copy" / "journal.sqlite"
        copy.parent.mkdir(exist_ok=True)
        for stale in copy.parent.iterdir():
            stale.unlink()
        copy.write_bytes(path.read_bytes())
        return read_journal(copy)

    async with create_journal(path, header()) as writer:
        assert path.with_name(path.name + "-wal").exists()  # in WAL mode, open
        assert main_file_alone().header.instances == INSTANCES
        writer(WaveStarted(0, "canary", 1, 1, T0))
        await writer.before_dispatch(attempt(0, 0, IDS[:1]))
        assert writer.checkpoints == 0
        await writer.after_wave(wave_plan(0), [result(0)])
        assert writer.checkpoints == 1
        alone = main_file_alone()
        assert alone.waves[0].state == "passed"
        assert alone.results[IDS[0]].outcome is Outcome.SUCCEEDED
        assert [row.client_token for row in alone.batches] == [attempt(0, 0, IDS[:1]).client_token]
        await writer.finish(0)
        assert main_file_alone().exit_code == 0
