"""Gate arithmetic, exactly: thresholds (counts and percentages, floor, at the edges), the
(T+1)-th rule, what counts against `max_errors` and what does not, verify outcomes, and
the sentences a halt is explained with."""

from __future__ import annotations

import itertools

import pytest

from orchestrator.plan import Amount
from orchestrator.rollout._gates import (
    GateDecision,
    Verdict,
    VerifyOutcome,
    WaveGate,
    breaches,
    counts_against,
    threshold_of,
    threshold_text,
    verify_outcome,
)
from orchestrator.rollout._outcome import Outcome
from orchestrator.rollout._results import Halt


def pct(value: float) -> Amount:
    return Amount(value, percent=True)


@pytest.mark.parametrize(
    ("max_errors", "size", "threshold"),
    [
        (None, 45, None),  # no limit
        (Amount(0), 45, 0),  # the default: the first error breaches
        (Amount(2), 45, 2),
        (Amount(60), 45, 45),  # a count larger than the wave is the wave
        (Amount(3), 0, 0),  # an empty wave
        (pct(5), 45, 2),  # 2.25 → 2: a percentage never tolerates more than it says
        (pct(5), 40, 2),  # exactly 2
        (pct(5), 39, 1),  # 1.95 → 1
        (pct(5), 20, 1),
        (pct(5), 19, 0),  # 0.95 → 0
        (pct(5), 10, 0),
        (pct(10), 10, 1),
        (pct(1), 99, 0),
        (pct(1), 100, 1),
        (pct(0.5), 200, 1),
        (pct(7), 100, 7),  # 7.000000000000001 in floats: still 7
        (pct(57), 100, 57),
        (pct(33.3), 3, 0),  # 0.999
        (pct(33.4), 3, 1),  # 1.002
        (pct(50), 3, 1),
        (pct(100), 7, 7),
        (pct(0), 1000, 0),
    ],
)
def test_threshold_is_the_floor_of_the_wave_size(max_errors, size, threshold):
    """Counts are kept (capped at the size); percentages of the wave round down."""
    assert threshold_of(max_errors, size) == threshold


@pytest.mark.parametrize(
    ("errors", "threshold", "breached"),
    [
        (0, 0, False),
        (1, 0, True),  # T = 0: the 1st error breaches
        (2, 2, False),  # T errors are tolerated
        (3, 2, True),  # the (T+1)-th breaches
        (4, 2, True),
        (0, None, False),
        (10_000, None, False),  # no limit never breaches
    ],
)
def test_the_wave_breaches_at_the_t_plus_first_error(errors, threshold, breached):
    """SSM's stop rule: more counted errors than the threshold."""
    assert breaches(errors, threshold) is breached


COUNTING = [
    (Outcome.FAILED, True, True),
    (Outcome.FAILED, False, True),
    (Outcome.UNDELIVERED, True, True),
    (Outcome.UNDELIVERED, False, False),
    (Outcome.SUCCEEDED, True, False),
    (Outcome.SUCCEEDED, False, False),
    (Outcome.STOPPED, True, False),  # stopped by us after a breach: never counts
    (Outcome.STOPPED, False, False),
    (Outcome.SKIPPED, True, False),
    (Outcome.SKIPPED, False, False),
    (Outcome.NOT_SENT, True, False),
    (Outcome.NOT_SENT, False, False),
]


@pytest.mark.parametrize(("outcome", "count_undelivered", "counted"), COUNTING)
def test_what_counts_against_max_errors(outcome, count_undelivered, counted):
    """FAILED always, UNDELIVERED when the plan says so, nothing else."""
    assert counts_against(outcome, count_undelivered=count_undelivered) is counted


def test_every_outcome_has_a_row_in_the_counting_table():
    """The table above covers every pair of Outcome and count_undelivered (a new Outcome must be
    decided here)."""
    rows = {(outcome, undelivered) for outcome, undelivered, _ in COUNTING}
    assert rows == set(itertools.product(Outcome, (True, False)))
    assert len(COUNTING) == len(rows)


def test_a_gate_passes_until_the_t_plus_first_error_then_breaches_once():
    """max_errors 2 of 10: pass, pass, breach at the 3rd; later errors keep that breach."""
    gate = WaveGate(1, "early", 10, Amount(2), count_undelivered=True)
    verdicts = [gate.observe(f"i-{n}", Outcome.FAILED) for n in range(4)]
    assert [d.verdict if d else None for d in verdicts] == [
        Verdict.PASS,
        Verdict.PASS,
        Verdict.BREACH,
        Verdict.BREACH,
    ]
    breach = verdicts[2]
    assert breach is not None
    assert verdicts[3] is breach  # the decision at the (T+1)-th, frozen
    assert (breach.wave, breach.name, breach.size, breach.threshold, breach.errors) == (
        1,
        "early",
        10,
        2,
        3,
    )
    assert gate.errors == 4
    assert gate.final() is breach


def test_an_instance_counts_once_and_non_errors_never():
    """The same instance reported twice counts once; SKIPPED/STOPPED/NOT_SENT are ignored."""
    gate = WaveGate(0, "canary", 5, Amount(0), count_undelivered=True)
    for outcome in (Outcome.SKIPPED, Outcome.STOPPED, Outcome.NOT_SENT, Outcome.SUCCEEDED):
        assert gate.observe(f"i-{outcome}", outcome) is None
    assert gate.final().verdict is Verdict.PASS
    first = gate.observe("i-x", Outcome.FAILED)
    assert first is not None
    assert first.verdict is Verdict.BREACH
    assert gate.observe("i-x", Outcome.FAILED) is None
    assert gate.errors == 1


