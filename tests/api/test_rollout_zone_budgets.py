"""Zone budgets against the simulator over real HTTP: with `order: spread` a zone that
crosses `max_errors_per_zone` stops (nothing more of it is sent, its running instances
are stopped, naming only them) while the other zones complete; with `order: by_zone`
the breach halts the rollout; `max_concurrency_per_zone` is never exceeded (read from the
simulator's own records); a run resumed from its journal knows which zones stopped and
sends them nothing. Time is the fleet's scaled clock; nothing sleeps to wait."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio
import pytest

from orchestrator.journal import RunHeader, WaveRow, create_journal, read_journal, reopen_journal
from orchestrator.plan import Amount, Command, Limits, Plan, Targets, Wave
from orchestrator.rollout import (
    BatchDispatched,
    BreachStopSent,
    Event,
    GateDecided,
    Outcome,
    RecordingSink,
    Verdict,
    ZoneVerdict,
    order_for,
    run_rollout,
    shape_waves,
)
from orchestrator.testing import Simulated, simulated

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from orchestrator.ecs import Instance
    from orchestrator.rollout import RolloutResult

pytestmark = pytest.mark.anyio

ZH, ZI, ZJ = "cn-hangzhou-h", "cn-hangzhou-i", "cn-hangzhou-j"

# Zone h holds the trouble: two that fail, one that hangs; i and j are healthy.
FLEET = f"""
region: cn-hangzhou
seed: 7
time_scale: 0.01
instances:
  - {{id: i-h1, zone: {ZH}, tags: {{role: bad}}}}
  - {{id: i-h2, zone: {ZH}, tags: {{role: hang}}}}
  - {{id: i-h3, zone: {ZH}, tags: {{role: bad}}}}
  - {{id: i-h4, zone: {ZH}}}
  - {{id: i-i1, zone: {ZI}}}
  - {{id: i-i2, zone: {ZI}}}
  - {{id: i-i3, zone: {ZI}}}
  - {{id: i-i4, zone: {ZI}}}
  - {{id: i-j1, zone: {ZJ}}}
  - {{id: i-j2, zone: {ZJ}}}
  - {{id: i-j3, zone: {ZJ}}}
  - {{id: i-j4, zone: {ZJ}}}
behaviour:
  stop_delay: 1
  default: {{duration: 2, delivery_delay: 0.5, output: "ok\\n"}}
  rules:
    - match: {{tags: {{role: bad}}}}
      fail_rate: 1
      fail_exit_code: 2
    - match: {{tags: {{role: hang}}}}
      hang_rate: 1
