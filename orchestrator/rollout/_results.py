"""Every targeted instance's outcome, as plain data.

Each instance ends in exactly one `Outcome` with a reason (design.md, semantics 1):
succeeded, failed (it ran: non-zero exit, execution timeout, execution error),
undelivered (it never ran: agent offline or not responding, delivery deadline passed),
stopped, skipped (filtered before dispatch, or rejected by RunCommand), not sent (a halt
or an interruption came first). `RolloutResult` gathers them for a whole run.
"""

from __future__ import annotations

from collections.abc import Mapping  # noqa: TC003 - dataclass field types are read at run time
from dataclasses import dataclass, field
from datetime import datetime  # noqa: TC003 - dataclass field types are read at run time
from typing import TYPE_CHECKING

from orchestrator.rollout._outcome import Outcome

if TYPE_CHECKING:
    from orchestrator.rollout._gates import GateDecision


@dataclass(frozen=True, slots=True)
class InstanceResult:
    """One instance's final state. `output` holds the head and the tail of what it
    printed within a fixed budget; `output_dropped` counts the bytes left out (ours and
    the API's `Dropped` together)."""

    instance_id: str
    outcome: Outcome
    wave: str = ""
    zone_id: str = ""
    invoke_id: str = ""
    status: str = ""  # the API's per-instance InvocationStatus, when it was dispatched
    exit_code: int | None = None
    error_code: str = ""  # the API's per-instance ErrorCode, or the RunCommand code
    error_info: str = ""  # the API's ErrorInfo, or why it was skipped or not sent
    start_time: datetime | None = None
    finish_time: datetime | None = None
    output: str = ""
    output_dropped: int = 0
    verify: InstanceResult | None = None


# --- added with the rollout engine: the result of a whole run --------------------------


@dataclass(frozen=True, slots=True)
class Halt:
    """Why a run stopped before its end.

    `reason`: "breach" (a wave's counted errors crossed its `max_errors`: dispatch
    stopped at once, later waves never started; `decision` has the numbers, `in_flight`
    how many instances were still running then, `stop_requested` how many of them were
    sent StopInvocation (`on_breach: stop_in_flight`) and `stopped` how many the agents
    confirmed stopped), "denied" (a person, or `orchestrator approve --deny`, refused a
    wave's approval), "refused" (RunCommand refused the run itself: a quota, auth or
    validation code; dispatch stopped, what was in flight was tracked to its end), "bug"
    (the service saw one ClientToken with two different requests:
    IdempotentParameterMismatch; dispatch stopped at once), "unanswered" (a RunCommand
    got no answer after every retry: its batch may have run and is listed in
    `in_flight`; a resume re-sends the same token), "gate" (a hook said stop after a
    wave), "interrupted" (cancelled, e.g. Ctrl-C), "tracking" (results could no longer
    be read), "zone_breach" (the waves ran, but zones crossed their
    `max_errors_per_zone` and were stopped, `order: spread`: `message` names them).
    `wave` names the wave it happened in, `not_started` the waves that never started
    because of it.
    """

    reason: str
    code: str = ""
    message: str = ""
    wave: str = ""
    decision: GateDecision | None = None
    in_flight: int = 0
    stop_requested: int = 0
    stopped: int = 0
    not_started: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for people: `wave early breached: 3 errors > max_errors 2 (5% of
        45); 12 in-flight stopped; waves rest not started`."""
        if self.decision is None:
            text = " ".join(p for p in (self.code, self.message) if p) or self.reason
        else:
            text = self.decision.summary()
            if self.in_flight and self.stop_requested:
                confirmed = (
                    "stopped"
                    if self.stopped == self.stop_requested
                    else f"stop requested, {self.stopped} confirmed stopped"
                )
                text += f"; {self.stop_requested} in-flight {confirmed}"
            elif self.in_flight:
                text += f"; {self.in_flight} in-flight left to finish"
        if self.not_started:
            noun = "wave" if len(self.not_started) == 1 else "waves"
            text += f"; {noun} {', '.join(self.not_started)} not started"
        return text


def not_sent_reason(halt: Halt | None) -> str:
    """Why an instance was never sent, for its NOT_SENT result."""
    if halt is None:
        return "not sent"
    if halt.reason == "breach":
        return f"halted: wave {halt.wave} breached"
    if halt.reason == "denied":
        return f"halted: wave {halt.wave} was not approved"
    detail = f": {halt.code}" if halt.code else ""
    return f"not sent: the run stopped ({halt.reason}{detail})"


@dataclass(frozen=True, slots=True)
class WaveSummary:
    """One wave: its computed size and how its instances ended."""

    index: int
    name: str
    size: int
    counts: Mapping[Outcome, int] = field(default_factory=dict, hash=False)
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RolloutResult:
    """Everything a run did, in target order.

    `results` has one entry per targeted instance that reached an outcome: dispatched
    ones, rejected ones (SKIPPED), and NOT_SENT for those a halt kept back. `in_flight`
    lists instances dispatched whose outcome is not known (only after an interruption or
    a tracking failure; a resume picks them up by their InvokeId). `api_calls` counts
    attempts per action during the run (retries included), `throttles` the throttled ones.
    """

    run_id: str
    results: tuple[InstanceResult, ...]
    waves: tuple[WaveSummary, ...] = ()
    api_calls: Mapping[str, int] = field(default_factory=dict, hash=False)
    throttles: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    halt: Halt | None = None
    in_flight: tuple[str, ...] = ()
    stopped_zones: tuple[str, ...] = ()  # zones whose max_errors_per_zone broke

    def counts(self) -> dict[Outcome, int]:
        """Instances per outcome (every outcome present)."""
        counts = dict.fromkeys(Outcome, 0)
        for result in self.results:
            counts[result.outcome] += 1
        return counts

    def by_instance(self) -> dict[str, InstanceResult]:
        """Instance id → its result."""
        return {result.instance_id: result for result in self.results}

    def describe_calls(self) -> int:
        """Describe* attempts during the run (the tracking cost)."""
        return sum(n for action, n in self.api_calls.items() if action.startswith("Describe"))
