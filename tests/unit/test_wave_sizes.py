"""The documented wave-size edges, from plan text to sizes (`wave_sizes`), and the
thresholds each wave gets (`Amount.floor_of` of its size): the tables of
docs/plan-reference.md, "Waves and gates"."""

from __future__ import annotations

import pytest

from orchestrator.plan import parse_plan
from orchestrator.rollout import wave_sizes

PLAN = """\
name: sizes
targets: {tags: {app: web}}
command: {content: echo hi}
"""


@pytest.mark.parametrize(
    ("total", "waves", "sizes"),
    [
        (3, '["10%", "50%", "100%"]', [1, 2, 0]),  # nothing left for the third: empty
        (7, '[1, "25%", "100%"]', [1, 2, 4]),  # 1.75 rounds up to 2
        (100, '[1, 5, "20%", "100%"]', [1, 5, 20, 74]),
        (1000, '["1%", "1%", "100%"]', [10, 10, 980]),  # of the whole, not of the rest
        (1, '[1, "10%", "100%"]', [1, 0, 0]),
        (10, '[20, "100%"]', [10, 0]),
        (135, '[1, "10%", "100%"]', [1, 14, 120]),  # the README's demo
        (3, '["1%", "100%"]', [1, 2]),  # at least 1
        (0, '[1, "100%"]', [0, 0]),
        (5, "[1, 1]", [1, 4]),  # the last takes the rest, whatever it says
    ],
)
def test_documented_wave_sizes(total: int, waves: str, sizes: list[int]) -> None:
    """A plan's waves over `total` instances have exactly the documented sizes."""
    plan = parse_plan(PLAN + f"waves: {waves}\n")
    assert wave_sizes(plan.waves, total) == sizes


def test_a_percentage_that_fills_the_targets_refuses_a_later_wave() -> None:
    """The loader refuses only what is empty for every fleet: [10%, 90%, 1] is refused,
    while [10%, 50%, 100%] (empty only for 3 instances) loads."""
    with pytest.raises(ValueError, match="empty-wave"):
        parse_plan(PLAN + 'waves: ["10%", "90%", 1]\n')
    assert len(parse_plan(PLAN + 'waves: ["10%", "50%", "100%"]\n').waves) == 3


@pytest.mark.parametrize(
    ("waves", "total", "thresholds"),
    [
        # canary-then-full on the demo fleet: 1, 14, 120 → 0, 0 (5% of 14), 2 (2% of 120)
        (
            "[{size: 1, max_errors: 0}, {size: 10%, max_errors: 5%}, {size: 100%, max_errors: 2%}]",
            135,
            [0, 0, 2],
        ),
        ("[{size: 30, max_errors: 5%}, {size: 100%, max_errors: 10%}]", 80, [1, 5]),
        ("[{size: 1, max_errors: 100%}, {size: 100%, max_errors: 1000}]", 14, [1, 13]),
    ],
)
def test_thresholds_come_from_each_waves_size(waves: str, total: int, thresholds: list[int]):
    """T = max_errors.floor_of(the wave's size); the wave breaches at error T+1."""
    plan = parse_plan(PLAN + f"waves: {waves}\n")
    sizes = wave_sizes(plan.waves, total)
    got = [w.max_errors.floor_of(n) for w, n in zip(plan.waves, sizes, strict=True) if w.max_errors]
    assert got == thresholds