"""
ZONE_H = {"i-h1", "i-h2", "i-h3", "i-h4"}
HEALTHY = {f"i-{zone}{n}" for zone in "ij" for n in range(1, 5)}


def plan_of(order: str, **gates: Amount) -> Plan:
    """Two waves of 6 and 6; spread puts h1 h2, i1 i2, j1 j2 in the first."""
    waves = (
        Wave("first", Amount(6), max_errors=Amount(50, percent=True), **gates),  # type: ignore[arg-type]
        Wave("rest", Amount(100, percent=True), max_errors=Amount(50, percent=True), **gates),  # type: ignore[arg-type]
    )
    return Plan(
        name="zones",
        targets=Targets(),
        command=Command(content="deploy", timeout=600),  # a hang outlives any stop
        waves=waves,
        order=order,  # type: ignore[arg-type]
    )


async def roll(env: Simulated, plan: Plan, sink: RecordingSink, run_id: str) -> RolloutResult:
    instances = [i async for i in env.client.describe_instances()]
    return await run_rollout(
        plan,
        env.client,
        instances,
        run_id=run_id,
        clock=env.clock,
        sink=sink,
        order=order_for(plan.order),
    )


def sent_to(env: Simulated) -> set[str]:
    """Every instance the simulator ever received a RunCommand for."""
    return {i for inv in env.sim.simulation.invocations.values() for i in inv.records}


async def test_spread_a_zone_over_its_budget_stops_while_the_others_complete():
    """Zone h's first error (budget 0) stops zone h: its hung instance gets a
    StopInvocation naming it alone, its later instances are never sent, and zones i and
    j run both waves to success. The run is not a success: it ends `zone_breach`."""
    async with simulated(FLEET) as env:
        sink = RecordingSink()
        result = await roll(env, plan_of("spread", max_errors_per_zone=Amount(0)), sink, "r-zs")
        by_id = result.by_instance()
        assert sent_to(env) == HEALTHY | {"i-h1", "i-h2"}
        assert all(by_id[i].outcome is Outcome.SUCCEEDED for i in HEALTHY)
        assert by_id["i-h1"].outcome is Outcome.FAILED
        assert (by_id["i-h2"].outcome, by_id["i-h2"].status) == (Outcome.STOPPED, "Terminated")
        for unsent in ("i-h3", "i-h4"):
            assert by_id[unsent].outcome is Outcome.NOT_SENT
            assert by_id[unsent].error_info.startswith(f"not sent: zone {ZH} stopped in wave first")
        (stops,) = sink.of(BreachStopSent)
        assert (stops.invocations, stops.instances) == (1, 1)
        # Every batch holds one zone.
        zone_of = {i: i.split("-")[1][0] for i in ZONE_H | HEALTHY}
        for batch in sink.of(BatchDispatched):
            assert len({zone_of[i] for i in batch.instance_ids}) == 1
        assert result.stopped_zones == (ZH,)
        assert result.halt is not None
        assert result.halt.reason == "zone_breach"
        assert ZH in result.halt.describe()
        assert "max_errors_per_zone 0" in result.halt.describe()
        decided = {e.decision.name: e.decision for e in sink.of(GateDecided)}
        assert decided["first"].verdict is Verdict.PASS
        zones = {z.zone: z for z in decided["first"].zones}
        assert (zones[ZH].size, zones[ZH].threshold, zones[ZH].errors) == (2, 0, 1)
        assert zones[ZH].verdict is ZoneVerdict.BREACH
        assert zones[ZI].verdict is ZoneVerdict.PASS
        later = {z.zone: z.verdict for z in decided["rest"].zones}
        assert later == {ZH: ZoneVerdict.STOPPED, ZI: ZoneVerdict.PASS, ZJ: ZoneVerdict.PASS}


async def test_by_zone_a_zone_breach_halts_the_rollout():
    """Under by_zone the first wave is zone h then i; h's first error breaches the wave:
    the rollout halts, zone j never gets a RunCommand."""
    async with simulated(FLEET) as env:
        sink = RecordingSink()
        plan = plan_of("by_zone", max_errors_per_zone=Amount(0))
        result = await roll(env, plan, sink, "r-zb")
        halt = result.halt
        assert halt is not None
        assert halt.decision is not None
        assert halt.decision.zone_breach is not None
        assert (halt.reason, halt.wave, halt.decision.zone_breach.zone) == ("breach", "first", ZH)
        assert halt.describe().startswith(
            f"wave first breached: zone {ZH} breached: 1 error > max_errors_per_zone 0"
        )
        assert halt.not_started == ("rest",)
        assert not sent_to(env) & {"i-j1", "i-j2", "i-j3", "i-j4"}
        by_id = result.by_instance()
        assert all(by_id[f"i-j{n}"].outcome is Outcome.NOT_SENT for n in range(1, 5))


def peak_per_zone(env: Simulated, zone_of: dict[str, str]) -> dict[str, int]:
    """The most records of one zone ever between creation and finish at once, from the
    simulator's own records."""
    now = env.clock.now()
    edges: defaultdict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for invocation in env.sim.simulation.invocations.values():
        for instance_id, record in invocation.records.items():
            view = invocation.view(record, now)
            assert view.finish is not None
            edges[zone_of[instance_id]] += [(view.created, 1), (view.finish, -1)]
    peaks = {}
    for zone, steps in edges.items():
        peak = current = 0
        for _, step in sorted(steps):
            current += step
            peak = max(peak, current)
        peaks[zone] = peak
    return peaks


GOOD_FLEET = """
region: cn-hangzhou
seed: 9
time_scale: 0.01
generate:
  - count: 24
    zones: [cn-hangzhou-h, cn-hangzhou-i, cn-hangzhou-j]
behaviour:
  default: {duration: 2, delivery_delay: 0.5, output: "ok\\n"}
"""


