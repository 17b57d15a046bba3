"""Resuming a run from its journal, against the simulator over real HTTP: an interrupted
run continues where it stopped and every instance runs exactly once (the simulator's
execution counts say so); sends whose answer was lost are sent again with their token;
a recorded split is replayed, never re-sent whole; a drain lets what runs finish; a stop
stops it. After every cancellation the journal is consistent: each ClientToken in
exactly one state, an InvokeId for every accepted one, and every invocation the
simulator holds for the run known to the journal."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio
import pytest

from orchestrator.api import InstanceStatus
from orchestrator.journal import (
    JournalRecord,
    RunHeader,
    WaveRow,
    create_journal,
    read_journal,
    reopen_journal,
)
from orchestrator.plan._model import Amount, Command, Limits, Plan, Targets, Verify, Wave
from orchestrator.rollout import (
    ApprovalRequested,
    BatchDispatched,
    BatchState,
    Event,
    Outcome,
    RecordedBatch,
    RecordingSink,
    RolloutResult,
    RunControl,
    RunHistory,
    VerifyStarted,
    keep_order,
    run_rollout,
    shape_waves,
)
from orchestrator.sim import FaultSpec
from orchestrator.testing import Simulated, simulated

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from orchestrator.ecs import EcsClient, Instance

pytestmark = pytest.mark.anyio

RUN = "r-resume"


def fleet_yaml(count: int, *, duration: float = 2) -> str:
    return f"""
region: cn-hangzhou
seed: 5
time_scale: 0.01
quotas: {{invocations_daily: 100000, commands: 500, max_instances_per_call: 50}}
generate:
  - count: {count}
    zones: [cn-hangzhou-h, cn-hangzhou-i]
behaviour:
  default: {{duration: {duration}, delivery_delay: 0.5, output: "ok\\n"}}
