"""Zone budgets, exactly: per-zone thresholds frozen from each zone's share of the wave
(floored), the (T+1)-th rule per zone, what counts, zones stopped earlier, the wave gate's
two answers (a zone stops under spread, the wave breaches under by_zone), one-zone
batches and per-zone caps, per-zone execution slots, and the plan keys."""

from __future__ import annotations

import anyio
import pytest

from orchestrator.api import InstanceStatus
from orchestrator.ecs import Instance
from orchestrator.errors import PlanError
from orchestrator.plan import Amount, Command, Plan, Targets, Wave, parse_plan
from orchestrator.rollout._capacity import ExecutionSlots
from orchestrator.rollout._gate_zones import ZoneBudgets, zone_halt, zone_sizes
from orchestrator.rollout._gates import Verdict, WaveGate, ZoneVerdict
from orchestrator.rollout._order import spread
from orchestrator.rollout._outcome import Outcome
from orchestrator.rollout._wave import shape_waves
from orchestrator.rollout._zone_batches import split_by_zone, zone_caps


def pct(value: float) -> Amount:
    return Amount(value, percent=True)


def fleet(**sizes: int) -> list[Instance]:
    """Instances `i-<zone><n>` in zones named by the keywords (`a=4` → zone `a`)."""
    return [
        Instance(f"i-{zone}{n}", f"{zone}{n}", InstanceStatus.RUNNING, zone, "", "linux")
        for zone, size in sizes.items()
        for n in range(size)
    ]


def zone_map(instances: list[Instance]) -> dict[str, str]:
    return {i.instance_id: i.zone_id for i in instances}


# --- thresholds, the worked table of docs/plan-reference.md ----------------------------


def test_thresholds_are_each_zones_share_of_the_wave_floored() -> None:
    """50% of zones of 4, 4 and 2: 2, 2 and 1 (the reference's table)."""
    budgets = ZoneBudgets(zone_map(fleet(h=4, i=4, j=2)), pct(50), count_undelivered=True)
    assert budgets.sizes == {"h": 4, "i": 4, "j": 2}
    assert budgets.thresholds == {"h": 2, "i": 2, "j": 1}
    assert [c.limit_text for c in budgets.counts()] == [
        "2 (50% of 4)",
        "2 (50% of 4)",
        "1 (50% of 2)",
    ]


@pytest.mark.parametrize(
    ("amount", "size", "threshold"),
    [(Amount(0), 5, 0), (Amount(1), 3, 1), (Amount(9), 3, 3), (pct(5), 10, 0), (pct(34), 3, 1)],
)
def test_a_zone_breaches_at_its_t_plus_first_error(amount: Amount, size: int, threshold: int):
    """T counted errors pass; the next one breaches, once."""
    members = fleet(z=size)
    budgets = ZoneBudgets(zone_map(members), amount, count_undelivered=True)
    assert budgets.thresholds == {"z": threshold}
    answers = [budgets.observe(i.instance_id, Outcome.FAILED) for i in members]
    if threshold >= size:
        assert answers == [None] * size
        return
    assert answers[:threshold] == [None] * threshold
    breach = answers[threshold]
    assert breach is not None
    assert (breach.zone, breach.errors, breach.verdict) == ("z", threshold + 1, ZoneVerdict.BREACH)
    assert all(answer is None for answer in answers[threshold + 1 :])  # only the first time
    assert budgets.stopped() == {"z"}


def test_what_counts_is_what_counts_against_max_errors() -> None:
    """Failed counts, undelivered by default, stopped, skipped, not sent and succeeded
    never; an instance counts once; another zone's errors are its own."""
    members = fleet(a=6, b=2)
    budgets = ZoneBudgets(zone_map(members), Amount(1), count_undelivered=True)
    for outcome, instance in zip(
        (Outcome.STOPPED, Outcome.SKIPPED, Outcome.NOT_SENT, Outcome.SUCCEEDED),
        members,
        strict=False,
    ):
        assert budgets.observe(instance.instance_id, outcome) is None
    assert budgets.observe("i-b0", Outcome.FAILED) is None
    assert budgets.observe("i-a4", Outcome.UNDELIVERED) is None
    assert budgets.observe("i-a4", Outcome.FAILED) is None  # counted once already
    breach = budgets.observe("i-a5", Outcome.FAILED)
    assert breach is not None
    assert (breach.zone, breach.failed, breach.undelivered, breach.errors) == ("a", 1, 1, 2)
    assert budgets.count("b").verdict is ZoneVerdict.PASS


