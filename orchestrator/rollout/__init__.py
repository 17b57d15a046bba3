"""The rollout engine: waves, dispatch, tracking, gates; from resolved instances to outcomes.

Import from here; the `_modules` are private. `run_rollout` runs a plan's command on the
runnable instances and returns a `RolloutResult`; progress goes to an `EventSink` as
frozen events (gate decisions included, with their numbers); approvals come from an
`Approver`. Before a run's first RunCommand, `check_no_live_run` refuses it if another
run of its plan is live on its instances (the tags `PlanIdentity` puts on each call).
"""

from orchestrator.rollout._approval import (
    DEFAULT_STATE_DIR,
    Approver,
    FileApprover,
    FirstOf,
    PreApproved,
    Refuse,
    marker_path,
    write_marker,
)
from orchestrator.rollout._batches import (
    Batch,
    WavePlan,
    client_token,
    keep_order,
    plan_waves,
    split_batches,
    wave_sizes,
)
from orchestrator.rollout._control import Request, RunControl
from orchestrator.rollout._dispatcher import BatchAttempt, build_request
from orchestrator.rollout._events import (
    ApprovalDenied,
    ApprovalGranted,
    ApprovalRequested,
    BatchDispatched,
    BatchRefused,
    BreachStopSent,
    Event,
    EventSink,
    GateDecided,
    GateEvaluated,
    InstanceFinished,
    InstanceOutput,
    InstanceRejected,
    RecordingSink,
    RunFinished,
    RunStarted,
    Throttled,
    VerifyFinished,
    VerifyStarted,
    WaveFinished,
    WavePaused,
    WaveStarted,
    discard,
)
from orchestrator.rollout._gate_zones import ZoneBudgets
from orchestrator.rollout._gates import (
    GateDecision,
    Verdict,
    VerifyOutcome,
    WaveGate,
    ZoneCount,
    ZoneVerdict,
    counts_against,
    threshold_of,
    threshold_text,
)
from orchestrator.rollout._guard import (
    LIVE_STATUSES,
    Conflict,
    LiveRunElsewhere,
    PlanIdentity,
    check_no_live_run,
    find_conflicts,
    plan_tag_value,
)
from orchestrator.rollout._history import (
    NO_HISTORY,
    BatchState,
    RecordedBatch,
    RunHistory,
)
from orchestrator.rollout._hooks import NoHooks, RolloutHooks
from orchestrator.rollout._order import by_zone, order_for, spread
from orchestrator.rollout._outcome import Outcome, bound_output, outcome_of
from orchestrator.rollout._quota import QuotaNeeds, check_quota
from orchestrator.rollout._results import (
    Halt,
    InstanceResult,
    RolloutResult,
    WaveSummary,
)
from orchestrator.rollout._runner import run_rollout
from orchestrator.rollout._tags import PLAN_DIGEST_TAG_KEY, PLAN_TAG_KEY, RUN_TAG_KEY
from orchestrator.rollout._verify import VERIFY_COMMAND_NAME
from orchestrator.rollout._wave import ShapedWave, shape_waves

__all__ = [
    "DEFAULT_STATE_DIR",
    "LIVE_STATUSES",
    "NO_HISTORY",
    "PLAN_DIGEST_TAG_KEY",
    "PLAN_TAG_KEY",
    "RUN_TAG_KEY",
    "VERIFY_COMMAND_NAME",
    "ApprovalDenied",
    "ApprovalGranted",
    "ApprovalRequested",
    "Approver",
    "Batch",
    "BatchAttempt",
    "BatchDispatched",
    "BatchRefused",
    "BatchState",
    "BreachStopSent",
    "Conflict",
    "Event",
    "EventSink",
    "FileApprover",
    "FirstOf",
    "GateDecided",
    "GateDecision",
    "GateEvaluated",
    "Halt",
    "InstanceFinished",
    "InstanceOutput",
    "InstanceRejected",
    "InstanceResult",
    "LiveRunElsewhere",
    "NoHooks",
    "Outcome",
    "PlanIdentity",
    "PreApproved",
    "QuotaNeeds",
    "RecordedBatch",
    "RecordingSink",
    "Refuse",
    "Request",
    "RolloutHooks",
    "RolloutResult",
    "RunControl",
    "RunFinished",
    "RunHistory",
    "RunStarted",
    "ShapedWave",
    "Throttled",
    "Verdict",
    "VerifyFinished",
    "VerifyOutcome",
    "VerifyStarted",
    "WaveFinished",
    "WaveGate",
    "WavePaused",
    "WavePlan",
    "WaveStarted",
    "WaveSummary",
    "ZoneBudgets",
    "ZoneCount",
    "ZoneVerdict",
    "bound_output",
    "build_request",
    "by_zone",
    "check_no_live_run",
    "check_quota",
    "client_token",
    "counts_against",
    "discard",
    "find_conflicts",
    "keep_order",
    "marker_path",
    "order_for",
    "outcome_of",
    "plan_tag_value",
    "plan_waves",
    "run_rollout",
    "shape_waves",
    "split_batches",
    "spread",
    "threshold_of",
    "threshold_text",
    "wave_sizes",
    "write_marker",
]
