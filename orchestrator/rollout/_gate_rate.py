"""Pure statistics of the `max_error_rate` gate: the Wilson score bounds and the rule.

The rule (docs/plan-reference.md, "Statistical thresholds"): over the n instances of the
wave completed so far (a sample: succeeded, failed, and undelivered when they count; a
skipped, not sent, stopped or uncounted undelivered instance says nothing of the
command's failure rate), f of them failed (verify failures included). The wave breaches
as soon as n ≥ `min_sample` and the one-sided lower Wilson score bound of f/n at
`confidence` is above `max_error_rate`: "we are 95 % sure the failure rate is above 2 %".
One-sided: z = Φ⁻¹(confidence), so 95 % is z ≈ 1.645. Nothing here does I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from orchestrator.plan._model import Wave

# A dry run scans wave sizes up to this many instances for the resolution.
RESOLUTION_SCAN: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class RateRule:
    """`max_error_rate`, `confidence` (percentages) and `min_sample` of one wave."""

    max_error_rate: float  # percent, in [0, 100]
    confidence: float = 95.0  # percent, in (0, 100)
    min_sample: int = 1

    @property
    def z(self) -> float:
        return NormalDist().inv_cdf(self.confidence / 100)

    @property
    def rate(self) -> float:
        return self.max_error_rate / 100

    def text(self) -> str:
        return f"max_error_rate {self.max_error_rate:g}% at {self.confidence:g}% confidence"


def rate_rule(wave: Wave) -> RateRule | None:
    """The wave's rate rule (None: it has no `max_error_rate`)."""
    if wave.max_error_rate is None:
        return None
    return RateRule(wave.max_error_rate, wave.confidence, wave.min_sample)


def wilson(failed: int, completed: int, z: float) -> tuple[float, float]:
    """The Wilson score bounds (lower, upper) of the rate failed/completed at `z`;
    (0, 1) when nothing completed."""
    if completed <= 0:
        return 0.0, 1.0
    n, p = completed, failed / completed
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(max(0.0, p * (1 - p) / n + z2 / (4 * n * n)))
    lower = 0.0 if failed == 0 else max(0.0, centre - half)
    upper = 1.0 if failed == completed else min(1.0, centre + half)
    return lower, upper


def rate_breaches(failed: int, completed: int, rule: RateRule) -> bool:
    """The stop rule: enough samples, and the lower bound above the threshold."""
    if completed < max(1, rule.min_sample):
        return False
    return wilson(failed, completed, rule.z)[0] > rule.rate


@dataclass(frozen=True, slots=True)
class Reach:
    """What a wave of `size` completed instances can detect under a rate rule.

    `tolerated`: the most failures the wave can end with and pass (= `size`: it can never
    breach). `fewest`: the fewest failures that can halt it (when they come first; None:
    none can). `resolution`: the smallest wave a fleet failing at twice the threshold
    (at most 100 %) halts by its end: its failures, at that rate, exceed `tolerated`
    (None: none up to RESOLUTION_SCAN instances).
    """

    size: int
    tolerated: int
    fewest: int | None
    resolution: int | None

    @property
    def can_breach(self) -> bool:
        return self.tolerated < self.size

    @property
    def one_halts(self) -> bool:
        return self.fewest == 1 and self.tolerated == 0


def _tolerated(size: int, rule: RateRule) -> int:
    low, high = 0, size  # lower bound rises with failures: the last that passes
    if not rate_breaches(size, size, rule):
        return size
    while low < high:
        mid = (low + high + 1) // 2
        if rate_breaches(mid, size, rule):
            high = mid - 1
        else:
            low = mid
    return low


def reach(size: int, rule: RateRule) -> Reach:
    """What `rule` can tell on a wave of `size` (see `Reach`)."""
    fewest = None
    for failures in range(1, size + 1):
        if rate_breaches(failures, max(failures, rule.min_sample), rule) and (
            max(failures, rule.min_sample) <= size
        ):
            fewest = failures
            break
    return Reach(size, _tolerated(size, rule), fewest, resolution(rule))


def resolution(rule: RateRule) -> int | None:
    """The smallest wave that a fleet failing at twice the threshold halts by its end."""
    twice = min(1.0, 2 * rule.rate)
    if twice <= 0:
        return max(1, rule.min_sample)  # 0 %: any failure halts
    for size in range(max(1, rule.min_sample), RESOLUTION_SCAN + 1):
        if rate_breaches(math.floor(twice * size + 1e-9), size, rule):
            return size
    return None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def reach_text(found: Reach, rule: RateRule) -> str:
    """One sentence for the dry run."""
    head = f"with {_count(found.size, 'instance')} and {rule.text()}"
    if not found.can_breach:
        text = f"{head}, the gate can never halt"
    elif found.one_halts:
        rate = f"{rule.max_error_rate:g}%"
        text = f"{head}, one failure already halts: it cannot tell {rate} from 50%"
    else:
        text = (
            f"{head}, {_count(found.tolerated, 'failure')} pass, {found.tolerated + 1} halt "
            f"(as few as {found.fewest} if they come first)"
        )
    if found.resolution is None:
        return f"{text}; no wave up to {RESOLUTION_SCAN} tells it from twice that"
    doubled = min(100.0, 2 * rule.max_error_rate)
    return f"{text}; a wave of {found.resolution} or more tells it from {doubled:g}%"
