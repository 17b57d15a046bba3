"""A resumed wave's earlier results are counted as one block (`hold` / `release`): the
zones that block broke are still told, each once, before the wave's own decision."""

from __future__ import annotations

from orchestrator.plan import Amount
from orchestrator.rollout._gate_zones import ZoneBudgets
from orchestrator.rollout._gates import Verdict, WaveGate
from orchestrator.rollout._outcome import Outcome

ZONE_OF = {"i-a1": "zone-a", "i-a2": "zone-a", "i-b1": "zone-b", "i-b2": "zone-b"}


def _gate(*, by_zone: bool) -> WaveGate:
    budgets = ZoneBudgets(ZONE_OF, Amount(0), count_undelivered=True)
    return WaveGate(
        0, "early", 4, None, count_undelivered=True, zones=budgets, halt_on_zone=by_zone
    )


def test_a_zone_broken_by_the_held_block_is_told_on_release() -> None:
    gate = _gate(by_zone=False)
    gate.hold()
    assert gate.observe("i-a1", Outcome.FAILED) is None
    assert gate.observe("i-b1", Outcome.SUCCEEDED) is None
    decisions = gate.release()
    stopped = [d.zone_breach.zone for d in decisions if d.zone_breach is not None]
    assert stopped == ["zone-a"]
    assert all(d.verdict is Verdict.PASS for d in decisions)
    # Later outcomes of the broken zone do not break it again.
    assert gate.observe("i-a2", Outcome.FAILED).zone_breach is None  # type: ignore[union-attr]


def test_with_by_zone_the_held_block_breaches_the_wave() -> None:
    gate = _gate(by_zone=True)
    gate.hold()
    gate.observe("i-b2", Outcome.FAILED)
    decisions = gate.release()
    assert decisions[0].verdict is Verdict.BREACH
    assert decisions[0].zone_breach is not None
    assert decisions[0].zone_breach.zone == "zone-b"
