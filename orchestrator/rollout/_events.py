"""What a rollout tells the world while it runs: frozen event dataclasses and the sink type.

A run emits, in order: `RunStarted`; per wave `WaveStarted`, then `BatchDispatched`,
`InstanceRejected`, `Throttled` and `InstanceFinished` as they happen, then
`WaveFinished`; and last `RunFinished`, carrying the whole `RolloutResult` (also when
the run was interrupted: that is how a caller gets the partial result). An `EventSink` is
a plain synchronous callable that must not block and never awaits: progress display,
report builders, structured logs and tests are all sinks. `RecordingSink` keeps every
event in a list, for tests and post-mortems.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime  # noqa: TC003 - dataclass field types are read at run time
from typing import TYPE_CHECKING, Protocol, TypeVar

from orchestrator.rollout._results import InstanceResult, Outcome, RolloutResult  # noqa: TC001

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
class RunFinished:
    """The run is over (or was interrupted: `interrupted`); `result` says everything."""

    result: RolloutResult
    interrupted: bool = False


Event = (
    RunStarted
    | WaveStarted
    | BatchDispatched
    | InstanceRejected
    | InstanceFinished
    | Throttled
    | WaveFinished
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
