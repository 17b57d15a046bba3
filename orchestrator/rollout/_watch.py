"""What the tracker knows about each dispatched instance, and its final result from that.

`Watched` is one instance of one invocation as the tracker follows it (last listed
state, whether it is done, whether and why we asked it to stop); `final_result` turns
it, with its DescribeInvocationResults record, into the instance's `InstanceResult`, and
`outcome_for` into its `Outcome`: a delivery stop that cancelled a Pending instance means
it never ran (UNDELIVERED); a stop after a breach never counts (STOPPED, or what the
instance reached first on its own), and a stop the agent never confirmed within the
grace is STOPPED with `StopNotConfirmed` (stop requested, not stopped). Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orchestrator.api import InstanceInvocationStatus as S
from orchestrator.rollout._outcome import Outcome, bound_output, is_done, outcome_of
from orchestrator.rollout._results import InstanceResult

if TYPE_CHECKING:
    from orchestrator.ecs import Instance, InvocationInstance
    from orchestrator.ecs import InvocationResult as Record


@dataclass(slots=True, eq=False)
class Watched:
    """One instance of one invocation."""

    instance: Instance
    last: InvocationInstance | None = None
    done: bool = False  # a final state was seen, or we gave up on it
    released: bool = False  # its execution slot was given back
    stop_requested_at: float | None = None
    stop_kind: str = ""  # "delivery" (past its deadline) or "breach" (after a breach)


@dataclass(slots=True, eq=False)
class WatchedInvocation:
    invoke_id: str
    wave: str
    dispatched_at: float
    instances: dict[str, Watched] = field(default_factory=dict)
    listed: bool = False
    # When a poll last saw one of its instances change state (dispatch at first): how
    # long it has been quiet sets the next poll (`_cadence.py`).
    changed_at: float = math.nan

    def __post_init__(self) -> None:
        if math.isnan(self.changed_at):
            self.changed_at = self.dispatched_at

    def all_done(self) -> bool:
        return all(watched.done for watched in self.instances.values())


def outcome_for(instance: Watched, status: S, error_code: str, *, periodic: bool) -> Outcome:
    """The outcome of a watched instance that ended (or was given up on) in `status`."""
    if instance.stop_kind == "breach":
        # Stopped by us after a breach: never counts. Not confirmed → still STOPPED
        # (requested); ended on its own first → what it reached.
        if not is_done(status, periodic=periodic):
            return Outcome.STOPPED
        return outcome_of(status, error_code)
    stopped = instance.stop_requested_at is not None
    return outcome_of(status, error_code, delivery_stopped=stopped)


def final_result(
    watched: WatchedInvocation,
    instance: Watched,
    record: Record | None,
    *,
    periodic: bool,
    delivery_timeout: float,
    stop_grace: float,
    missing: bool = False,
) -> InstanceResult:
    """The final result of one instance from its last listed state and its record."""
    item = instance.last
    if item is not None and is_done(item.status, periodic=periodic):
        status = item.status
    elif record is not None:
        status = record.status
    else:
        status = item.status if item is not None else S.PENDING
    source = record if record is not None else item
    error_code = source.error_code if source is not None else ""
    error_info = source.error_info if source is not None else ""
    outcome = outcome_for(instance, status, error_code, periodic=periodic)
    delivery_stopped = instance.stop_kind == "delivery"
    if instance.stop_kind == "breach" and outcome is Outcome.STOPPED:
        if not is_done(status, periodic=periodic):
            error_code = "StopNotConfirmed"
            error_info = (
                f"StopInvocation sent after the wave breached; not confirmed within "
                f"{stop_grace:g} s"
            )
        else:
            error_info = error_info or "stopped after the wave breached (StopInvocation)"
    elif missing:
        error_code = "InvocationNotFound"
        error_info = (
            f"RunCommand accepted it, but it was never listed within {delivery_timeout:g} s"
        )
    elif delivery_stopped and outcome is Outcome.UNDELIVERED and not error_code:
        error_code = "DeliveryTimeout"
        error_info = f"still Pending {delivery_timeout:g} s after dispatch: StopInvocation sent"
    output, dropped = bound_output(record.output if record is not None else "")
    return InstanceResult(
        instance.instance.instance_id,
        outcome,
        wave=watched.wave,
        zone_id=instance.instance.zone_id,
        invoke_id=watched.invoke_id,
        status=status.value,
        exit_code=source.exit_code if source is not None else None,
        error_code=error_code,
        error_info=error_info,
        start_time=(record.start_time if record else None) or (item.start_time if item else None),
        finish_time=(record.finish_time if record else None)
        or (item.finish_time if item else None),
        output=output,
        output_dropped=dropped + (source.dropped if source is not None else 0),
    )
