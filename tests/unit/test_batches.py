"""Waves and batches at the edges (table tests), and the batch ClientTokens."""

from __future__ import annotations

import pytest

from orchestrator.api import InstanceStatus
from orchestrator.ecs import Instance
from orchestrator.plan._model import Amount, Wave
from orchestrator.rollout import client_token, plan_waves, split_batches, wave_sizes


def instances(count: int) -> list[Instance]:
    return [
        Instance(f"i-{n:04d}", f"n{n}", InstanceStatus.RUNNING, "cn-hangzhou-h", "", "linux")
        for n in range(count)
    ]


def waves(*sizes: str | int) -> list[Wave]:
    """Waves from the plan shorthand: 5 is a count, "10%" a percentage."""
    return [
        Wave(f"w{n}", Amount(float(s[:-1]), percent=True) if isinstance(s, str) else Amount(s))
        for n, s in enumerate(sizes)
    ]


@pytest.mark.parametrize(
    ("total", "sizes", "expected"),
    [
        (3, ("10%", "50%", "100%"), [1, 2, 0]),  # the anchors' table: an empty last wave
        (7, (1, "25%", "100%"), [1, 2, 4]),
        (100, (1, 5), [1, 99]),  # the last wave takes the rest
        (10, ("100%",), [10]),
        (10, (20, "100%"), [10, 0]),  # a count beyond what is left is what is left
        (5, (0, "100%"), [0, 5]),  # a wave of 0 is empty
        (1, (1, "10%", "100%"), [1, 0, 0]),
        (0, (1, "100%"), [0, 0]),
        (1000, ("1%", "1%", "100%"), [10, 10, 980]),  # percent of the WHOLE set, not the rest
        (3, ("1%", "100%"), [1, 2]),  # a percentage rounds up, at least 1
    ],
)
def test_wave_sizes(total, sizes, expected):
    """Each size is of the whole target set; the last wave takes the rest."""
    assert wave_sizes(waves(*sizes), total) == expected


def test_batches_are_at_most_the_batch_size_in_order():
    """120 instances → 50, 50, 20, numbered from 0, instances in their given order."""
    batches = split_batches(2, instances(120), 50)
    assert [len(b.instances) for b in batches] == [50, 50, 20]
    assert [b.index for b in batches] == [0, 1, 2]
    assert {b.wave for b in batches} == {2}
    assert [i for b in batches for i in b.instance_ids] == [i.instance_id for i in instances(120)]


@pytest.mark.parametrize(
    ("count", "size", "expected"), [(0, 50, []), (50, 50, [50]), (3, 1, [1, 1, 1])]
)
def test_batch_edges(count, size, expected):
    """No instances, no batches; exactly a full batch; batches of one."""
    assert [len(b.instances) for b in split_batches(0, instances(count), size)] == expected


def test_plan_waves_cuts_waves_then_batches():
    """7 instances over [1, 25%, 100%] with batches of 2: waves 1/2/4, batches per wave."""
    plan = plan_waves(waves(1, "25%", "100%"), instances(7), batch_size=2)
    assert [w.size for w in plan] == [1, 2, 4]
    assert [[len(b.instances) for b in w.batches] for w in plan] == [[1], [2], [2, 2]]
    assert [w.name for w in plan] == ["w0", "w1", "w2"]
    assert plan[2].instances[0].instance_id == "i-0003"


def test_an_empty_wave_has_no_batches():
    """3 instances over [10%, 50%, 100%]: the third wave is there, and empty."""
    plan = plan_waves(waves("10%", "50%", "100%"), instances(3))
    assert plan[2].size == 0
    assert plan[2].batches == ()


def test_the_order_is_a_parameter():
    """An order hook decides who goes first (zone spreading plugs in here)."""
    plan = plan_waves(waves(1, "100%"), instances(3), order=lambda found: list(reversed(found)))
    assert plan[0].instances[0].instance_id == "i-0002"


def test_plan_waves_is_deterministic():
    """The same input always gives the same waves and batches."""
    first = plan_waves(waves(2, "100%"), instances(9), batch_size=4)
    assert first == plan_waves(waves(2, "100%"), instances(9), batch_size=4)


@pytest.mark.parametrize(
    ("wave_list", "targets", "size"),
    [
        ([], instances(1), 50),
        (waves("100%"), instances(1) * 2, 50),
        (waves("100%"), instances(1), 0),
    ],
)
def test_plan_waves_refuses_nonsense(wave_list, targets, size):
    """No waves, an instance twice, or batches of zero are errors."""
    with pytest.raises(ValueError):
        plan_waves(wave_list, targets, batch_size=size)


def test_client_tokens_are_stable_distinct_ascii_and_short():
    """The same key gives the same token; any part changed gives another; ≤ 64 ASCII."""
    token = client_token("run-1", 0, 3)
    assert token == client_token("run-1", 0, 3)
    others = {
        client_token("run-2", 0, 3),
        client_token("run-1", 1, 3),
        client_token("run-1", 0, 4),
        client_token("run-1", 0, 3, "0"),
        client_token("run-1", 0, 3, "1"),
    }
    assert token not in others
    assert len(others) == 5
    assert token.startswith("orc-w0-b3-")
    for candidate in [token, *others, client_token("r" * 500, 9999, 99999, "01" * 4)]:
        assert candidate.isascii()
        assert len(candidate) <= 64


def test_a_very_deep_split_still_gets_a_short_token():
    """A split path too long for the readable form falls back to a digest."""
    token = client_token("run", 1, 2, "0" * 60)
    assert len(token) <= 64
    assert token == client_token("run", 1, 2, "0" * 60)
    assert token != client_token("run", 1, 2, "0" * 59)
