"""A wave's zone budgets, read and checked: `max_errors_per_zone`, `max_concurrency_per_zone`.

Both are read like their wave-wide siblings: `max_errors_per_zone` is a threshold (a
count ≥ 0, or a percentage in [0, 100] of the zone's instances in the wave, floored),
`max_concurrency_per_zone` an amount (a count ≥ 1, or a percentage in (0, 100] of the
zone's instances in the wave, rounded up). Plan rules `max-errors-per-zone` and
`max-concurrency-per-zone`; the message says which grammar was expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.plan._values import parse_amount, parse_threshold

if TYPE_CHECKING:
    from orchestrator.plan._model import Amount
    from orchestrator.plan._reader import Section


@dataclass(frozen=True, slots=True)
class ZoneBudgetKeys:
    """The zone budget keys one mapping gives (None = not given there)."""

    max_errors_per_zone: Amount | None = None
    max_concurrency_per_zone: Amount | None = None


def read_zone_budgets(section: Section) -> ZoneBudgetKeys:
    """The zone budget keys of a wave's (or `wave_defaults`') mapping."""
    errors = concurrency = None
    if section.has("max_errors_per_zone"):
        threshold = parse_threshold(section.data["max_errors_per_zone"])
        if isinstance(threshold, str):
            message = threshold.replace("of the wave", "of the zone's share of the wave")
            section.findings.add(section.at("max_errors_per_zone"), message, "max-errors-per-zone")
        else:
            errors = threshold
    if section.has("max_concurrency_per_zone"):
        amount = parse_amount(section.data["max_concurrency_per_zone"])
        if isinstance(amount, str):
            section.findings.add(
                section.at("max_concurrency_per_zone"), amount, "max-concurrency-per-zone"
            )
        else:
            concurrency = amount
    return ZoneBudgetKeys(errors, concurrency)
