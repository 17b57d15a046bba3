"""What an earlier attempt of a run already did, as the journal recorded it.

A resumed run is the same run again (same run id, plan, instances, waves, batches and
so the same ClientTokens), told by a `RunHistory` what is already known: which
ClientTokens were sent and how RunCommand answered each, the final results already
recorded, and which waves already passed their gate. The dispatcher never sends a token
again when its invocation is known (it follows that InvokeId), follows a recorded split
instead of re-sending the whole batch (a batch refused once because of one instance
could be accepted now, and run twice on the others), and re-sends with the same token
only what has no known answer. Plain data: the engine never reads the journal itself.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping  # noqa: TC003 - dataclass field types are read at run time
from dataclasses import dataclass, field

from orchestrator.rollout._results import InstanceResult  # noqa: TC001


class BatchState(enum.StrEnum):
    """Where one ClientToken stands. Each recorded token is in exactly one state."""

    SENDING = "sending"  # recorded before the send; no answer known (it may have run)
    ACCEPTED = "accepted"  # RunCommand answered with an InvokeId
    SPLIT = "split"  # refused because of one of its instances: its halves were sent
    REJECTED = "rejected"  # a lone instance RunCommand refused: SKIPPED
    REFUSED = "refused"  # refused for the whole run (quota, auth, validation): nothing ran
    WITHDRAWN = "withdrawn"  # a halt came before it left: nothing was sent


@dataclass(frozen=True, slots=True)
class RecordedBatch:
    """One ClientToken as the journal knows it."""

    client_token: str
    state: BatchState
    invoke_id: str = ""
    error_code: str = ""


@dataclass(frozen=True, slots=True)
class RunHistory:
    """An earlier attempt of this run: tokens (by ClientToken), final results (by
    instance), and the waves that passed their gate (their results are final; the run
    goes on after them)."""

    batches: Mapping[str, RecordedBatch] = field(default_factory=dict, hash=False)
    results: Mapping[str, InstanceResult] = field(default_factory=dict, hash=False)
    passed_waves: frozenset[int] = frozenset()
    started_waves: frozenset[int] = frozenset()

    def batch(self, token: str) -> RecordedBatch | None:
        return self.batches.get(token)


NO_HISTORY = RunHistory()