@pytest.mark.parametrize(("count_undelivered", "verdict"), [(True, Verdict.BREACH), (False, None)])
def test_undelivered_breaches_only_when_it_counts(count_undelivered, verdict):
    """An undelivered instance breaches max_errors 0 only with count_undelivered."""
    gate = WaveGate(0, "w", 3, Amount(0), count_undelivered=count_undelivered)
    decision = gate.observe("i-off", Outcome.UNDELIVERED)
    assert (decision.verdict if decision else None) is verdict
    assert gate.undelivered == 1
    assert gate.errors == (1 if count_undelivered else 0)


def test_no_limit_never_breaches():
    """max_errors None: every error is counted and reported, none breaches."""
    gate = WaveGate(0, "w", 3, None, count_undelivered=True)
    decisions = [gate.observe(f"i-{n}", Outcome.FAILED) for n in range(3)]
    assert all(d is not None and d.verdict is Verdict.PASS for d in decisions)
    assert gate.final().errors == 3
    assert gate.final().limit_text == "none"


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (Outcome.SUCCEEDED, VerifyOutcome.PASSED),
        (Outcome.FAILED, VerifyOutcome.FAILED),
        (Outcome.UNDELIVERED, VerifyOutcome.INCONCLUSIVE),
        (Outcome.STOPPED, VerifyOutcome.INCONCLUSIVE),
        (Outcome.SKIPPED, VerifyOutcome.INCONCLUSIVE),
        (Outcome.NOT_SENT, VerifyOutcome.INCONCLUSIVE),
        (None, VerifyOutcome.INCONCLUSIVE),  # verify never got an outcome there
    ],
)
def test_verify_has_three_outcomes(outcome, expected):
    """Verify passes, fails (counts), or is inconclusive (could not run there)."""
    assert verify_outcome(outcome) is expected


def test_verify_failures_count_and_can_breach():
    """1 error within max_errors 2, then 2 failed verifies: 3 > 2 → breach."""
    gate = WaveGate(0, "w", 20, Amount(2), count_undelivered=True)
    gate.observe("i-1", Outcome.FAILED)
    decision = gate.verify_failures(2)
    assert decision.verdict is Verdict.BREACH
    assert (decision.errors, decision.failed, decision.verify_failed) == (3, 1, 2)


def test_inconclusive_unless_breached():
    """A verify that could not run makes the wave inconclusive; a breach still wins."""
    gate = WaveGate(0, "w", 4, Amount(1), count_undelivered=True)
    assert gate.final(inconclusive="verify could not run").verdict is Verdict.INCONCLUSIVE
    gate.observe("i-1", Outcome.FAILED)
    gate.observe("i-2", Outcome.FAILED)
    assert gate.final(inconclusive="verify could not run").verdict is Verdict.BREACH


@pytest.mark.parametrize(
    ("max_errors", "size", "text"),
    [
        (pct(5), 45, "2 (5% of 45)"),
        (pct(2.5), 200, "5 (2.5% of 200)"),
        (Amount(0), 10, "0"),
        (Amount(3), 10, "3"),
        (None, 10, "none"),
    ],
)
def test_threshold_text_says_where_it_came_from(max_errors, size, text):
    """The threshold as the dry run and the breach message print it."""
    assert threshold_text(max_errors, size, threshold_of(max_errors, size)) == text


def test_the_halt_sentence_has_every_number():
    """The summary line of a breach: errors, threshold, in-flight, waves not started."""
    gate = WaveGate(1, "early", 45, pct(5), count_undelivered=True)
    for n in range(3):
        gate.observe(f"i-{n}", Outcome.FAILED)
    decision = gate.final()
    halt = Halt(
        "breach",
        wave="early",
        decision=decision,
        in_flight=12,
        stop_requested=12,
        stopped=12,
        not_started=("rest",),
    )
    assert halt.describe() == (
        "wave early breached: 3 errors > max_errors 2 (5% of 45); 12 in-flight stopped; "
        "wave rest not started"
    )
    partly = Halt("breach", decision=decision, in_flight=12, stop_requested=12, stopped=10)
    assert partly.describe() == (
        "wave early breached: 3 errors > max_errors 2 (5% of 45); "
        "12 in-flight stop requested, 10 confirmed stopped"
    )
    finishing = Halt("breach", decision=decision, in_flight=4, not_started=("a", "b"))
    assert finishing.describe() == (
        "wave early breached: 3 errors > max_errors 2 (5% of 45); "
        "4 in-flight left to finish; waves a, b not started"
    )


def test_a_decision_is_plain_frozen_data():
    """GateDecision is frozen: events and the journal can keep it as it is."""
    decision = GateDecision(0, "w", 1, Amount(0), 0, 0, Verdict.PASS, "ok")
    with pytest.raises(AttributeError):
        decision.errors = 3  # type: ignore[misc]
    assert decision.summary() == "wave w passed: 0 errors, max_errors 0"
