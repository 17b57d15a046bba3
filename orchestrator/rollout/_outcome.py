"""Pure rules of tracking: the API's per-instance state → our `Outcome`, and bounded output.

`outcome_of` is the one place that decides what an instance's final API state means
(design.md, semantics 1): it ran and succeeded, it ran and failed, it never ran
(undelivered), or it was stopped. `bound_output` keeps the head and the tail of what an
instance printed within a fixed budget, so 100,000 results fit in memory.
"""

from __future__ import annotations

import enum
from typing import Final

from orchestrator.api import InstanceInvocationStatus as S


class Outcome(enum.StrEnum):
    """How one instance's part in a run ended: exactly one of these, with a reason."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNDELIVERED = "undelivered"
    STOPPED = "stopped"
    SKIPPED = "skipped"
    NOT_SENT = "not_sent"


# Per-instance ErrorCodes saying the command never started on the instance, whatever the
# status says (e.g. Failed + ClientNeedUpgrade): the agent was unreachable, too old, or
# the instance was gone. `DeliveryTimeout` is also the code we give our own deadline.
UNDELIVERED_CODES: Final = frozenset(
    {
        "ClientNotRunning",
        "ClientNotResponse",
        "ClientIsUpgrading",
        "ClientNeedUpgrade",
        "DeliveryTimeout",
        "InstanceNotRunning",
        "InstanceNotExists",
        "InstanceReleased",
    }
)
# Periodic and reboot-triggered commands (anything but Once) never end by themselves:
# for them `Scheduled` means done — the schedule is in place on the instance.
PERIODIC_MODES: Final = frozenset({"Period", "NextRebootOnly", "EveryReboot"})

OUTPUT_HEAD_BYTES: Final = 1024
OUTPUT_TAIL_BYTES: Final = 3 * 1024


def is_done(status: S, *, periodic: bool) -> bool:
    """Whether tracking of an instance in `status` is over."""
    return status.terminal or (periodic and status is S.SCHEDULED)


def outcome_of(status: S, error_code: str = "", *, delivery_stopped: bool = False) -> Outcome:
    """The outcome of an instance whose tracking is over.

    `delivery_stopped`: we stopped it ourselves because it was still Pending at the
    delivery deadline, so a `Cancelled` means it never ran.
    """
    if error_code in UNDELIVERED_CODES or status is S.ABORTED:
        return Outcome.UNDELIVERED
    if status is S.CANCELLED:
        return Outcome.UNDELIVERED if delivery_stopped else Outcome.STOPPED
    if status in {S.SUCCESS, S.SCHEDULED}:
        return Outcome.SUCCEEDED
    if status is S.TERMINATED:
        return Outcome.STOPPED
    if status in {S.FAILED, S.TIMEOUT, S.ERROR, S.INVALID}:
        return Outcome.FAILED
    # Still active when we gave up on it (only after our own StopInvocation): Pending
    # never ran; Running/Stopping ran and was asked to stop.
    if status is S.PENDING:
        return Outcome.UNDELIVERED
    return Outcome.STOPPED if delivery_stopped else Outcome.FAILED


def bound_output(
    text: str, *, head: int = OUTPUT_HEAD_BYTES, tail: int = OUTPUT_TAIL_BYTES
) -> tuple[str, int]:
    """`text` cut to its first `head` and last `tail` bytes (UTF-8), with the number of
    bytes left out. A marker line between the two says how much is missing."""
    data = text.encode()
    if len(data) <= head + tail:
        return text, 0
    dropped = len(data) - head - tail
    # A cut may split a character: the broken bytes at the edges are dropped too.
    first = data[:head].decode(errors="ignore")
    last = data[len(data) - tail :].decode(errors="ignore")
    return f"{first}\n[... {dropped} bytes dropped ...]\n{last}", dropped