def test_undelivered_does_not_count_when_the_plan_says_so() -> None:
    members = fleet(a=3)
    budgets = ZoneBudgets(zone_map(members), Amount(0), count_undelivered=False)
    assert budgets.observe("i-a0", Outcome.UNDELIVERED) is None
    assert budgets.count("a").errors == 0
    assert budgets.observe("i-a1", Outcome.FAILED) is not None


def test_a_zone_stopped_earlier_is_listed_stopped_and_never_judged_again() -> None:
    members = fleet(a=2, b=2)
    budgets = ZoneBudgets(zone_map(members), Amount(0), count_undelivered=True, stopped={"a"})
    assert budgets.observe("i-a0", Outcome.FAILED) is None
    count = budgets.count("a")
    assert (count.verdict, count.errors) == (ZoneVerdict.STOPPED, 0)
    assert count.summary() == "zone a stopped in an earlier wave: none of its 2 sent"
    assert budgets.stopped() == {"a"}


def test_the_sentences_name_the_zone_its_count_and_t() -> None:
    budgets = ZoneBudgets(zone_map(fleet(h=3)), pct(50), count_undelivered=True)
    budgets.observe("i-h0", Outcome.FAILED)
    breach = budgets.observe("i-h1", Outcome.FAILED)
    assert breach is not None
    assert breach.summary() == "zone h breached: 2 errors > max_errors_per_zone 1 (50% of 3)"
    halt = zone_halt({"h": ("early", breach)})
    assert (halt.reason, halt.wave) == ("zone_breach", "early")
    assert halt.describe() == (
        "zone h stopped: zone h breached: 2 errors > max_errors_per_zone 1 (50% of 3) in wave early"
    )


def test_zone_sizes_are_sorted_by_name() -> None:
    assert list(zone_sizes(["b", "a", "b", "c"])) == ["a", "b", "c"]


# --- the wave gate's two answers -------------------------------------------------------


def _gate(members: list[Instance], *, halt_on_zone: bool) -> WaveGate:
    budgets = ZoneBudgets(zone_map(members), Amount(0), count_undelivered=True)
    return WaveGate(
        0,
        "w",
        len(members),
        None,
        count_undelivered=True,
        zones=budgets,
        halt_on_zone=halt_on_zone,
    )


def test_under_spread_a_zone_breach_is_a_pass_that_names_the_zone() -> None:
    gate = _gate(fleet(a=2, b=2), halt_on_zone=False)
    decision = gate.observe("i-a0", Outcome.FAILED)
    assert decision is not None
    assert decision.verdict is Verdict.PASS
    assert decision.zone_breach is not None
    assert decision.zone_breach.zone == "a"
    assert [(z.zone, z.verdict) for z in decision.zones] == [
        ("a", ZoneVerdict.BREACH),
        ("b", ZoneVerdict.PASS),
    ]
    final = gate.final()
    assert final.verdict is Verdict.PASS
    assert final.zone_breach is None  # the final decision is the wave's; zones list it
    assert final.zones[0].verdict is ZoneVerdict.BREACH


def test_under_by_zone_a_zone_breach_is_the_waves() -> None:
    gate = _gate(fleet(a=2, b=2), halt_on_zone=True)
    decision = gate.observe("i-a0", Outcome.FAILED)
    assert decision is not None
    assert decision.verdict is Verdict.BREACH
    assert gate.final() == decision
    assert decision.summary() == "wave w breached: zone a breached: 1 error > max_errors_per_zone 0"


def test_max_errors_keeps_its_meaning_beside_the_zones() -> None:
    """The wave's own threshold breaches the wave whatever the zones say."""
    members = fleet(a=3, b=3)
    budgets = ZoneBudgets(zone_map(members), Amount(5), count_undelivered=True)
    gate = WaveGate(0, "w", 6, Amount(1), count_undelivered=True, zones=budgets)
    assert gate.observe("i-a0", Outcome.FAILED) is not None
    decision = gate.observe("i-b0", Outcome.FAILED)
    assert decision is not None
    assert decision.verdict is Verdict.BREACH
    assert decision.zone_breach is None


# --- batches and caps ------------------------------------------------------------------


def test_zone_caps_are_of_each_zones_share_rounded_up() -> None:
    members = fleet(h=4, i=4, j=2)
    assert zone_caps(pct(50), members) == {"h": 2, "i": 2, "j": 1}
    assert zone_caps(pct(1), members) == {"h": 1, "i": 1, "j": 1}
    assert zone_caps(Amount(3), members) == {"h": 3, "i": 3, "j": 2}
    assert zone_caps(None, members) == {}


