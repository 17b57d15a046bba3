"""What a rollout tells the world while it runs: frozen event dataclasses and the sink type.

A run emits, in order: `RunStarted`; per wave `WaveStarted`, then `BatchDispatched`,
`BatchRefused`, `InstanceRejected`, `Throttled`, `InstanceOutput`, `InstanceFinished` and
`GateEvaluated` (each counted error, with the running numbers) as they happen,
`BreachStopSent` if the wave breached and its in-flight invocations were stopped; then
`VerifyStarted`/`VerifyFinished` (when the wave has `verify`), `GateDecided` (exactly one
per wave that started: pass, breach or inconclusive, with the numbers) and `WaveFinished`
(counts after verify); then, unless it is the last wave, `WavePaused` (with the time it
ends) and `ApprovalRequested` followed by `ApprovalGranted` or `ApprovalDenied`; and last
`RunFinished`, carrying the whole `RolloutResult` (also when the run was interrupted: that
is how a caller gets the partial result). The last wave has no pause and no approval after
it (an inconclusive verify still asks for one). An `EventSink` is a plain synchronous
callable that must not block and never awaits: progress display, report builders,
structured logs and tests are all sinks. `RecordingSink` keeps every event in a list, for
tests and post-mortems.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime  # noqa: TC003 - dataclass field types are read at run time
from typing import TYPE_CHECKING, Protocol, TypeVar

from orchestrator.rollout._gates import GateDecision  # noqa: TC001
from orchestrator.rollout._history import BatchState  # noqa: TC001
from orchestrator.rollout._outcome import Outcome  # noqa: TC001
from orchestrator.rollout._results import InstanceResult, RolloutResult  # noqa: TC001

if TYPE_CHECKING:
    from collections.abc import Mapping

E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class RunStarted:
    """The run begins: `instances` runnable targets in `waves` (their computed sizes)."""

    run_id: str
    plan_name: str
    instances: int
    wave_sizes: tuple[int, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class WaveStarted:
    """Wave `index` (0-based) begins with `size` instances in `batches` RunCommands."""

    index: int
    name: str
    size: int
    batches: int
    at: datetime


@dataclass(frozen=True, slots=True)
class BatchDispatched:
    """RunCommand accepted one batch (or a part of one, after a split: `split_path`)."""

    wave: int
    batch: int
    split_path: str  # "" for a whole batch; "0"/"1" per halving, left to right
    client_token: str
    invoke_id: str
    instance_ids: tuple[str, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class BatchRefused:
    """RunCommand refused one ClientToken: `state` is what became of it
    (`split`: refused because of an instance, its halves follow; `rejected`: a lone
    instance, now SKIPPED; `refused`: the run itself, dispatch halts; `withdrawn`: a halt
    came before it left). Nothing ran for it in any case."""

    wave: int
    batch: int
    split_path: str
    client_token: str
    state: BatchState
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class InstanceRejected:
    """RunCommand refused `instance_id` (isolated by splitting its batch): it is SKIPPED."""

    wave: int
    instance_id: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class InstanceFinished:
    """One instance reached its final state (any Outcome but NOT_SENT)."""

    result: InstanceResult


@dataclass(frozen=True, slots=True)
class InstanceOutput:
    """The whole output the API returned for one instance of the run's command (before
    it is cut to the result's head and tail), and the bytes the API itself dropped.
    Emitted just before the instance's `InstanceFinished`; a sink that keeps outputs
    (`--output-dir`) writes it somewhere, others ignore it."""

    instance_id: str
    wave: str
    output: str
    dropped: int


@dataclass(frozen=True, slots=True)
class Throttled:
    """The endpoint throttled `action`; its bucket now allows `rate` calls per second."""

    action: str
    rate: float


@dataclass(frozen=True, slots=True)
class WaveFinished:
    """Wave `index` is over: every instance of it has an outcome."""

    index: int
    name: str
    counts: Mapping[Outcome, int] = field(hash=False)
    at: datetime


@dataclass(frozen=True, slots=True)
class GateEvaluated:
    """A counted error changed the running count of a wave's gate (`decision.verdict`
    is PASS so far, or BREACH at the (T+1)-th)."""

    decision: GateDecision


@dataclass(frozen=True, slots=True)
class GateDecided:
    """A wave's gate decided (once per wave that started): PASS, BREACH or INCONCLUSIVE."""

    decision: GateDecision


@dataclass(frozen=True, slots=True)
class BreachStopSent:
    """After a breach (`on_breach: stop_in_flight`), StopInvocation went to `instances`
    instances still running in `invocations` invocations: stop *requested*; each
    instance's result says whether the agent confirmed it."""

    wave: int
    name: str
    invocations: int
    instances: int
    at: datetime


@dataclass(frozen=True, slots=True)
class VerifyStarted:
    """The wave's verify command goes to its `instances` SUCCEEDED instances."""

    wave: int
    name: str
    instances: int
    at: datetime


@dataclass(frozen=True, slots=True)
class VerifyFinished:
    """The verify of a wave is over: per instance passed, failed (these now count against
    the gate) or inconclusive (it could not run there); `problem` says why verify could
    not run at all, if so."""

    wave: int
    name: str
    passed: int
    failed: int
    inconclusive: int
    problem: str
    at: datetime


@dataclass(frozen=True, slots=True)
class WavePaused:
    """The wave passed; the next one starts no earlier than `until` (`seconds` later)."""

    wave: int
    name: str
    seconds: float
    until: datetime


@dataclass(frozen=True, slots=True)
class ApprovalRequested:
    """The run waits for a person to approve wave `name` before the next wave starts:
    `reason` says why (the plan's `approval`, or an inconclusive verify), `how` how to
    approve (`orchestrator approve RUN WAVE`, `--approve WAVE`, a prompt)."""

    run_id: str
    wave: int
    name: str
    reason: str
    how: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ApprovalGranted:
    """Wave `name` was approved: the run goes on."""

    wave: int
    name: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ApprovalDenied:
    """Wave `name` was refused: the run halts."""

    wave: int
    name: str
    at: datetime


@dataclass(frozen=True, slots=True)
class RunFinished:
    """The run is over (or was interrupted: `interrupted`); `result` says everything."""

    result: RolloutResult
    interrupted: bool = False


Event = (
    RunStarted
    | WaveStarted
    | BatchDispatched
    | BatchRefused
    | InstanceRejected
    | InstanceOutput
    | InstanceFinished
    | Throttled
    | WaveFinished
    | GateEvaluated
    | GateDecided
    | BreachStopSent
    | VerifyStarted
    | VerifyFinished
    | WavePaused
    | ApprovalRequested
    | ApprovalGranted
    | ApprovalDenied
    | RunFinished
)


class EventSink(Protocol):
    """Receives every event, synchronously, in order. It must return quickly and never
    raise: a sink that fails must not stop a rollout half-way (the runner does not guard
    against it)."""

    def __call__(self, event: Event) -> None: ...


class RecordingSink:
    """A sink that keeps every event, in order (for tests and post-mortems)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type[E]) -> list[E]:
        """The recorded events of one type, in order."""
        return [event for event in self.events if isinstance(event, kind)]


def discard(event: Event) -> None:
    """A sink that ignores everything."""
    del event
