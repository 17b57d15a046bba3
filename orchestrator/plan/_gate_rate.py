"""The plan's statistical gate keys: `max_error_rate`, `confidence`, `min_sample`.

Rules `max-error-rate` (a percentage in [0, 100]), `confidence` (a percentage strictly
between 0 and 100, e.g. 90%, 95%, 99%; 95% when not given) and `min-sample` (a whole
number ≥ 1; 1 when not given). `confidence` and `min_sample` only shape a
`max_error_rate` gate: a wave that gives either but ends up with no `max_error_rate`
(its own or `wave_defaults`') is refused; in `wave_defaults` they are the defaults of
the waves that do have one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

from orchestrator.plan._values import parse_confidence, parse_rate

if TYPE_CHECKING:
    from orchestrator.plan._findings import Findings
    from orchestrator.plan._reader import Section

RATE_KEYS: Final = ("max_error_rate", "confidence", "min_sample")
_T = TypeVar("_T")


def _pick(mine: _T | None, theirs: _T | None) -> _T | None:
    return mine if mine is not None else theirs


@dataclass(frozen=True, slots=True)
class RateKeys:
    """The statistical gate keys one mapping gives; None = not given there."""

    max_error_rate: float | None = None
    confidence: float | None = None
    min_sample: int | None = None

    def over(self, defaults: RateKeys) -> RateKeys:
        return RateKeys(
            _pick(self.max_error_rate, defaults.max_error_rate),
            _pick(self.confidence, defaults.confidence),
            _pick(self.min_sample, defaults.min_sample),
        )


NO_RATE: Final = RateKeys()


def read_rate(section: Section) -> RateKeys:
    """The statistical gate keys of a wave's (or `wave_defaults`') mapping."""
    findings = section.findings
    rate = confidence = sample = None
    if section.has("max_error_rate"):
        parsed = parse_rate(section.data["max_error_rate"])
        if isinstance(parsed, str):
            findings.add(section.at("max_error_rate"), parsed, "max-error-rate")
        else:
            rate = parsed
    if section.has("confidence"):
        level = parse_confidence(section.data["confidence"])
        if isinstance(level, str):
            findings.add(section.at("confidence"), level, "confidence")
        else:
            confidence = level
    if section.has("min_sample"):
        value = section.data["min_sample"]
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            sample = value
        else:
            findings.add(
                section.at("min_sample"),
                f"must be a whole number of completed instances, 1 or more, not {value!r}",
                "min-sample",
            )
    return RateKeys(rate, confidence, sample)


def check_rate(findings: Findings, section: Section, own: RateKeys, merged: RateKeys) -> None:
    """Refuse `confidence` / `min_sample` given to a wave that has no `max_error_rate`."""
    if merged.max_error_rate is not None:
        return
    for key, value, rule in (
        ("confidence", own.confidence, "confidence"),
        ("min_sample", own.min_sample, "min-sample"),
    ):
        if value is not None:
            findings.add(
                section.at(key),
                f"{key} shapes a max_error_rate gate, and this wave has none: "
                'set max_error_rate (e.g. "2%") too, or remove it',
                rule,
            )
