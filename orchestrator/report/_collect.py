"""What a report needs beyond the run's result, gathered from the events as they pass.

`RolloutResult` says how every instance ended; it does not say which RunCommands went
out (their ClientTokens and InvokeIds, which CI needs to find an invocation in the
console), which were refused, when each wave started and ended, what its gate decided
with which numbers, what verify found, who was asked to approve and when. The
`ReportCollector` is an `EventSink` that keeps exactly that, small and per batch or per
wave: never an instance's output (the result already holds the bounded one), so a
100,000-instance run costs it a few hundred records. `RunFacts` is the rest: what the
CLI knows that no event carries (the plan, where the calls went, the targets, the exit
code, how the run came to be). Both are the inputs of every report.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime  # noqa: TC003 - dataclass field types are read at run time
from typing import TYPE_CHECKING, Final

from orchestrator.clock import REAL_CLOCK, ClockInfo
from orchestrator.plan import Plan  # noqa: TC001
from orchestrator.rollout import (
    ApprovalDenied,
    ApprovalGranted,
    ApprovalRequested,
    BatchDispatched,
    BatchRefused,
    BreachStopSent,
    GateDecided,
    GateDecision,
    Outcome,
    RolloutResult,
    RunFinished,
    RunStarted,
    Throttled,
    VerifyFinished,
    VerifyStarted,
    WaveFinished,
    WaveStarted,
)
from orchestrator.targets import Resolution  # noqa: TC001

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator.rollout import Event

RUN: Final = "run"  # a batch of the plan's command
VERIFY: Final = "verify"  # a batch of a wave's verify command


@dataclass(frozen=True, slots=True)
class ReportedOrigin:
    """How the run came to be, as reports say it: `kind` (run, exec, retry, rollback),
    the `parent` run of a retry or rollback and the outcomes a retry took (`only`), the
    names of the parameters `--param` overrode (never a value: it never reaches a report)
    and the `--limit` selectors."""

    kind: str = "run"
    parent: str | None = None
    only: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    limit: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What the CLI knows beyond the events: the plan (its file and digest), where the
    calls went (never a credential), the targets as resolved (None when the run was
    resumed without a resolution), the exit code it ends with, and the clock its times
    are on (the simulator's is scaled: durations shown to people are converted)."""

    run_id: str
    plan: Plan
    plan_path: str
    plan_sha256: str
    region: str
    endpoint: str
    resolution: Resolution | None
    exit_code: int
    clock: ClockInfo = REAL_CLOCK  # which clock the run's times are on
    origin: ReportedOrigin = ReportedOrigin()  # how the run came to be


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """One RunCommand the API accepted: which wave and batch (and which half after a
    split), its ClientToken and InvokeId, how many instances, and whether it carried
    the plan's command (`run`) or a wave's verify (`verify`)."""

    wave: int
    batch: int
    split_path: str
    client_token: str
    invoke_id: str
    instances: int
    at: datetime
    purpose: str = RUN


@dataclass(frozen=True, slots=True)
class VerifyRecord:
    """A wave's verify: per instance passed, failed, inconclusive; why it could not run."""

    instances: int
    passed: int = 0
    failed: int = 0
    inconclusive: int = 0
    problem: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    """An approval asked after a wave: why, how, and what came of it (`pending` when the
    run ended while it waited)."""

    reason: str
    how: str
    requested_at: datetime
    decision: str = "pending"
    decided_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class BreachStop:
    """StopInvocation sent after a breach: to how many invocations and instances."""

    invocations: int
    instances: int
    at: datetime


@dataclass(frozen=True, slots=True)
class WaveRecord:
    """Everything the events said about one wave."""

    index: int
    name: str = ""
    size: int = 0
    batches: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    counts: Mapping[Outcome, int] | None = None
    gate: GateDecision | None = None
    verify: VerifyRecord | None = None
    approval: ApprovalRecord | None = None
    breach_stop: BreachStop | None = None


