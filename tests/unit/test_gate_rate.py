"""The `max_error_rate` rule: the Wilson bounds, the doc's worked table, the gate's
resume block, the dry run's reach, and the plan keys' rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.errors import PlanError
from orchestrator.plan import Wave, parse_plan
from orchestrator.rollout._gate_rate import RateRule, rate_breaches, reach, reach_text, wilson
from orchestrator.rollout._gates import Verdict, WaveGate
from orchestrator.rollout._outcome import Outcome

DOC = Path(__file__).parents[2] / "docs" / "plan-reference.md"
RULE = RateRule(2.0)


def _doc_rows() -> list[tuple[int, int, str, str, str]]:
    text = DOC.read_text().split("<!-- rate-table -->", 1)[1]
    rows = []
    for line in text.strip().splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows.append((int(cells[0]), int(cells[1]), cells[2], cells[3], cells[4]))
    return rows


def test_the_doc_has_a_table() -> None:
    assert len(_doc_rows()) >= 6


@pytest.mark.parametrize(("completed", "failed", "lower", "upper", "verdict"), _doc_rows())
def test_every_row_of_the_docs_table(
    completed: int, failed: int, lower: str, upper: str, verdict: str
) -> None:
    low, high = wilson(failed, completed, RULE.z)
    assert f"{low * 100:.1f}%" == lower
    assert f"{high * 100:.1f}%" == upper
    assert ("breach" if rate_breaches(failed, completed, RULE) else "pass") == verdict


@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))))
def test_bounds_bracket_the_observed_rate(sample: tuple[int, int]) -> None:
    n, f = sample
    low, high = wilson(f, n, RULE.z)
    assert 0.0 <= low <= f / n <= high <= 1.0
    if f < n:
        assert wilson(f + 1, n, RULE.z)[0] >= low  # monotone in failures


def test_min_sample_holds_a_breach_back() -> None:
    rule = RateRule(2.0, min_sample=5)
    assert not rate_breaches(1, 1, rule)
    assert not rate_breaches(4, 4, rule)
    assert rate_breaches(4, 5, rule)


def test_zero_and_hundred_percent() -> None:
    assert rate_breaches(1, 100, RateRule(0.0))
    assert not rate_breaches(0, 100, RateRule(0.0))
    assert not rate_breaches(10, 10, RateRule(100.0))


def _gate(rule: RateRule = RULE) -> WaveGate:
    return WaveGate(0, "early", 60, None, count_undelivered=True, rate=rule)


def test_the_gate_breaches_early_with_the_numbers() -> None:
    gate = _gate()
    for n in range(20):
        gate.observe(f"i-ok{n}", Outcome.SUCCEEDED)
    assert gate.observe("i-f1", Outcome.FAILED).verdict is Verdict.PASS  # type: ignore[union-attr]
    decision = gate.observe("i-f2", Outcome.FAILED)
    assert decision is not None
    assert decision.verdict is Verdict.BREACH
    assert (decision.completed, decision.errors, decision.rule) == (22, 2, "max_error_rate")
    assert decision.summary() == (
        "wave early breached: failure rate ≥ 3.1% (95% lower bound, 2 of 22) > max_error_rate 2%"
    )


def test_skipped_and_stopped_are_not_samples() -> None:
    gate = _gate()
    gate.observe("i-s", Outcome.SKIPPED)
    gate.observe("i-t", Outcome.STOPPED)
    gate.observe("i-n", Outcome.NOT_SENT)
    gate.observe("i-ok", Outcome.SUCCEEDED)
    assert gate.completed == 1


def test_a_success_that_reaches_min_sample_breaches() -> None:
    gate = _gate(RateRule(2.0, min_sample=3))
    gate.observe("i-f1", Outcome.FAILED)
    gate.observe("i-f2", Outcome.FAILED)
    decision = gate.observe("i-ok", Outcome.SUCCEEDED)
    assert decision is not None
    assert decision.verdict is Verdict.BREACH


def test_a_resumed_block_is_judged_on_its_aggregate() -> None:
    """A resume hears the priors in wave order, not as they completed: the original
    run, whose successes came first, passed at 2 of 50, and so must the resumed gate,
    though judged after every prefix (failures first) it would breach at 1 of 1."""
    outcomes = [Outcome.FAILED] * 2 + [Outcome.SUCCEEDED] * 48  # wave order
    prefix = _gate()
    assert any(
        (d := prefix.observe(f"i-{n}", o)) is not None and d.verdict is Verdict.BREACH
        for n, o in enumerate(outcomes)
    )
    resumed = _gate()
    resumed.hold()
    for n, outcome in enumerate(outcomes):
        assert resumed.observe(f"i-{n}", outcome) is None
    (decision,) = resumed.release()
    assert decision.verdict is Verdict.PASS
    assert (decision.completed, decision.errors) == (50, 2)


def test_reach_of_a_canary_and_a_wave() -> None:
    canary = reach(1, RULE)
    assert canary.one_halts
    assert "cannot tell 2% from 50%" in reach_text(canary, RULE)
    wave = reach(14, RULE)
    assert (wave.tolerated, wave.fewest) == (1, 1)
    assert wave.resolution is not None
    assert rate_breaches(int(0.04 * wave.resolution + 1e-9), wave.resolution, RULE)
    assert not reach(3, RateRule(2.0, min_sample=5)).can_breach


PLAN = """
name: p
targets: {{instances: [i-1]}}
command: {{content: "true"}}
waves:
  - {{name: a, size: 1, {keys}}}
"""


def _wave(keys: str) -> Wave:
    return parse_plan(PLAN.format(keys=keys)).waves[0]


def test_a_rate_wave_reads_and_has_no_count_limit() -> None:
    wave = _wave('max_error_rate: "2%", confidence: "99%", min_sample: 5')
    assert (wave.max_error_rate, wave.confidence, wave.min_sample) == (2.0, 99.0, 5)
    assert wave.max_errors is None


@pytest.mark.parametrize(
    ("keys", "rule"),
    [
        ('max_error_rate: "120%"', "max-error-rate"),
        ("max_error_rate: 2", "max-error-rate"),
        ('max_error_rate: "2%", confidence: "100%"', "confidence"),
        ('max_error_rate: "2%", confidence: "0%"', "confidence"),
        ('max_error_rate: "2%", min_sample: 0', "min-sample"),
        ('confidence: "95%"', "confidence"),
        ("min_sample: 3", "min-sample"),
    ],
)
def test_bad_rate_keys_are_refused(keys: str, rule: str) -> None:
    with pytest.raises(PlanError) as caught:
        parse_plan(PLAN.format(keys=keys))
    assert rule in {p.code for p in caught.value.problems}
