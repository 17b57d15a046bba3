"""The instances a run touched (where its command began), from its journal record."""

from __future__ import annotations

from datetime import UTC, datetime

from orchestrator.api import InstanceStatus
from orchestrator.ecs import Instance
from orchestrator.journal import TOUCHED, JournalRecord, RunHeader, touched_instances
from orchestrator.rollout import InstanceResult, Outcome

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _instance(n: int) -> Instance:
    return Instance(
        f"i-{n:04d}", f"web-{n}", InstanceStatus.RUNNING, "cn-hangzhou-h", "cn-hangzhou", "linux"
    )


def _record(outcomes: dict[int, Outcome], instances: int) -> JournalRecord:
    members = tuple(_instance(n) for n in range(instances))
    header = RunHeader(
        run_id="run-1",
        plan_name="p",
        plan_path="p.yaml",
        plan_text="",
        plan_sha256="",
        target={},
        created_at=T0,
        instances=members,
        skipped=(),
        waves=(),
    )
    # The results mapping in another order than the run's: the run's order wins.
    results = {
        f"i-{n:04d}": InstanceResult(f"i-{n:04d}", outcome)
        for n, outcome in sorted(outcomes.items(), reverse=True)
    }
    return JournalRecord(
        header=header,
        state="finished",
        updated_at=T0,
        finished_at=T0,
        halt=None,
        halt_text="",
        exit_code=3,
        api_calls={},
        throttles=0,
        waves=(),
        batches=(),
        results=results,
        gates=(),
    )


def test_touched_are_succeeded_failed_and_stopped_in_the_run_s_order() -> None:
    record = _record(
        {
            0: Outcome.SUCCEEDED,
            1: Outcome.UNDELIVERED,
            2: Outcome.FAILED,
            3: Outcome.NOT_SENT,
            4: Outcome.STOPPED,
            5: Outcome.SKIPPED,
            6: Outcome.SUCCEEDED,
        },
        instances=8,  # i-0007 has no result at all: never touched
    )
    touched = [i.instance_id for i in touched_instances(record)]
    assert touched == ["i-0000", "i-0002", "i-0004", "i-0006"]


def test_a_run_that_reached_nothing_touched_nothing() -> None:
    record = _record({0: Outcome.UNDELIVERED, 1: Outcome.NOT_SENT}, instances=3)
    assert touched_instances(record) == ()


def test_the_touched_outcomes_are_exactly_where_a_script_began() -> None:
    assert frozenset({Outcome.SUCCEEDED, Outcome.FAILED, Outcome.STOPPED}) == TOUCHED
