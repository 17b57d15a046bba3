"""Instance order across zones: `spread` mixes zones in proportion, `by_zone` goes zone by
zone, smallest first; both deterministic whatever order the instances come in."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from orchestrator.api import InstanceStatus
from orchestrator.ecs import Instance
from orchestrator.plan._model import Amount, Wave
from orchestrator.rollout import plan_waves
from orchestrator.rollout._order import by_zone, order_for, spread


def fleet(**zones: int) -> list[Instance]:
    """`count` instances per zone, IDs i-<zone><n> (zone names are single letters)."""
    return [
        Instance(f"i-{zone}{n:03d}", f"{zone}{n}", InstanceStatus.RUNNING, zone, "", "linux")
        for zone, count in zones.items()
        for n in range(count)
    ]


def zones_of(instances: list[Instance]) -> str:
    return "".join(i.zone_id for i in instances)


def test_spread_interleaves_in_proportion() -> None:
    """Zones of 4, 4 and 2: the small zone comes every fifth instance, not every third."""
    assert zones_of(spread(fleet(a=4, b=4, c=2))) == "abcababcab"


def test_every_batch_of_five_mixes_all_three_zones() -> None:
    """Cut into batches of 5, the 4/4/2 fleet gives batches that each hold every zone."""
    waves = plan_waves(
        [Wave("all", Amount(100, percent=True))], fleet(a=4, b=4, c=2), batch_size=5, order=spread
    )
    (wave,) = waves
    assert [Counter(i.zone_id for i in b.instances) for b in wave.batches] == [
        Counter(a=2, b=2, c=1),
        Counter(a=2, b=2, c=1),
    ]


def test_by_zone_puts_the_smallest_zone_first() -> None:
    """GCP's ZONE_BY_ZONE order: the 2-instance zone, then the 4s alphabetically."""
    assert zones_of(by_zone(fleet(a=4, b=4, c=2))) == "ccaaaabbbb"


def test_by_zone_ties_are_alphabetical_and_ids_sorted() -> None:
    """Equal zones go by name; inside a zone, instances go by ID."""
    ordered = by_zone(fleet(z=2, y=2, x=3))
    assert [i.instance_id for i in ordered] == [
        "i-y000",
        "i-y001",
        "i-z000",
        "i-z001",
        "i-x000",
        "i-x001",
        "i-x002",
    ]


@pytest.mark.parametrize("order", [spread, by_zone])
def test_orders_are_deterministic_whatever_the_input_order(order) -> None:
    """Shuffled input, the same output: the order depends on zones and IDs only."""
    instances = fleet(a=7, b=3, c=5, d=1)
    expected = order(instances)
    for seed in range(5):
        shuffled = instances[:]
        random.Random(seed).shuffle(shuffled)
        assert order(shuffled) == expected
    assert sorted(i.instance_id for i in expected) == sorted(i.instance_id for i in instances)


@pytest.mark.parametrize(
    "zones",
    [{"a": 4, "b": 4, "c": 2}, {"a": 90, "b": 10}, {"a": 47, "b": 31, "c": 5}, {"a": 1, "b": 1}],
)
def test_spread_keeps_every_prefix_near_its_share(zones: dict[str, int]) -> None:
    """At every point of the list each zone has had its share of it, within one instance,
    so any wave (a prefix after the ones before) and batch follows the zones' sizes."""
    ordered = spread(fleet(**zones))
    total = len(ordered)
    seen: Counter[str] = Counter()
    for done, instance in enumerate(ordered, start=1):
        seen[instance.zone_id] += 1
        for zone, size in zones.items():
            assert abs(seen[zone] - done * size / total) <= 1, (done, zone)


def test_a_big_zone_does_not_run_out_the_small_ones_first() -> None:
    """90/10: plain round-robin would finish zone b after 20; spread keeps it to the end."""
    ordered = spread(fleet(a=90, b=10))
    assert zones_of(ordered[:20]).count("b") == 2
    assert zones_of(ordered[-10:]).count("b") == 1


def test_one_zone_and_nothing() -> None:
    """One zone is that zone by ID; no instances is no instances."""
    assert zones_of(spread(fleet(a=3))) == "aaa"
    assert spread([]) == by_zone([]) == []


def test_order_for_names_the_plan_orders() -> None:
    """Plan.order → the function; an unknown name is a ValueError."""
    assert order_for("spread") is spread
    assert order_for("by_zone") is by_zone
    with pytest.raises(ValueError, match="unknown order"):
        order_for("random")
