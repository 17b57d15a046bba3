"""Tracking: every dispatched instance's state, in as few Describe calls as the API allows.

One shared poll serves every batch in flight: DescribeInvocations filtered by the run's
tag (50 invocations per page, no output) gives the per-instance state of up to 2,500
instances per call, and paging stops as soon as every invocation still awaited was seen
(the API lists newest first, and the newest are the ones still running). When all the
instances of an invocation are done, its DescribeInvocationResults pages are read once,
for the output. Polls start 1 s after new work and back off to 10 s while nothing changes,
on the injected Clock; a new batch cuts a long wait short.

Eventual consistency: an invocation not listed yet is pending, not failed, until the
delivery deadline. The delivery deadline (`limits.delivery_timeout`, from dispatch): an
instance still Pending past it is stopped (StopInvocation) and, unless it turns out to
have started after all, ends UNDELIVERED; an instance whose stop is not confirmed within
`stop_grace` is given up on. Commands that repeat (any RepeatMode but Once) are done once
`Scheduled`: the schedule is in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, cast

import anyio
import structlog

from orchestrator.ecs.codes import InstanceInvocationStatus as S
from orchestrator.errors import ApiError, OrchestratorError
from orchestrator.rollout._dispatcher import RUN_TAG_KEY
from orchestrator.rollout._outcome import bound_output, is_done, outcome_of
from orchestrator.rollout._results import InstanceResult, Outcome

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Sequence
    from datetime import datetime

    from orchestrator.clock import Clock
    from orchestrator.ecs import EcsClient, Instance, Invocation, InvocationInstance
    from orchestrator.ecs import InvocationResult as Record
    from orchestrator.rollout._capacity import ExecutionSlots
    from orchestrator.rollout._ledger import RunLedger

POLL_MIN: Final = 1.0
POLL_MAX: Final = 10.0
STOP_GRACE: Final = 60.0
# Polls in a row that may fail with a transient error (after the client's own retries)
# before tracking gives up.
MAX_FAILED_POLLS: Final = 10

_log = structlog.get_logger(__name__)


@dataclass(slots=True, eq=False)
class _Watched:
    """One instance of one invocation."""

    instance: Instance
    last: InvocationInstance | None = None
    done: bool = False  # a final state was seen, or we gave up on it
    released: bool = False  # its execution slot was given back
    stop_requested_at: float | None = None


@dataclass(slots=True, eq=False)
class _WatchedInvocation:
    invoke_id: str
    wave: str
    dispatched_at: float
    instances: dict[str, _Watched] = field(default_factory=dict)
    listed: bool = False

    def all_done(self) -> bool:
        return all(watched.done for watched in self.instances.values())


class InvocationTracker:
    """Follows the invocations of one run to their end; `track()` runs once per wave."""

    def __init__(
        self,
        client: EcsClient,
        *,
        run_id: str,
        clock: Clock,
        slots: ExecutionSlots,
        ledger: RunLedger,
        periodic: bool,
        delivery_timeout: float,
        poll_min: float = POLL_MIN,
        poll_max: float = POLL_MAX,
        stop_grace: float = STOP_GRACE,
    ) -> None:
        self._client = client
        self._run_id = run_id
        self._clock = clock
        self._slots = slots
        self._ledger = ledger
        self._periodic = periodic
        self._delivery_timeout = delivery_timeout
        self._poll_min = poll_min
        self._poll_max = poll_max
        self._stop_grace = stop_grace
        self._active: dict[str, _WatchedInvocation] = {}
        self._dispatch_done = False
        self._fresh = False  # new work since the last poll
        self._wake = anyio.Event()
        self._nap_scope: anyio.CancelScope | None = None
        self._nap_until = 0.0

    # --- what the dispatcher tells us -----------------------------------------------

    def watch(self, invoke_id: str, wave: str, instances: Sequence[Instance]) -> None:
        """Follow a freshly accepted invocation."""
        self._active[invoke_id] = _WatchedInvocation(
            invoke_id,
            wave,
            self._clock.monotonic(),
            {instance.instance_id: _Watched(instance) for instance in instances},
        )
        self._fresh = True
        self._poke()

    def begin_wave(self) -> None:
        """A wave starts: dispatch is under way again."""
        self._dispatch_done = False

    def dispatch_finished(self) -> None:
        """No more invocations will come in this wave."""
        self._dispatch_done = True
        self._poke()

    def _poke(self) -> None:
        self._wake.set()
        # A long nap is cut short so that new work is first polled `poll_min` after it.
        if self._nap_scope is not None and (
            self._nap_until > self._clock.monotonic() + self._poll_min
        ):
            self._nap_scope.cancel()

    # --- the loop ---------------------------------------------------------------------

    async def track(self) -> None:
        """Poll until dispatch has finished and every watched invocation is settled."""
        interval, failed = self._poll_min, 0
        while True:
            if not self._active:
                if self._dispatch_done:
                    return
                self._wake = anyio.Event()
                await self._wake.wait()
                interval = self._poll_min
                continue
            if not await self._nap(min(interval, self._until_deadline())):
                interval = self._poll_min  # woken by new work: poll it soon
                continue
            self._fresh = False
            try:
                changed = await self._poll()
                failed = 0
            except OrchestratorError as error:
                failed += 1
                _log.warning(
                    "rollout.poll_failed", run_id=self._run_id, failed=failed, error=str(error)
                )
                if not error.retryable or failed >= MAX_FAILED_POLLS:
                    raise
                changed = False
            fresh = changed or self._fresh
            interval = self._poll_min if fresh else min(interval * 2, self._poll_max)

    async def _nap(self, seconds: float) -> bool:
        """Sleep on the clock; False when new work cut the nap short."""
        with anyio.CancelScope() as scope:
            self._nap_scope, self._nap_until = scope, self._clock.monotonic() + seconds
            try:
                await self._clock.sleep(seconds)
            finally:
                self._nap_scope = None
        return not scope.cancelled_caught

    def _until_deadline(self) -> float:
        """Seconds to the next delivery or stop deadline (so a nap never oversleeps it)."""
        now = self._clock.monotonic()
        deadlines = [self._poll_max + now]
        for invocation in self._active.values():
            for watched in invocation.instances.values():
                if watched.done:
                    continue
                if watched.stop_requested_at is not None:
                    deadlines.append(watched.stop_requested_at + self._stop_grace)
                elif watched.last is None or watched.last.status is S.PENDING:
                    deadlines.append(invocation.dispatched_at + self._delivery_timeout)
        return max(min(deadlines) - now, 0.0)

    async def _poll(self) -> bool:
        """One round: list states, apply deadlines, read finished outputs. Changed?"""
        awaited = {iid for iid, inv in self._active.items() if not inv.all_done()}
        changed = False
        complete = True
        if awaited:
            seen: set[str] = set()
            listing = cast(
                "AsyncGenerator[Invocation, None]",
                self._client.describe_invocations(tags={RUN_TAG_KEY: self._run_id}),
            )
            try:
                async for invocation in listing:
                    watched = self._active.get(invocation.invoke_id)
                    if watched is None:
                        continue
                    seen.add(invocation.invoke_id)
                    changed |= self._update(watched, invocation)
                    if awaited <= seen:
                        complete = False  # the rest are settled ones: no need to page on
                        break
            finally:
                await listing.aclose()
            if complete:
                changed |= self._not_listed(awaited - seen)
        changed |= await self._enforce_deadlines()
        changed |= await self._collect_results()
        return changed

    def _update(self, watched: _WatchedInvocation, invocation: Invocation) -> bool:
        watched.listed = True
        changed = False
        for item in invocation.instances:
            instance = watched.instances.get(item.instance_id)
            if instance is None or instance.done:
                continue
            changed |= instance.last is None or instance.last.status is not item.status
            instance.last = item
            if is_done(item.status, periodic=self._periodic):
                instance.done = True
                self._release(instance)
        return changed

    def _not_listed(self, invoke_ids: set[str]) -> bool:
        """Invocations the complete listing did not show: pending until the deadline."""
        now = self._clock.monotonic()
        changed = False
        for invoke_id in invoke_ids:
            watched = self._active[invoke_id]
            if watched.listed or now - watched.dispatched_at < self._delivery_timeout:
                continue
            for instance in watched.instances.values():
                self._release(instance)
                self._ledger.record(
                    self._result(watched, instance, None, missing=True),
                )
            del self._active[invoke_id]
            changed = True
        return changed

    async def _enforce_deadlines(self) -> bool:
        now = self._clock.monotonic()
        changed = False
        for watched in list(self._active.values()):
            if not watched.listed:
                continue
            overdue = [
                instance
                for instance in watched.instances.values()
                if not instance.done
                and instance.stop_requested_at is None
                and (instance.last is None or instance.last.status is S.PENDING)
                and now - watched.dispatched_at >= self._delivery_timeout
            ]
            if overdue:
                try:
                    await self._client.stop_invocation(
                        watched.invoke_id, [i.instance.instance_id for i in overdue]
                    )
                except ApiError as error:
                    if error.retryable:
                        raise
                    # e.g. it ended meanwhile: the next listing tells how.
                for instance in overdue:
                    instance.stop_requested_at = now
                    self._release(instance)
                changed = True
            for instance in watched.instances.values():
                since = instance.stop_requested_at
                if not instance.done and since is not None and now - since >= self._stop_grace:
                    instance.done = True  # the stop was never confirmed: give up
                    changed = True
        return changed

    async def _collect_results(self) -> bool:
        changed = False
        for watched in list(self._active.values()):
            if not watched.all_done():
                continue
            records = {
                record.instance_id: record
                async for record in self._client.describe_invocation_results(
                    invoke_id=watched.invoke_id
                )
            }
            for instance in watched.instances.values():
                record = records.get(instance.instance.instance_id)
                self._ledger.record(self._result(watched, instance, record))
            del self._active[watched.invoke_id]
            changed = True
        return changed

    def _release(self, instance: _Watched) -> None:
        if not instance.released:
            instance.released = True
            self._slots.release(1)

    def _result(
        self,
        watched: _WatchedInvocation,
        instance: _Watched,
        record: Record | None,
        *,
        missing: bool = False,
    ) -> InstanceResult:
        """The final result of one instance from its last listed state and its record."""
        item = instance.last
        if item is not None and is_done(item.status, periodic=self._periodic):
            status = item.status
        elif record is not None:
            status = record.status
        else:
            status = item.status if item is not None else S.PENDING
        source = record if record is not None else item
        stopped = instance.stop_requested_at is not None
        outcome = outcome_of(status, source.error_code if source else "", delivery_stopped=stopped)
        error_code = source.error_code if source is not None else ""
        error_info = source.error_info if source is not None else ""
        if missing:
            error_code = "InvocationNotFound"
            error_info = (
                f"RunCommand accepted it, but it was never listed within "
                f"{self._delivery_timeout:g} s"
            )
        elif stopped and outcome is Outcome.UNDELIVERED and not error_code:
            error_code = "DeliveryTimeout"
            error_info = (
                f"still Pending {self._delivery_timeout:g} s after dispatch: StopInvocation sent"
            )
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
            start_time=(record.start_time if record else None)
            or (item.start_time if item else None),
            finish_time=(record.finish_time if record else None)
            or (item.finish_time if item else None),
            output=output,
            output_dropped=dropped + (source.dropped if source is not None else 0),
        )


def _first(*moments: datetime | None) -> datetime | None:
    """The first time that is known."""
    return next((moment for moment in moments if moment), None)