async def test_max_concurrency_per_zone_is_never_exceeded():
    """With at most 2 per zone at once (and 5 overall), no zone ever has more than 2
    executing in the simulator, batches hold one zone and at most 2, and all succeed."""
    async with simulated(GOOD_FLEET) as env:
        instances = [i async for i in env.client.describe_instances()]
        zone_of = {i.instance_id: i.zone_id for i in instances}
        plan = Plan(
            name="zones",
            targets=Targets(),
            command=Command(content="echo ok", timeout=60),
            waves=(Wave("all", Amount(100, percent=True), max_concurrency_per_zone=Amount(2)),),
            limits=Limits(max_concurrency=Amount(5)),
        )
        sink = RecordingSink()
        result = await run_rollout(
            plan,
            env.client,
            instances,
            run_id="r-zc",
            clock=env.clock,
            sink=sink,
            order=order_for("spread"),
        )
        assert result.counts()[Outcome.SUCCEEDED] == 24
        for batch in sink.of(BatchDispatched):
            assert len(batch.instance_ids) <= 2
            assert len({zone_of[i] for i in batch.instance_ids}) == 1
        peaks = peak_per_zone(env, zone_of)
        assert set(peaks) == {ZH, ZI, ZJ}
        assert max(peaks.values()) <= 2


def header(plan: Plan, instances: Sequence[Instance], run_id: str) -> RunHeader:
    waves = shape_waves(plan, instances, order_for(plan.order))
    return RunHeader(
        run_id=run_id,
        plan_name=plan.name,
        plan_path="plan.yaml",
        plan_text="name: zones\n",
        plan_sha256="0" * 64,
        target={"endpoint": "http://127.0.0.1", "region": "cn-hangzhou"},
        created_at=datetime.now(UTC),
        instances=tuple(instances),
        skipped=(),
        waves=tuple(
            WaveRow(w.plan.index, w.plan.name, w.plan.size, len(w.plan.batches)) for w in waves
        ),
    )


async def test_a_resumed_run_knows_the_stopped_zone_and_sends_it_nothing(tmp_path: Path):
    """Interrupted right after wave 1's gate (zone h stopped there), the resumed run
    recomputes the stop from the journal's results, with the same frozen numbers: wave 2
    sends nothing to zone h, and the run ends `zone_breach` naming it."""
    run_id = "r-zr"
    plan = plan_of("spread", max_errors_per_zone=Amount(0))
    path = tmp_path / "journal.sqlite"
    async with simulated(FLEET) as env:
        instances = [i async for i in env.client.describe_instances()]
        with anyio.CancelScope() as everything:
            async with create_journal(path, header(plan, instances, run_id)) as journal:

                def sink(event: Event) -> None:
                    journal(event)
                    if isinstance(event, GateDecided) and event.decision.name == "first":
                        everything.cancel()

                await run_rollout(
                    plan,
                    env.client,
                    instances,
                    run_id=run_id,
                    clock=env.clock,
                    sink=sink,
                    hooks=journal,
                    order=order_for("spread"),
                )
        assert everything.cancelled_caught
        assert sent_to(env) == {"i-h1", "i-h2", "i-i1", "i-i2", "i-j1", "i-j2"}
        record = read_journal(path)
        recorded = RecordingSink()
        async with reopen_journal(path) as journal:

            def both(event: Event) -> None:
                journal(event)
                recorded(event)

            result = await run_rollout(
                plan,
                env.client,
                instances,
                run_id=run_id,
                clock=env.clock,
                sink=both,
                hooks=journal,
                history=record.history(),
                order=order_for("spread"),
            )
        assert "i-h3" not in sent_to(env)
        assert "i-h4" not in sent_to(env)
        by_id = result.by_instance()
        assert by_id["i-h4"].error_info.startswith(f"not sent: zone {ZH} stopped in wave first")
        assert all(by_id[i].outcome is Outcome.SUCCEEDED for i in HEALTHY)
        assert result.stopped_zones == (ZH,)
        assert result.halt is not None
        assert result.halt.reason == "zone_breach"