class ReportCollector:
    """An `EventSink` keeping, per batch and per wave, what the run's result does not.

    Each event costs a dictionary update or an append; nothing here does I/O or can
    raise on an event, whatever order events come in (an event about a wave never seen
    starts that wave's record).
    """

    def __init__(self) -> None:
        self.run_id = ""
        self.started_at: datetime | None = None
        self.batches: list[BatchRecord] = []
        self.refused: list[BatchRefused] = []
        self.throttled: dict[str, int] = {}
        self.result: RolloutResult | None = None
        self.interrupted = False
        self._waves: dict[int, WaveRecord] = {}
        self._verifying: set[int] = set()  # waves between VerifyStarted and VerifyFinished

    @property
    def waves(self) -> tuple[WaveRecord, ...]:
        """The waves seen, by index."""
        return tuple(self._waves[i] for i in sorted(self._waves))

    @property
    def throttles(self) -> int:
        """Throttled calls seen."""
        return sum(self.throttled.values())

    def wave(self, index: int) -> WaveRecord:
        """What is known of wave `index` (an empty record if it never started)."""
        return self._waves.get(index) or WaveRecord(index)

    def _put(self, record: WaveRecord) -> None:
        self._waves[record.index] = record

    def __call__(self, event: Event) -> None:
        match event:
            case RunStarted():
                self.run_id, self.started_at = event.run_id, event.at
            case BatchDispatched():
                purpose = VERIFY if event.wave in self._verifying else RUN
                self.batches.append(
                    BatchRecord(
                        event.wave,
                        event.batch,
                        event.split_path,
                        event.client_token,
                        event.invoke_id,
                        len(event.instance_ids),
                        event.at,
                        purpose,
                    )
                )
            case BatchRefused():
                self.refused.append(event)  # already plain, frozen data
            case Throttled():
                self.throttled[event.action] = self.throttled.get(event.action, 0) + 1
            case RunFinished():
                self.result, self.interrupted = event.result, event.interrupted
            case _:
                self._on_wave(event)

    def _on_wave(self, event: Event) -> None:
        match event:
            case WaveStarted():
                wave = self.wave(event.index)
                self._put(
                    replace(
                        wave,
                        name=event.name,
                        size=event.size,
                        batches=event.batches,
                        started_at=event.at,
                    )
                )
            case BreachStopSent():
                stop = BreachStop(event.invocations, event.instances, event.at)
                self._put(replace(self.wave(event.wave), breach_stop=stop))
            case VerifyStarted():
                self._verifying.add(event.wave)
                verify = VerifyRecord(event.instances, started_at=event.at)
                self._put(replace(self.wave(event.wave), verify=verify))
            case VerifyFinished():
                self._verifying.discard(event.wave)
                self._verified(event)
            case GateDecided():
                self._put(replace(self.wave(event.decision.wave), gate=event.decision))
            case WaveFinished():
                wave = self.wave(event.index)
                counts = dict(event.counts)
                self._put(replace(wave, name=event.name, counts=counts, finished_at=event.at))
            case ApprovalRequested():
                approval = ApprovalRecord(event.reason, event.how, event.at)
                self._put(replace(self.wave(event.wave), approval=approval))
            case ApprovalGranted() | ApprovalDenied():
                self._decided(event)
            case _:
                # Instances' results and outputs come with RunFinished (or go to
                # `OutputFiles`); the running gate counts end in GateDecided.
                pass

    def _verified(self, event: VerifyFinished) -> None:
        wave = self.wave(event.wave)
        started = wave.verify
        counts = (event.passed, event.failed, event.inconclusive)
        verify = VerifyRecord(
            started.instances if started else sum(counts),
            *counts,
            problem=event.problem,
            started_at=started.started_at if started else None,
            finished_at=event.at,
        )
        self._put(replace(wave, verify=verify))

    def _decided(self, event: ApprovalGranted | ApprovalDenied) -> None:
        wave = self.wave(event.wave)
        decision = "granted" if isinstance(event, ApprovalGranted) else "denied"
        # Out of order (a decision without its request), the decision is still kept.
        asked = wave.approval or ApprovalRecord("", "", event.at)
        approval = replace(asked, decision=decision, decided_at=event.at)
        self._put(replace(wave, approval=approval))
