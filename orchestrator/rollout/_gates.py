"""Pure gate arithmetic: what counts against a wave's `max_errors`, and when it breaches.

A wave's threshold T is computed ONCE, when the wave starts, from its size then
(`Amount.floor_of`: a percentage never tolerates more than it says; None = no limit),
and never recomputed as instances are skipped or fail (design.md, semantics 3). What
counts (semantics 2): FAILED always; UNDELIVERED when the plan's `count_undelivered`
says so (the default, unlike SSM); SKIPPED and NOT_SENT never; STOPPED never either:
the only instances we stop are those still running after a breach (or past their
delivery deadline, which ends UNDELIVERED instead), and counting what we stopped
ourselves would feed a breach with its own consequences. The wave breaches at the
(T+1)-th counted error, as SSM does. `WaveGate` keeps the count for one wave and says
when the breach happens; `GateDecision` carries the numbers behind every verdict, for
events, the summary and (later) the journal. Nothing here does I/O or awaits.

A wave may also have a statistical gate (`max_error_rate`, `_gate_rate.py`): then every
instance with a final outcome the gate judges is a sample (succeeded, failed, counted
undelivered), verify failures turn samples into failures, and either rule breaches. On
resume the earlier attempt's results are counted as one block (`hold` / `release`) and
judged once: the original run, which did not breach, passed at exactly that aggregate.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from orchestrator.rollout._gate_rate import rate_breaches, wilson
from orchestrator.rollout._outcome import Outcome

if TYPE_CHECKING:
    from orchestrator.plan._model import Amount
    from orchestrator.rollout._gate_rate import RateRule


class Verdict(enum.StrEnum):
    """What a gate says about a wave."""

    PASS = "pass"  # noqa: S105 - a verdict, not a password: within the threshold so far
    BREACH = "breach"  # the (T+1)-th counted error: halt
    INCONCLUSIVE = "inconclusive"  # verify could not run: a person decides


class VerifyOutcome(enum.StrEnum):
    """What a wave's verify says about one instance (design.md, semantics 9)."""

    PASSED = "passed"  # verify ran and succeeded
    FAILED = "failed"  # verify ran and failed: counts against the gate
    INCONCLUSIVE = "inconclusive"  # verify could not run there: a person decides


def verify_outcome(outcome: Outcome | None) -> VerifyOutcome:
    """The verify verdict for one instance from the outcome of its verify run (None:
    verify never got an outcome there, e.g. its RunCommand was refused)."""
    if outcome is Outcome.SUCCEEDED:
        return VerifyOutcome.PASSED
    if outcome is Outcome.FAILED:
        return VerifyOutcome.FAILED
    return VerifyOutcome.INCONCLUSIVE


def threshold_of(max_errors: Amount | None, size: int) -> int | None:
    """How many counted errors a wave of `size` tolerates (None: no limit)."""
    if max_errors is None:
        return None
    return max_errors.floor_of(size)


def counts_against(outcome: Outcome, *, count_undelivered: bool) -> bool:
    """Whether an instance that ended in `outcome` counts against `max_errors`.

    STOPPED never counts: we stop instances only after a breach (they must not count
    towards the breach that stopped them), and a stop by someone else is not a failure
    of the command.
    """
    if outcome is Outcome.FAILED:
        return True
    if outcome is Outcome.UNDELIVERED:
        return count_undelivered
    return False


def breaches(errors: int, threshold: int | None) -> bool:
    """The stop rule: more counted errors than the threshold (the (T+1)-th breaches)."""
    return threshold is not None and errors > threshold


def threshold_text(max_errors: Amount | None, size: int, threshold: int | None) -> str:
    """`2 (5% of 45)`, `0`, or `none`: the threshold and where it came from."""
    if max_errors is None or threshold is None:
        return "none"
    if max_errors.percent:
        return f"{threshold} ({max_errors} of {size})"
    return str(threshold)


class ZoneVerdict(enum.StrEnum):
    """What a zone budget says about one zone in one wave."""

    PASS = "pass"  # noqa: S105 - a verdict, not a password: within the zone's budget
    BREACH = "breach"  # the zone's (T+1)-th counted error in this wave: the zone stops
    STOPPED = "stopped"  # stopped in an earlier wave: nothing of it is sent any more