def test_batches_hold_one_zone_in_the_waves_order() -> None:
    """Spread order a b c a b a b c a b (4, 4, 2), cut per zone at 2 (c at 1): every
    batch one zone, numbered by where its first instance stands."""
    members = spread(fleet(a=4, b=4, c=2))
    batches = split_by_zone(0, members, 50, {"a": 2, "b": 2, "c": 1})
    assert [b.instance_ids for b in batches] == [
        ("i-a0", "i-a1"),
        ("i-b0", "i-b1"),
        ("i-c0",),
        ("i-a2", "i-a3"),
        ("i-b2", "i-b3"),
        ("i-c1",),
    ]
    assert [b.index for b in batches] == list(range(6))
    assert split_by_zone(0, members, 50, {"a": 2, "b": 2, "c": 1}) == batches  # same cut


def test_shape_waves_cuts_one_zone_batches_only_when_a_zone_budget_is_set() -> None:
    instances = fleet(a=4, b=4, c=2)

    def plan(**gates: Amount) -> Plan:
        return Plan(
            name="p",
            targets=Targets(),
            command=Command(content="true"),
            waves=(Wave("w", pct(100), **gates),),  # type: ignore[arg-type]
        )

    (plain,) = shape_waves(plan(), instances, spread)
    assert len(plain.plan.batches) == 1
    assert plain.zone_caps == {}
    (zoned,) = shape_waves(plan(max_concurrency_per_zone=pct(50)), instances, spread)
    assert zoned.zone_caps == {"a": 2, "b": 2, "c": 1}
    assert [len(b.instances) for b in zoned.plan.batches] == [2, 2, 1, 2, 2, 1]
    (budgeted,) = shape_waves(plan(max_errors_per_zone=Amount(0)), instances, spread)
    assert [len(b.instances) for b in budgeted.plan.batches] == [4, 4, 2]
    assert all(len({i.zone_id for i in b.instances}) == 1 for b in budgeted.plan.batches)


@pytest.mark.anyio
async def test_slots_hold_a_batch_back_while_its_zone_is_full() -> None:
    """Zone a at its cap of 2: a batch of a waits, one of b goes; a release of a lets it in."""
    a = fleet(a=3)
    b = fleet(b=1)
    slots = ExecutionSlots(None, {"a": 2})
    await slots.acquire(a[:2])
    await slots.acquire(b)  # another zone is not held back
    entered = anyio.Event()

    async def third() -> None:
        await slots.acquire(a[2:])
        entered.set()

    async with anyio.create_task_group() as group:
        group.start_soon(third)
        await anyio.wait_all_tasks_blocked()
        assert not entered.is_set()
        slots.release(a[:1])
        await entered.wait()
    assert slots.zone_in_use == {"a": 2, "b": 1}
    assert slots.zone_peak == {"a": 2, "b": 1}
    with pytest.raises(ValueError, match="zone a cannot fit under its cap of 2"):
        await slots.acquire(fleet(a=3))


# --- the plan keys ---------------------------------------------------------------------

MINIMAL = """\
name: zones
targets:
  tags: {app: web}
command:
  content: echo hi
"""


def test_the_keys_reach_the_wave_and_defaults_fill_them() -> None:
    plan = parse_plan(
        MINIMAL
        + """\
wave_defaults: {max_errors_per_zone: 10%, max_concurrency_per_zone: 2}
waves:
  - {name: canary, size: 3, max_errors_per_zone: 0}
  - {name: rest, size: 100%}
"""
    )
    canary, rest = plan.waves
    assert (canary.max_errors_per_zone, canary.max_concurrency_per_zone) == (Amount(0), Amount(2))
    assert (rest.max_errors_per_zone, rest.max_concurrency_per_zone) == (pct(10), Amount(2))
    assert Wave("w", Amount(1)).max_errors_per_zone is None  # none unless the plan says


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            "max_errors_per_zone: -1",
            "waves[0].max_errors_per_zone: must be 0 or more, not -1 [max-errors-per-zone]",
        ),
        (
            'max_errors_per_zone: "150%"',
            (
                "waves[0].max_errors_per_zone: a percentage of the zone's share of the wave is "
                "between 0% and 100%"
            ),
        ),
        (
            "max_errors_per_zone: 0.5",
            'of the zone\'s share of the wave such as "5%", not a decimal number',
        ),
        (
            "max_concurrency_per_zone: 0",
            (
                "waves[0].max_concurrency_per_zone: must be at least 1, not 0 "
                "[max-concurrency-per-zone]"
            ),
        ),
    ],
)
def test_bad_values_name_the_field_and_the_rule(entry: str, expected: str) -> None:
    with pytest.raises(PlanError) as caught:
        parse_plan(MINIMAL + f"waves:\n  - {{name: w, size: 100%, {entry}}}\n")
    (problem,) = caught.value.problems
    assert expected in str(problem)
