"""When the tracker polls next: on what it knows of the invocations it still awaits.

A command's length is not known in advance, but how long an invocation has been quiet
is: a batch that changed a moment ago (dispatched, started, some instances finished) is
likely to change again soon, one quiet for 20 s is running something long. So the nap
before the next poll grows with the quiet time of the liveliest awaited invocation,
`QUIET_SHARE` of it, from `poll_min` up to `poll_max`: short commands are polled every
`poll_min`, long ones at a cost that grows with the log of their length, not with it
(30-40 s commands: ~10 polls, not 35 per batch, and one poll serves every batch).

The end of a wave is where waiting costs the operator most: once dispatch is done and
an awaited invocation changed within the last `poll_min` (its instances are settling),
polls come every `tail_poll`, so the last result is seen within that of its end, for a
handful of extra polls a wave. What the plan says bounds a nap too: it never runs past
the soonest moment the command's `timeout` can end an awaited invocation (the agent
kills it then). The delivery and stop deadlines are the tracker's (`_until_deadline`).
Pure: no I/O, no clock of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from orchestrator.rollout._watch import WatchedInvocation  # noqa: TC001 - a signature

if TYPE_CHECKING:
    from collections.abc import Iterable

QUIET_SHARE: Final = 0.5  # the nap, as a share of the time the liveliest batch was quiet
# Seconds between polls while the last batches settle. The last result is seen up to
# this long after it ends, and the whole tail (last finish to exit) is bounded at 1 s:
# 0.25 s leaves room for the listing, the last read, the journal and the reports, for a
# few more one-page polls at the end of a wave.
TAIL_POLL: Final = 0.25


def next_nap(
    awaited: Iterable[WatchedInvocation],
    *,
    now: float,
    dispatch_done: bool,
    command_timeout: float,
    poll_min: float,
    poll_max: float,
    tail_poll: float = TAIL_POLL,
) -> float:
    """Seconds until the next poll of `awaited` (the invocations not all done)."""
    quiet = float("inf")
    timeout_ends = float("inf")
    for invocation in awaited:
        quiet = min(quiet, max(now - invocation.changed_at, 0.0))
        ends = invocation.dispatched_at + command_timeout
        if ends > now:
            timeout_ends = min(timeout_ends, ends)
    if quiet == float("inf"):
        return poll_max  # nothing awaited: only new work (which cuts the nap) matters
    nap = min(max(quiet * QUIET_SHARE, poll_min), poll_max)
    if dispatch_done and quiet < poll_min:
        nap = min(nap, tail_poll)
    return max(min(nap, timeout_ends - now), 0.0)