@dataclass(frozen=True, slots=True)
class ZoneCount:
    """One zone's numbers in one wave: its instances in the wave, the threshold frozen
    from them, its counted errors and the verdict."""

    zone: str
    size: int
    max_errors: Amount | None
    threshold: int | None
    errors: int
    verdict: ZoneVerdict
    failed: int = 0
    undelivered: int = 0

    @property
    def limit_text(self) -> str:
        """`1 (50% of 3)` and the like."""
        return threshold_text(self.max_errors, self.size, self.threshold)

    def summary(self) -> str:
        """`zone cn-hangzhou-h breached: 2 errors > max_errors_per_zone 1 (50% of 3)`."""
        noun = "error" if self.errors == 1 else "errors"
        if self.verdict is ZoneVerdict.BREACH:
            return (
                f"zone {self.zone} breached: {self.errors} {noun} > "
                f"max_errors_per_zone {self.limit_text}"
            )
        if self.verdict is ZoneVerdict.STOPPED:
            return f"zone {self.zone} stopped in an earlier wave: none of its {self.size} sent"
        return f"zone {self.zone}: {self.errors} {noun}, max_errors_per_zone {self.limit_text}"


@dataclass(frozen=True, slots=True)
class GateDecision:
    """One gate verdict with the numbers behind it.

    `errors` counts what counts against the threshold (`failed` + `undelivered` when they
    count, + `verify_failed`); `threshold` is None when the wave has no limit.
    """

    wave: int  # 0-based wave index
    name: str
    size: int
    max_errors: Amount | None
    threshold: int | None
    errors: int
    verdict: Verdict
    reason: str
    failed: int = 0
    undelivered: int = 0
    verify_failed: int = 0
    # Zone budgets (`max_errors_per_zone`, `_gate_zones.py`): every zone of the wave with
    # its numbers; `zone_breach`: the zone whose breach is this decision's, if one is.
    zones: tuple[ZoneCount, ...] = ()
    zone_breach: ZoneCount | None = None
    completed: int = 0  # samples of the failure rate (see the module's docstring)
    rate: RateRule | None = None
    lower: float | None = None  # the Wilson bounds of errors/completed at rate.confidence
    upper: float | None = None
    rule: str = "max_errors"  # which rule the verdict is about: max_errors | max_error_rate

    @property
    def limit_text(self) -> str:
        """The threshold as people read it: `2 (5% of 45)`."""
        return threshold_text(self.max_errors, self.size, self.threshold)

    def rate_text(self) -> str:
        """`failure rate ≥ 4.1% (95% lower bound, 3 of 12)`; "" without a rate gate."""
        if self.rate is None or self.lower is None:
            return ""
        return (
            f"failure rate ≥ {self.lower * 100:.1f}% ({self.rate.confidence:g}% lower bound, "
            f"{self.errors} of {self.completed})"
        )

    def summary(self) -> str:
        """`wave early breached: 3 errors > max_errors 2 (5% of 45)` and the like."""
        noun = "error" if self.errors == 1 else "errors"
        if self.verdict is Verdict.BREACH and self.zone_breach is not None:
            return f"wave {self.name} breached: {self.zone_breach.summary()}"
        rate = self.rate
        if self.verdict is Verdict.BREACH and self.rule == "max_error_rate" and rate is not None:
            return (
                f"wave {self.name} breached: {self.rate_text()} > "
                f"max_error_rate {rate.max_error_rate:g}%"
            )
        if self.verdict is Verdict.BREACH:
            return f"wave {self.name} breached: {self.errors} {noun} > max_errors {self.limit_text}"
        if self.verdict is Verdict.INCONCLUSIVE:
            return f"wave {self.name} inconclusive: {self.reason}"
        text = f"wave {self.name} passed: {self.errors} {noun}, max_errors {self.limit_text}"
        if rate is not None:
            text += f"; {self.rate_text()}, max_error_rate {rate.max_error_rate:g}%"
        return text


class ZoneCounter(Protocol):
    """What a `WaveGate` asks of its zone budgets (`_gate_zones.ZoneBudgets`)."""

    def observe(self, instance_id: str, outcome: Outcome) -> ZoneCount | None: ...

    def counts(self) -> tuple[ZoneCount, ...]: ...


