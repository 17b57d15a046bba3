"""Matching a run's listed invocations to its plan's batches (what `orchestrator recover`
records), then the journal written from the match, on a real SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from orchestrator.api import InstanceInvocationStatus, InstanceStatus, InvocationStatus
from orchestrator.ecs import Instance, Invocation, InvocationInstance
from orchestrator.journal import (
    RunHeader,
    WaveRow,
    journal_path,
    match_batches,
    read_journal,
    write_recovered,
)
from orchestrator.plan import parse_plan
from orchestrator.rollout import (
    VERIFY_COMMAND_NAME,
    BatchState,
    client_token,
    keep_order,
    shape_waves,
)

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

RUN = "run-7"
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
PLAN = parse_plan(
    """\
name: recover
targets: {tags: {app: web}}
command: {content: echo ok, timeout: 60}
waves:
  - {name: canary, size: 1, verify: {content: "true", timeout: 30}}
  - {name: rest, size: 100%}
limits: {batch_size: 4}
"""
)
INSTANCES = tuple(
    Instance(f"i-{n}", f"web-{n}", InstanceStatus.RUNNING, "cn-hangzhou-h", "cn-hangzhou", "linux")
    for n in range(9)
)
SHAPED = shape_waves(PLAN, INSTANCES, keep_order)  # canary [0]; rest [1-4], [5-8]


def invocation(invoke_id: str, *numbers: int, name: str = "") -> Invocation:
    return Invocation(
        invoke_id,
        "c-1",
        InvocationStatus.SUCCESS,
        command_name=name,
        instances=tuple(
            InvocationInstance(f"i-{n}", InstanceInvocationStatus.SUCCESS) for n in numbers
        ),
    )


def test_whole_batches_split_halves_and_verify_are_matched_under_the_runs_tokens():
    listed = [
        invocation("t-canary", 0),
        invocation("t-verify", 0, name=VERIFY_COMMAND_NAME),
        invocation("t-half", 1, 2),  # batch rest/0 was split: i-3 refused alone, i-4 ran
        invocation("t-quarter", 4),
    ]
    found = match_batches(RUN, PLAN, SHAPED, listed)
    assert found.unproven == ()
    assert found.listed == 4
    rows = {
        (b.attempt.purpose, b.attempt.wave, b.attempt.batch, b.attempt.split_path): b
        for b in found.batches
    }
    assert {key: (b.state, b.invoke_id) for key, b in rows.items()} == {
        ("run", 0, 0, ""): (BatchState.ACCEPTED, "t-canary"),
        ("verify", 0, 0, ""): (BatchState.ACCEPTED, "t-verify"),
        ("run", 1, 0, ""): (BatchState.SPLIT, ""),
        ("run", 1, 0, "0"): (BatchState.ACCEPTED, "t-half"),
        ("run", 1, 0, "1"): (BatchState.SPLIT, ""),
        ("run", 1, 0, "11"): (BatchState.ACCEPTED, "t-quarter"),
    }
    assert rows["run", 1, 0, "11"].attempt.client_token == client_token(RUN, 1, 0, "11")
    verify = rows["verify", 0, 0, ""].attempt
    assert verify.client_token == client_token(f"{RUN}/verify", 0, 0, "")
    assert found.sent_to == {"i-0", "i-1", "i-2", "i-4"}


def test_an_invocation_that_is_no_batch_of_the_plan_is_unproven():
    found = match_batches(RUN, PLAN, SHAPED, [invocation("t-canary", 0), invocation("t-odd", 1, 5)])
    assert len(found.unproven) == 1
    assert "t-odd" in found.unproven[0]
    assert "i-1, i-5" in found.unproven[0]


async def test_the_recovered_journal_gives_a_resume_the_batches_to_follow(tmp_path: Path):
    found = match_batches(
        RUN, PLAN, SHAPED, [invocation("t-canary", 0), invocation("t-b1", 5, 6, 7, 8)]
    )
    header = RunHeader(
        run_id=RUN,
        plan_name=PLAN.name,
        plan_path="plan.yaml",
        plan_text="name: recover\n",
        plan_sha256="cd" * 32,
        target={"endpoint": "http://127.0.0.1:1", "region": "cn-hangzhou"},
        created_at=T0,
        instances=INSTANCES,
        skipped=(),
        waves=tuple(
            WaveRow(w.plan.index, w.plan.name, w.plan.size, len(w.plan.batches)) for w in SHAPED
        ),
    )
    path = journal_path(tmp_path, RUN)
    await write_recovered(path, header, found, at=T0)
    history = read_journal(path).history()
    assert {token: (b.state, b.invoke_id) for token, b in history.batches.items()} == {
        client_token(RUN, 0, 0): (BatchState.ACCEPTED, "t-canary"),
        client_token(RUN, 1, 1): (BatchState.ACCEPTED, "t-b1"),
    }
    assert history.results == {}
    assert history.passed_waves == frozenset()
