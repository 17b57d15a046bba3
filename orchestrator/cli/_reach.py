"""What a wave's gate can detect at its size, for the dry run: one sentence per wave.

A percentage `max_errors` that rounds down to 0 halts at the first failure ("2% of 14
tolerates 0: one failure halts"); a `max_error_rate` gate says how many failures pass,
how many halt, and the smallest wave that tells the threshold from twice it
(`rollout._gate_rate.reach`). Pure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.rollout._gate_rate import rate_rule, reach, reach_text

if TYPE_CHECKING:
    from orchestrator.rollout import ShapedWave


def gate_reach(wave: ShapedWave) -> str:
    """The sentence ("" when there is nothing to say)."""
    parts = []
    size, max_errors = wave.plan.size, wave.config.max_errors
    if max_errors is not None and max_errors.percent and size and wave.threshold == 0:
        parts.append(f"max_errors {max_errors} of {size} tolerates 0: one failure halts")
    rule = rate_rule(wave.config)
    if rule is not None and size:
        parts.append(reach_text(reach(size, rule), rule))
    return "; ".join(parts)