class WaveGate:
    """The running count of one wave's errors; tells the moment it breaches.

    Each instance is counted once, the first time its outcome is known (the tracker
    reports it as soon as the listing shows a final state, before its execution slot is
    freed, so no further batch can slip out between the error and the breach).
    """

    def __init__(
        self,
        wave: int,
        name: str,
        size: int,
        max_errors: Amount | None,
        *,
        count_undelivered: bool,
        zones: ZoneCounter | None = None,
        halt_on_zone: bool = False,
        rate: RateRule | None = None,
    ) -> None:
        self.wave = wave
        self.name = name
        self.size = size
        self.max_errors = max_errors
        self.threshold = threshold_of(max_errors, size)  # frozen now, never recomputed
        self._count_undelivered = count_undelivered
        self._seen: set[str] = set()
        self.failed = 0
        self.undelivered = 0
        self.verify_failed = 0
        self.completed = 0  # samples for the rate rule
        self.rate = rate
        self._held = False  # counting a resumed wave's earlier results as one block
        self._held_zones: list[ZoneCount] = []  # zones the held block broke
        self.breach: GateDecision | None = None  # the decision at the (T+1)-th error
        # `max_errors_per_zone`: a zone's breach stops the zone, or with `halt_on_zone`
        # (`order: by_zone`) is the wave's breach.
        self._zones = zones
        self._halt_on_zone = halt_on_zone

    @property
    def errors(self) -> int:
        """Counted errors so far."""
        counted_undelivered = self.undelivered if self._count_undelivered else 0
        return self.failed + counted_undelivered + self.verify_failed

    def observe(self, instance_id: str, outcome: Outcome) -> GateDecision | None:
        """Count one instance's outcome (once per instance). Returns the running decision
        when it counted (PASS, or BREACH the first time the threshold is crossed), None
        when it did not count or was already counted."""
        if instance_id in self._seen:
            return None
        self._seen.add(instance_id)
        zone_breach = self._zones.observe(instance_id, outcome) if self._zones else None
        if outcome is Outcome.FAILED:
            self.failed += 1
        elif outcome is Outcome.UNDELIVERED:
            self.undelivered += 1
        counted = counts_against(outcome, count_undelivered=self._count_undelivered)
        if counted or outcome is Outcome.SUCCEEDED:
            self.completed += 1
        if self._held:
            if zone_breach is not None:
                self._held_zones.append(zone_breach)
            return None
        if not counted:
            # A success never raises the lower bound, but it can reach min_sample.
            if outcome is Outcome.SUCCEEDED and self.rate is not None and self.breach is None:
                decision = self._evaluate()
                return decision if decision.verdict is Verdict.BREACH else None
            return None
        return self._evaluate(zone_breach)

    def hold(self) -> None:
        """Count what follows as one block, judged once by `release` (a resume's priors)."""
        self._held = True

    def release(self) -> list[GateDecision]:
        """Judge the held block once: a decision for each zone it broke (counts, so the
        order they arrived in does not matter), then the wave's; none when it held
        nothing the gate counts."""
        self._held = False
        decisions = [self._evaluate(zone) for zone in self._held_zones]
        self._held_zones.clear()
        if self.completed or self.errors:
            decisions.append(self._evaluate())
        return decisions

    def verify_failures(self, count: int) -> GateDecision:
        """Add the instances whose verify failed, and re-evaluate."""
        self.verify_failed += count
        return self._evaluate()

    def _evaluate(self, zone_breach: ZoneCount | None = None) -> GateDecision:
        """The running decision; a PASS with `zone_breach` set says that zone stops."""
        if self.breach is not None:
            return self.breach
        if breaches(self.errors, self.threshold):
            self.breach = self.decision(Verdict.BREACH, "the (T+1)-th counted error")
            return self.breach
        if zone_breach is not None and self._halt_on_zone:
            reason = "a zone's (T+1)-th counted error (order: by_zone)"
            self.breach = self.decision(Verdict.BREACH, reason, zone_breach=zone_breach)
            return self.breach
        if self.rate is not None and rate_breaches(self.errors, self.completed, self.rate):
            self.breach = self.decision(
                Verdict.BREACH, "the lower bound crossed max_error_rate", rule="max_error_rate"
            )
            return self.breach
        if zone_breach is not None:
            return self.decision(Verdict.PASS, "a zone stops", zone_breach=zone_breach)
        return self.decision(Verdict.PASS, "within max_errors")

    def decision(
        self,
        verdict: Verdict,
        reason: str,
        *,
        rule: str = "max_errors",
        zone_breach: ZoneCount | None = None,
    ) -> GateDecision:
        """The numbers as they stand, with `verdict`."""
        lower = upper = None
        if self.rate is not None:
            lower, upper = wilson(self.errors, self.completed, self.rate.z)
        return GateDecision(
            wave=self.wave,
            name=self.name,
            size=self.size,
            max_errors=self.max_errors,
            threshold=self.threshold,
            errors=self.errors,
            verdict=verdict,
            reason=reason,
            failed=self.failed,
            undelivered=self.undelivered,
            verify_failed=self.verify_failed,
            zones=self._zones.counts() if self._zones is not None else (),
            zone_breach=zone_breach,
            completed=self.completed,
            rate=self.rate,
            lower=lower,
            upper=upper,
            rule=rule,
        )

    def final(self, *, inconclusive: str = "") -> GateDecision:
        """The wave's decision once every result is in: the breach if one happened, else
        INCONCLUSIVE when `inconclusive` says why, else PASS."""
        if self.breach is not None:
            return self.breach
        if inconclusive:
            return self.decision(Verdict.INCONCLUSIVE, inconclusive)
        return self.decision(Verdict.PASS, "within max_errors")
