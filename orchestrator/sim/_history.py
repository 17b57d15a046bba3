"""The invocations the simulated account lists, aged out as the real service's history is.

A long-lived simulator (`orchestrator sim`) that kept every invocation forever grew
without bound (50 → 142 MB over 2,500 RunCommands). Here a finished invocation, one whose
every instance is final, is kept for `HistorySpec.max_age` simulation seconds and among
the newest `max_finished` finished ones; then it is dropped, and the Describe calls no
longer list it. One with an instance still pending, running or scheduled is kept.

What is dropped keeps only its execution counts, one small int per (invocation,
instance), because every exactly-once proof reads `execution_counts()`: an aged-out
execution must still count.

Finding the finished ones must stay cheap at 100,000 instances in flight: each call looks
at a few unfinished invocations, oldest first, and moves those still going to the back,
so every one is looked at again within a bounded number of calls. They are then aged out
in about the order they finished (exact when they are seen as they finish).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from datetime import datetime

    from orchestrator.sim._invocations import Invocation
    from orchestrator.sim._spec import HistorySpec

# Unfinished invocations looked at per call: bounds the cost a call adds.
LOOKS_PER_CALL: Final = 16


class InvocationStore:
    """Every invocation still listed, by InvokeId and by instance; the counts of the
    executions of the ones aged out."""

    def __init__(self, history: HistorySpec) -> None:
        self._history = history
        self._by_id: dict[str, Invocation] = {}
        self._by_instance: dict[str, dict[str, Invocation]] = {}
        self._unfinished: dict[str, Invocation] = {}  # looked at front first, rotated
        self._finished: dict[str, datetime] = {}  # InvokeId → when, in the order seen
        self._aged_runs: dict[str, dict[str, int]] = {}  # instance → {InvokeId: runs}

    @property
    def by_id(self) -> dict[str, Invocation]:
        return self._by_id

    def add(self, inv: Invocation) -> None:
        self._by_id[inv.invoke_id] = inv
        self._unfinished[inv.invoke_id] = inv
        for instance_id in inv.records:
            self._by_instance.setdefault(instance_id, {})[inv.invoke_id] = inv

    def of_instance(self, instance_id: str) -> list[Invocation]:
        """The listed invocations that name `instance_id`, oldest first."""
        return list(self._by_instance.get(instance_id, {}).values())

    def execution_counts(self, now: datetime) -> dict[str, dict[str, int]]:
        """Instance id → {InvokeId: times the command started there}, aged out or not."""
        counts = {instance: dict(per) for instance, per in self._aged_runs.items()}
        for inv in self._by_id.values():
            for instance_id, runs in inv.executions(now).items():
                if runs:
                    counts.setdefault(instance_id, {})[inv.invoke_id] = runs
        return counts

    def age_out(self, now: datetime) -> list[str]:
        """Drop what the history no longer keeps at `now`; the InvokeIds dropped."""
        self._look(now)
        oldest = now.timestamp() - self._history.max_age
        dropped: list[str] = []
        while self._finished:
            invoke_id, finished = next(iter(self._finished.items()))
            too_many = len(self._finished) > self._history.max_finished
            if not too_many and finished.timestamp() > oldest:
                break
            del self._finished[invoke_id]
            self._drop(self._by_id.pop(invoke_id), now)
            dropped.append(invoke_id)
        return dropped

    def _look(self, now: datetime) -> None:
        """Move the unfinished invocations found finished to the finished ones."""
        looked = list(self._unfinished.values())[:LOOKS_PER_CALL]
        seen: list[tuple[datetime, str]] = []
        for inv in looked:
            del self._unfinished[inv.invoke_id]
            finished = inv.finished_at(now)
            if finished is None:
                self._unfinished[inv.invoke_id] = inv  # to the back: its turn comes again
            else:
                seen.append((finished, inv.invoke_id))
        for finished, invoke_id in sorted(seen):
            self._finished[invoke_id] = finished

    def _drop(self, inv: Invocation, now: datetime) -> None:
        for instance_id, runs in inv.executions(now).items():
            listed = self._by_instance.get(instance_id)
            if listed is not None:
                listed.pop(inv.invoke_id, None)
                if not listed:
                    del self._by_instance[instance_id]
            if runs:
                self._aged_runs.setdefault(instance_id, {})[inv.invoke_id] = runs