"""


def two_waves(batch_size: int = 10) -> Plan:
    return Plan(
        name="resume",
        targets=Targets(),
        command=Command(content="echo ok", timeout=60),
        waves=(Wave("first", Amount(40, percent=True)), Wave("rest", Amount(100, percent=True))),
        limits=Limits(batch_size=batch_size),
    )


async def runnable(client: EcsClient) -> list[Instance]:
    return [i async for i in client.describe_instances() if i.status is InstanceStatus.RUNNING]


def header(plan: Plan, instances: Sequence[Instance]) -> RunHeader:
    waves = shape_waves(plan, instances, keep_order)
    return RunHeader(
        run_id=RUN,
        plan_name=plan.name,
        plan_path="plan.yaml",
        plan_text="name: resume\n",
        plan_sha256="0" * 64,
        target={"endpoint": "http://127.0.0.1", "region": "cn-hangzhou"},
        created_at=datetime.now(UTC),
        instances=tuple(instances),
        skipped=(),
        waves=tuple(
            WaveRow(w.plan.index, w.plan.name, w.plan.size, len(w.plan.batches)) for w in waves
        ),
    )


async def first_attempt(
    env: Simulated,
    plan: Plan,
    instances: Sequence[Instance],
    path: Path,
    *,
    stop_when: Callable[[Event], bool],
) -> None:
    """Run under a new journal; cancel everything (a second Ctrl-C) at `stop_when`."""
    with anyio.CancelScope() as everything:
        async with create_journal(path, header(plan, instances)) as journal:

            def sink(event: Event) -> None:
                journal(event)
                if stop_when(event):
                    everything.cancel()

            await run_rollout(
                plan, env.client, instances, run_id=RUN, clock=env.clock, sink=sink, hooks=journal
            )
    assert everything.cancelled_caught


async def resumed(
    env: Simulated,
    plan: Plan,
    instances: Sequence[Instance],
    path: Path,
    history: RunHistory | None = None,
    control: RunControl | None = None,
) -> RolloutResult:
    record = read_journal(path)
    async with reopen_journal(path) as journal:
        return await run_rollout(
            plan,
            env.client,
            instances,
            run_id=RUN,
            clock=env.clock,
            sink=journal,
            hooks=journal,
            history=history if history is not None else record.history(),
            control=control,
        )


async def asked_after_first_batch(
    env: Simulated,
    plan: Plan,
    instances: Sequence[Instance],
    path: Path,
    ask: Callable[[RunControl], None],
) -> RolloutResult:
    """A journaled run whose control is asked (drain, stop) at its first accepted batch."""
    control = RunControl()
    async with create_journal(path, header(plan, instances)) as journal:

        def sink(event: Event) -> None:
            journal(event)
            if isinstance(event, BatchDispatched):
                ask(control)

        return await run_rollout(
            plan,
            env.client,
            instances,
            run_id=RUN,
            clock=env.clock,
            sink=sink,
            hooks=journal,
            control=control,
        )


def nth_batch(n: int) -> Callable[[Event], bool]:
    seen = 0

    def check(event: Event) -> bool:
        nonlocal seen
        if isinstance(event, BatchDispatched):
            seen += 1
        return isinstance(event, BatchDispatched) and seen == n

    return check


def assert_exactly_once(env: Simulated, instances: Sequence[Instance]) -> None:
    counts = env.sim.simulation.execution_counts()
    runs = {i: sum(per_invocation.values()) for i, per_invocation in counts.items()}
    assert runs == {instance.instance_id: 1 for instance in instances}


def assert_consistent(record: JournalRecord, env: Simulated) -> None:
    """Each token in one state; accepted ones have their InvokeId; every invocation of
    the run in the simulator is one the journal sent (accepted, or still unanswered)."""
    tokens = [row.client_token for row in record.batches]
    assert len(tokens) == len(set(tokens))
    accepted = {row.invoke_id for row in record.batches if row.state is BatchState.ACCEPTED}
    assert all(row.invoke_id for row in record.batches if row.state is BatchState.ACCEPTED)
    unanswered = sum(row.state is BatchState.SENDING for row in record.batches)
    invocations = set().union(
        *(set(per.keys()) for per in env.sim.simulation.execution_counts().values())
    )
    unknown = invocations - accepted
    assert len(unknown) <= unanswered
    # A result only for instances that were in an accepted batch.
    sent = {
        i for row in record.batches if row.state is BatchState.ACCEPTED for i in row.instance_ids
    }
    assert set(record.results) <= sent


@pytest.mark.parametrize("crash_after", [1, 3, 5])
async def test_an_interrupted_run_resumes_and_every_instance_runs_once(
    tmp_path: Path, crash_after: int
):
    """Cancelled after the n-th accepted batch (mid-wave, across the waves), then resumed
    from the journal: all 50 instances run exactly once, and the journal says finished."""
    path = tmp_path / "journal.sqlite"
    plan = two_waves()
    async with simulated(fleet_yaml(50)) as env:
        instances = await runnable(env.client)
        await first_attempt(env, plan, instances, path, stop_when=nth_batch(crash_after))
        record = read_journal(path)
        assert record.state == "interrupted"
        assert_consistent(record, env)
        sent_before = env.sim.stats.count("RunCommand")
        result = await resumed(env, plan, instances, path)
        assert result.halt is None
        assert result.counts()[Outcome.SUCCEEDED] == 50
        assert_exactly_once(env, instances)
        # What was accepted before is followed by its InvokeId, never sent again.
        accepted = sum(row.state is BatchState.ACCEPTED for row in record.batches)
        assert env.sim.stats.count("RunCommand") - sent_before == 5 - accepted
        final = read_journal(path)
        assert final.state == "finished"
        assert final.counts()[Outcome.SUCCEEDED] == 50
        assert {w.state for w in final.waves} == {"passed"}


async def test_sends_whose_answer_was_lost_go_again_with_their_token(tmp_path: Path):
    """As if the process died before the answers were written: every accepted token is
    'sending' again. The resume re-sends them with the same ClientToken, the simulator
    answers with the original invocations, and nothing runs twice."""
    path = tmp_path / "journal.sqlite"
    plan = two_waves()
    async with simulated(fleet_yaml(50)) as env:
        instances = await runnable(env.client)
        await first_attempt(env, plan, instances, path, stop_when=nth_batch(3))
        history = read_journal(path).history()
        lost = RunHistory(
            batches={
                token: replace(batch, state=BatchState.SENDING, invoke_id="")
                for token, batch in history.batches.items()
            },
        )
        result = await resumed(env, plan, instances, path, history=lost)
        assert result.counts()[Outcome.SUCCEEDED] == 50
        assert_exactly_once(env, instances)


async def test_dropped_answers_on_resume_still_run_everything_once(tmp_path: Path):
    """Drops, resets and 5xx on RunCommand during the resume: the same tokens again."""
    path = tmp_path / "journal.sqlite"
    plan = two_waves(batch_size=5)
    async with simulated(fleet_yaml(60)) as env:
        instances = await runnable(env.client)
        await first_attempt(env, plan, instances, path, stop_when=nth_batch(4))
        env.sim.faults.set(
            FaultSpec(
                seed=3,
                drop_rate=0.2,
                reset_rate=0.1,
                error_rate=0.1,
                actions=frozenset({"RunCommand"}),
            )
        )
        result = await resumed(env, plan, instances, path)
        assert result.counts()[Outcome.SUCCEEDED] == 60
        assert env.sim.faults.counts["drop"] > 0
        assert_exactly_once(env, instances)


async def test_a_recorded_split_is_replayed_half_by_half(tmp_path: Path):
    """A batch once refused because of one instance is never sent whole again: had it
    been accepted now, the other instances would run a second time."""
    path = tmp_path / "journal.sqlite"
    plan = two_waves(batch_size=10)
    async with simulated(fleet_yaml(10)) as env:
        instances = await runnable(env.client)
        shaped = shape_waves(plan, instances, keep_order)
        batch = shaped[0].plan.batches[0]
        from orchestrator.rollout import client_token  # noqa: PLC0415

        whole = client_token(RUN, batch.wave, batch.index, "")
        async with create_journal(path, header(plan, instances)):
            pass
        history = RunHistory(
            batches={whole: RecordedBatch(whole, BatchState.SPLIT, error_code="X")}
        )
        result = await resumed(env, plan, instances, path, history=history)
        assert result.counts()[Outcome.SUCCEEDED] == 10
        tokens = {row.client_token for row in read_journal(path).batches}
        assert whole not in tokens  # never sent: its halves were
        assert client_token(RUN, batch.wave, batch.index, "0") in tokens
        assert client_token(RUN, batch.wave, batch.index, "1") in tokens
        assert_exactly_once(env, instances)


async def test_a_drain_lets_what_runs_finish_and_a_resume_does_the_rest(tmp_path: Path):
    """The first Ctrl-C: nothing more is sent, every instance sent has its result (none
    is left in flight), the journal says interrupted; the resume runs the rest once."""
    path = tmp_path / "journal.sqlite"
    plan = two_waves()
    async with simulated(fleet_yaml(50)) as env:
        instances = await runnable(env.client)
        result = await asked_after_first_batch(env, plan, instances, path, RunControl.drain)
        assert result.halt is not None
        assert result.halt.reason == "interrupted"
        assert not result.in_flight
        sent = result.counts()[Outcome.SUCCEEDED]
        assert 0 < sent < 50
        assert result.counts()[Outcome.NOT_SENT] == 50 - sent
        record = read_journal(path)
        assert record.state == "interrupted"
        assert len(record.results) == sent  # NOT_SENT is not a result of a resumable run
        again = await resumed(env, plan, instances, path)
        assert again.counts()[Outcome.SUCCEEDED] == 50
        assert_exactly_once(env, instances)


async def test_a_stop_sends_stop_invocation_to_what_runs(tmp_path: Path):
    """`orchestrator stop`: nothing more is sent, the running instances are stopped, the
    run ends halted ("stopped") and finished in the journal."""
    path = tmp_path / "journal.sqlite"
    plan = two_waves()
    async with simulated(fleet_yaml(30, duration=600)) as env:
        instances = await runnable(env.client)
        result = await asked_after_first_batch(env, plan, instances, path, RunControl.stop)
        assert result.halt is not None
        assert result.halt.reason == "stopped"
        counts = result.counts()
        assert counts[Outcome.STOPPED] >= 10
        assert counts[Outcome.SUCCEEDED] == 0
        assert env.sim.stats.count("StopInvocation") >= 1
        assert read_journal(path).state == "finished"


async def test_stopping_a_run_whose_process_is_gone(tmp_path: Path):
    """The process died with commands running; a stop-and-resume (what `orchestrator
    stop` does then) follows the recorded invocations and stops them; nothing new goes."""
    path = tmp_path / "journal.sqlite"
    plan = two_waves()
    async with simulated(fleet_yaml(30, duration=600)) as env:
        instances = await runnable(env.client)
        await first_attempt(env, plan, instances, path, stop_when=nth_batch(1))
        sent = env.sim.stats.count("RunCommand")
        control = RunControl()
        control.stop()
        result = await resumed(env, plan, instances, path, control=control)
        assert env.sim.stats.count("RunCommand") == sent
        assert result.halt is not None
        assert result.halt.reason == "stopped"
        assert result.counts()[Outcome.STOPPED] == 10
        assert env.sim.stats.count("StopInvocation") >= 1


async def test_a_stop_during_a_verify_stops_the_verify_too():
    """Asked to stop while a wave's verify runs: the verify's invocations get
    StopInvocation, and the run halts without a pause or an approval after it."""
    plan = Plan(
        name="resume",
        targets=Targets(),
        command=Command(content="echo ok", timeout=600),
        waves=(
            Wave("first", Amount(5), verify=Verify("check", timeout=600), approval=True),
            Wave("rest", Amount(100, percent=True)),
        ),
    )
    control = RunControl()
    sink = RecordingSink()
    async with simulated(fleet_yaml(10, duration=100)) as env:
        instances = await runnable(env.client)

        def asked(event: Event) -> None:
            sink(event)
            # The verify's first RunCommand was accepted: its instances are running it.
            if isinstance(event, BatchDispatched) and sink.of(VerifyStarted):
                control.stop()

        result = await run_rollout(
            plan,
            env.client,
            instances,
            run_id=RUN,
            clock=env.clock,
            sink=asked,
            control=control,
        )
        assert env.sim.stats.count("StopInvocation") >= 1
    assert result.halt is not None
    assert result.halt.reason == "stopped"
    assert not sink.of(ApprovalRequested)
    assert result.counts()[Outcome.NOT_SENT] == 5  # the second wave never started
