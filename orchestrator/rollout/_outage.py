"""Riding out an API outage while tracking: until when, how often to try, what is logged.

A poll that fails with a retryable error after the client's own retries (throttling,
5xx, no answer) does not end tracking while any watched command may still be running:
the latest of its dispatch + `delivery_timeout` (the latest it may start) + the command's
`timeout` (the agent kills it then) + a slack of `delivery_timeout` capped at
`stop_grace`, for the final state to reach the API (the same way in as the command went
out); an instance asked to stop: its stop + `stop_grace`. Giving up earlier helps nobody:
the commands go on whether we look or not. Past that moment, or at once on an error no
retry can cure (credentials revoked, access denied), `TrackingAbandoned` is raised.
Between failed polls: a full-jitter backoff up to `OUTAGE_NAP_MAX`, on the run's clock.
Failed polls are logged at a bounded rate: the first, then one line per `LOG_EVERY`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import structlog

from orchestrator.ecs import error_code_of
from orchestrator.errors import TrackingAbandoned

if TYPE_CHECKING:
    import random
    from collections.abc import Iterable

    from orchestrator.errors import OrchestratorError
    from orchestrator.rollout._watch import WatchedInvocation

# Between polls that fail: a full-jitter backoff from `poll_min` doubling up to this cap,
# so a throttled endpoint is not hammered and a recovered one is seen soon.
OUTAGE_NAP_MAX: Final = 30.0
LOG_EVERY: Final = 60.0  # seconds of the run's clock between two lines about one outage

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Deadlines:
    """The timings that bound how long a watched command may still run."""

    delivery_timeout: float
    command_timeout: float
    stop_grace: float

    def give_up_at(self, invocations: Iterable[WatchedInvocation]) -> float:
        """The moment (on the clock) after which none of `invocations` can still run."""
        slack = min(self.delivery_timeout, self.stop_grace)
        latest = -math.inf  # nothing watched: nothing to wait for
        for invocation in invocations:
            ends = invocation.dispatched_at + self.delivery_timeout + self.command_timeout
            latest = max(latest, ends + slack)
            for watched in invocation.instances.values():
                if watched.stop_requested_at is not None:
                    latest = max(latest, watched.stop_requested_at + self.stop_grace)
        return latest


@dataclass(slots=True)
class Outage:
    """Polls failing in a row: since when (on the clock), how many, when last logged."""

    run_id: str
    since: float
    failed: int = 0
    logged_at: float | None = None

    def poll_failed(self, error: OrchestratorError, *, now: float, give_up_at: float) -> None:
        """Count and log the failed poll (at a bounded rate); raise `TrackingAbandoned`
        when tracking must give up."""
        self.failed += 1
        seconds = now - self.since
        if not error.retryable:
            raise TrackingAbandoned(
                f"tracking stopped: {error} (no retry can help; the commands may still be running)",
                cause=error,
            ) from error
        if now >= give_up_at:
            raise TrackingAbandoned(
                f"tracking gave up after {self.failed} failed polls in {seconds:.0f} s, "
                f"past the moment every command must have ended: {error}",
                cause=error,
            ) from error
        if self.logged_at is None or now - self.logged_at >= LOG_EVERY:
            self.logged_at = now
            _log.warning(
                "rollout.poll_failed",
                run_id=self.run_id,
                failed=self.failed,
                seconds=round(seconds, 1),
                gives_up_in=round(give_up_at - now, 1),
                code=error_code_of(error),
                error=str(error),
            )

    def nap(self, rng: random.Random, *, poll_min: float, now: float, give_up_at: float) -> float:
        """Full jitter over a doubling cap, never past the moment of giving up (so the
        last try comes right then)."""
        cap = min(OUTAGE_NAP_MAX, poll_min * 2 ** min(self.failed, 16))
        nap = rng.uniform(poll_min, max(cap, poll_min))
        return max(min(nap, give_up_at - now), 0.0)

    def recovered(self, now: float) -> None:
        _log.info(
            "rollout.poll_recovered",
            run_id=self.run_id,
            failed=self.failed,
            seconds=round(now - self.since, 1),
        )
