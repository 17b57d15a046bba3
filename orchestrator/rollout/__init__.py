"""The rollout engine: waves, dispatch, tracking; from resolved instances to outcomes.

Import from here; the `_modules` are private. `run_rollout` runs a plan's command on the
runnable instances and returns a `RolloutResult`; progress goes to an `EventSink` as
frozen events.
"""

from orchestrator.rollout._batches import (
    Batch,
    WavePlan,
    client_token,
    keep_order,
    plan_waves,
    split_batches,
    wave_sizes,
)
from orchestrator.rollout._dispatcher import RUN_TAG_KEY, BatchAttempt, build_request
from orchestrator.rollout._events import (
    BatchDispatched,
    Event,
    EventSink,
    InstanceFinished,
    InstanceRejected,
    RecordingSink,
    RunFinished,
    RunStarted,
    Throttled,
    WaveFinished,
    WaveStarted,
    discard,
)
from orchestrator.rollout._outcome import bound_output, outcome_of
from orchestrator.rollout._quota import QuotaNeeds, check_quota
from orchestrator.rollout._results import (
    Halt,
    InstanceResult,
    Outcome,
    RolloutResult,
    WaveSummary,
)
from orchestrator.rollout._runner import NoHooks, RolloutHooks, run_rollout

__all__ = [
    "RUN_TAG_KEY",
    "Batch",
    "BatchAttempt",
    "BatchDispatched",
    "Event",
    "EventSink",
    "Halt",
    "InstanceFinished",
    "InstanceRejected",
    "InstanceResult",
    "NoHooks",
    "Outcome",
    "QuotaNeeds",
    "RecordingSink",
    "RolloutHooks",
    "RolloutResult",
    "RunFinished",
    "RunStarted",
    "Throttled",
    "WaveFinished",
    "WavePlan",
    "WaveStarted",
    "WaveSummary",
    "bound_output",
    "build_request",
    "check_quota",
    "client_token",
    "discard",
    "keep_order",
    "outcome_of",
    "plan_waves",
    "run_rollout",
    "split_batches",
    "wave_sizes",
]
