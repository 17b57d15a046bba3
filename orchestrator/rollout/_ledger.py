"""The run's book of record in memory: which instance is where, and every final result.

The dispatcher writes who is being sent and who was accepted, the tracker writes final
results; the runner reads it to build the `RolloutResult` at the end, or a partial one
when the run is interrupted. Recording a result emits `InstanceFinished` to the sink.
The wave's gate listens through `observe`: it hears each outcome as soon as it is known
(`settled`, from the tracker, before the instance's execution slot is freed) and again
when the result is recorded (the gate counts each instance once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.rollout._events import InstanceFinished, InstanceOutput
from orchestrator.rollout._outcome import Outcome
from orchestrator.rollout._results import InstanceResult

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from orchestrator.ecs import Instance
    from orchestrator.rollout._events import EventSink


class RunLedger:
    """Where every instance of one run stands."""

    def __init__(self, sink: EventSink) -> None:
        self._sink = sink
        self.results: dict[str, InstanceResult] = {}
        self._sending: set[str] = set()  # RunCommand sent, no answer yet
        self._accepted: set[str] = set()  # in an invocation RunCommand answered with
        self._observer: Callable[[str, Outcome], None] | None = None

    def observe(self, observer: Callable[[str, Outcome], None] | None) -> None:
        """Tell `observer` every outcome from now on (None: stop telling)."""
        self._observer = observer

    def settled(self, instance_id: str, outcome: Outcome) -> None:
        """An instance's outcome is known, ahead of its full result (gates act on it)."""
        if self._observer is not None and instance_id not in self.results:
            self._observer(instance_id, outcome)

    def sending(self, instance_ids: Iterable[str]) -> None:
        """A RunCommand naming these instances is about to go out."""
        self._sending.update(instance_ids)

    def answered(self, instance_ids: Iterable[str], *, accepted: bool) -> None:
        """RunCommand answered for these instances: accepted, or refused outright."""
        ids = set(instance_ids)
        self._sending -= ids
        if accepted:
            self._accepted |= ids

    def output(self, instance_id: str, wave: str, text: str, dropped: int) -> None:
        """The whole output of an instance, before its result cuts it (to the sink)."""
        if instance_id not in self.results:
            self._sink(InstanceOutput(instance_id, wave, text, dropped))

    def record(self, result: InstanceResult) -> None:
        """An instance's final result (first one wins); emitted unless NOT_SENT."""
        if result.instance_id in self.results:
            return
        self.settled(result.instance_id, result.outcome)
        self.results[result.instance_id] = result
        if result.outcome is not Outcome.NOT_SENT:
            self._sink(InstanceFinished(result))

    def replace(self, result: InstanceResult) -> None:
        """Replace a recorded result (a failed verify turns SUCCEEDED into FAILED)."""
        if result.instance_id not in self.results:
            raise KeyError(result.instance_id)
        self.results[result.instance_id] = result

    def counts(self, instances: Iterable[Instance]) -> dict[Outcome, int]:
        """How `instances` ended so far, every outcome present."""
        counts = dict.fromkeys(Outcome, 0)
        for instance in instances:
            result = self.results.get(instance.instance_id)
            if result is not None:
                counts[result.outcome] += 1
        return counts

    def sending_count(self) -> int:
        """Instances in RunCommands sent and not answered yet."""
        return len(self._sending)

    def in_flight(self) -> set[str]:
        """Instances that may be running, whose outcome is not known."""
        return (self._sending | self._accepted) - set(self.results)

    def settle_not_sent(self, instances: Iterable[Instance], wave: str, why: str) -> None:
        """Mark every instance that has no result and never went out as NOT_SENT."""
        maybe_running = self.in_flight()
        for instance in instances:
            if instance.instance_id in self.results or instance.instance_id in maybe_running:
                continue
            self.record(
                InstanceResult(
                    instance.instance_id,
                    Outcome.NOT_SENT,
                    wave=wave,
                    zone_id=instance.zone_id,
                    error_info=why,
                )
            )
