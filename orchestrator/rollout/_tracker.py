"""Tracking: every dispatched instance's state, in as few Describe calls as the API allows.

One shared poll serves every batch in flight: DescribeInvocations filtered by the run's
tag (50 invocations per page, no output) gives the per-instance state of up to 2,500
instances per call, and paging stops as soon as every invocation still awaited was seen
(the API lists newest first, and the newest are the ones still running). Of each
listed record only the identity and status are decoded, the rest only when the status is
new to us (`RecordNeeded`): settled records listed again cost nothing. When all the
instances of an invocation are done, its DescribeInvocationResults pages are read once,
for the output, beside the polls, several at once (`_result_reads.py`). When the next poll comes
is `_cadence.py`'s: soon after a change, later the longer the batches are quiet, every
quarter second while a finished dispatch's last batches settle, on the injected Clock; a new
batch cuts a long wait short. `track()` returns as soon as dispatch is done and nothing
is active, with no nap in between.

Eventual consistency: an invocation not listed yet is pending, not failed, until the
delivery deadline. The delivery deadline (`limits.delivery_timeout`, from dispatch): an
instance still Pending past it is stopped (StopInvocation) and, unless it turns out to
have started after all, ends UNDELIVERED; an instance whose stop is not confirmed within
`stop_grace` is given up on. Commands that repeat (any RepeatMode but Once) are done once
`Scheduled`: the schedule is in place.

After a breach (`on_breach: stop_in_flight`), `stop_all()` sends StopInvocation for every
instance of the run still running, and for any invocation accepted after that (a
RunCommand that was already in the client when the breach came); tracking goes on until
the agents confirm the stops (Terminated, Cancelled: STOPPED) or `stop_grace` passes
(STOPPED with `StopNotConfirmed`: stop requested, never confirmed). An instance that
finished on its own before the stop reached it keeps the outcome it reached.
Each final state is reported to the ledger (`settled`) before the instance's execution
slot is freed, so a gate can stop dispatch before the slot lets another batch out.

An outage (polls failing after the client's own retries) is ridden out for as long as
any watched command may still be running, then tracking gives up (`_outage.py`).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Final, cast

import anyio
import structlog

from orchestrator.api import InstanceInvocationStatus as S
from orchestrator.errors import ApiError, OrchestratorError
from orchestrator.rollout._cadence import next_nap
from orchestrator.rollout._outage import Deadlines, Outage
from orchestrator.rollout._outcome import is_done
from orchestrator.rollout._result_reads import ResultReads
from orchestrator.rollout._tags import RUN_TAG_KEY
from orchestrator.rollout._watch import Watched, WatchedInvocation, final_result, outcome_for

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Sequence

    from orchestrator.clock import Clock
    from orchestrator.ecs import EcsClient, Instance, Invocation
    from orchestrator.ecs import InvocationResult as Record
    from orchestrator.rollout._capacity import ExecutionSlots
    from orchestrator.rollout._ledger import RunLedger
    from orchestrator.rollout._results import InstanceResult

POLL_MIN: Final = 1.0
POLL_MAX: Final = 10.0
STOP_GRACE: Final = 60.0

_log = structlog.get_logger(__name__)


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
        command_timeout: float,
        poll_min: float = POLL_MIN,
        poll_max: float = POLL_MAX,
        stop_grace: float = STOP_GRACE,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._run_id = run_id
        self._clock = clock
        self._slots = slots
        self._ledger = ledger
        self._periodic = periodic
        self._delivery_timeout = delivery_timeout
        self._deadlines = Deadlines(delivery_timeout, command_timeout, stop_grace)
        # Jitter only has to differ between runs sharing an endpoint, not be secret.
        self._rng = rng if rng is not None else random.Random()  # noqa: S311
        self._poll_min = poll_min
        self._poll_max = poll_max
        self._stop_grace = stop_grace
        self._active: dict[str, WatchedInvocation] = {}
        self._dispatch_done = False
        self._wake = anyio.Event()
        self._reads = ResultReads(client, on_read=self._record_finished, on_end=self._wake_up)
        self._nap_scope: anyio.CancelScope | None = None
        self._nap_until = 0.0
        self._stop_all = False
        self._stop_zones: set[str] = set()  # zones whose budget broke: stopped from now on
        self._ended: list[Watched] = []  # seen ended by the listing under way
        self.breach_stopped: set[str] = set()  # instances sent StopInvocation after a breach
        # Told (invocations, instances) each time stops go out after a breach.
        self.on_breach_stop: Callable[[int, int], None] | None = None

    # --- what the dispatcher tells us -----------------------------------------------

    def watch(self, invoke_id: str, wave: str, instances: Sequence[Instance]) -> None:
        """Follow a freshly accepted invocation."""
        self._active[invoke_id] = WatchedInvocation(
            invoke_id,
            wave,
            self._clock.monotonic(),
            {instance.instance_id: Watched(instance) for instance in instances},
        )
        self._poke()

    def begin_wave(self) -> None:
        """A wave starts: dispatch is under way again. (A stop of everything stays in
        force: after a breach or `orchestrator stop` no wave starts, except the one a
        stop-and-resume follows to stop what an earlier attempt sent.)"""
        self._dispatch_done = False

    def dispatch_finished(self) -> None:
        """No more invocations will come in this wave."""
        self._dispatch_done = True
        self._poke()

    def running(self) -> int:
        """Instances watched whose final state is not known yet."""
        return sum(
            not watched.done
            for invocation in self._active.values()
            for watched in invocation.instances.values()
        )

    async def stop_all(self) -> tuple[int, int]:
        """A wave breached: StopInvocation for every instance still running, now and for
        any invocation accepted from now on. Returns (invocations, instances) stopped now."""
        self._stop_all = True
        return await self._stop_breached()

    def stop_zone(self, zone: str) -> None:
        """A zone crossed its `max_errors_per_zone`: its instances still running, now and
        in any invocation accepted from now on, are sent StopInvocation at the next poll
        (InstanceId.N names them: the other zones' instances run on)."""
        self._stop_zones.add(zone)
        self._poke()

    def _wake_up(self) -> None:
        self._wake.set()

    def _poke(self) -> None:
        self._wake.set()
        # A long nap is cut short so that new work is first polled `poll_min` after it.
        if self._nap_scope is not None and (
            self._nap_until > self._clock.monotonic() + self._poll_min
        ):
            self._nap_scope.cancel()

    # --- the loop ---------------------------------------------------------------------

    async def track(self) -> None:
        """Poll until dispatch has finished and every watched invocation is settled.

        Raises `TrackingAbandoned` when the API keeps failing past `give_up_at()`, or
        fails with an error no retry can cure."""
        failure: OrchestratorError | None = None
        async with self._reads.running():
            try:
                await self._follow()
            except OrchestratorError as error:
                # Raised as it is below, not wrapped in the reads' task group's.
                failure = error
                self._reads.cancel()
        if failure is not None:
            raise failure

    async def _follow(self) -> None:
        outage: Outage | None = None
        outage_nap = 0.0
        while True:
            if not self._active and self._dispatch_done:
                return
            if not self._to_poll():
                # Nothing to list: no work yet, or only reads under way, which wake us.
                self._wake = anyio.Event()
                await self._wake.wait()
                continue
            nap = outage_nap if outage is not None else self._next_nap()
            if not await self._nap(min(nap, self._until_deadline())):
                continue  # woken by new work: the next nap is reckoned with it
            try:
                failure = self._reads.take_failure()
                if failure is not None:
                    raise failure
                await self._poll()
            except OrchestratorError as error:
                now = self._clock.monotonic()
                outage = outage or Outage(self._run_id, now)
                give_up_at = self.give_up_at()
                outage.poll_failed(error, now=now, give_up_at=give_up_at)
                outage_nap = outage.nap(
                    self._rng, poll_min=self._poll_min, now=now, give_up_at=give_up_at
                )
                continue
            if outage is not None:
                outage.recovered(self._clock.monotonic())
                outage = None

    def _to_poll(self) -> bool:
        """Is there anything a poll would do: an invocation still awaited, or a finished
        one whose records are not being read (a read that failed)?"""
        return any(
            not invocation.all_done() or not self._reads.reading(invoke_id)
            for invoke_id, invocation in self._active.items()
        )

    def _next_nap(self) -> float:
        return next_nap(
            (invocation for invocation in self._active.values() if not invocation.all_done()),
            now=self._clock.monotonic(),
            dispatch_done=self._dispatch_done,
            command_timeout=self._deadlines.command_timeout,
            poll_min=self._poll_min,
            poll_max=self._poll_max,
        )

    def give_up_at(self) -> float:
        """The moment (on the clock) after which no watched command can still be running
        (`Deadlines.give_up_at`): an outage is ridden out until then."""
        return self._deadlines.give_up_at(self._active.values())

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

    async def _poll(self) -> None:
        """One round: list states, apply deadlines, read finished outputs."""
        awaited = {iid for iid, inv in self._active.items() if not inv.all_done()}
        complete = True
        if awaited:
            seen: set[str] = set()
            listing = cast(
                "AsyncGenerator[Invocation, None]",
                self._client.describe_invocations(
                    tags={RUN_TAG_KEY: self._run_id}, needed=self._needed
                ),
            )
            try:
                async for invocation in listing:
                    watched = self._active.get(invocation.invoke_id)
                    if watched is None:
                        continue
                    seen.add(invocation.invoke_id)
                    self._update(watched, invocation)
                    if awaited <= seen:
                        complete = False  # the rest are settled ones: no need to page on
                        break
            finally:
                await listing.aclose()
                self._settle_ended()
            if complete:
                self._not_listed(awaited - seen)
        await self._enforce_deadlines()
        self._collect_results()

    def _needed(self, invoke_id: str, instance_id: str, status: S) -> bool:
        """Decode this record? Only when it may tell something new: an instance still
        awaited whose status differs from the one last seen (so every `Watched.last`
        is a whole record, and a settled record listed again is not decoded again)."""
        watched = self._active.get(invoke_id)
        instance = watched.instances.get(instance_id) if watched is not None else None
        if instance is None or instance.done:
            return False
        return instance.last is None or instance.last.status is not status

    def _update(self, watched: WatchedInvocation, invocation: Invocation) -> None:
        watched.listed = True
        for item in invocation.instances:
            instance = watched.instances.get(item.instance_id)
            if instance is None or instance.done:
                continue
            if instance.last is None or instance.last.status is not item.status:
                watched.changed_at = self._clock.monotonic()
            instance.last = item
            if is_done(item.status, periodic=self._periodic):
                instance.done = True
                self._ended.append(instance)

    def _settle_ended(self) -> None:
        """Tell the ledger (and so the gate) what one listing showed ended, then free the
        slots: a breach stops dispatch before a freed slot can let the next batch out,
        and what is still running at a breach is judged on the whole listing."""
        ended, self._ended = self._ended, []
        for instance in ended:
            last = instance.last
            if last is not None:
                outcome = outcome_for(
                    instance, last.status, last.error_code, periodic=self._periodic
                )
                self._ledger.settled(instance.instance.instance_id, outcome)
        for instance in ended:
            self._release(instance)

    def _not_listed(self, invoke_ids: set[str]) -> None:
        """Invocations the complete listing did not show: pending until the deadline."""
        now = self._clock.monotonic()
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

    async def _enforce_deadlines(self) -> None:
        if self._stop_all or self._stop_zones:
            await self._stop_breached()
        now = self._clock.monotonic()
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
                await self._send_stop(watched, overdue, "delivery")
            for instance in watched.instances.values():
                since = instance.stop_requested_at
                if not instance.done and since is not None and now - since >= self._stop_grace:
                    instance.done = True  # the stop was never confirmed: give up

    async def _stop_breached(self) -> tuple[int, int]:
        invocations = instances = 0
        for watched in list(self._active.values()):
            targets = [
                instance
                for instance in watched.instances.values()
                if not instance.done
                and instance.stop_requested_at is None
                and (self._stop_all or instance.instance.zone_id in self._stop_zones)
            ]
            if not targets:
                continue
            try:
                await self._send_stop(watched, targets, "breach")
            except OrchestratorError as error:
                # Not stopped: the next poll tries again; meanwhile it is tracked as usual.
                _log.warning("rollout.breach_stop_failed", run_id=self._run_id, error=str(error))
                for instance in targets:
                    instance.stop_requested_at, instance.stop_kind = None, ""
                continue
            invocations += 1
            instances += len(targets)
            self.breach_stopped.update(i.instance.instance_id for i in targets)
        if instances and self.on_breach_stop is not None:
            self.on_breach_stop(invocations, instances)
        return invocations, instances

    async def _send_stop(
        self, watched: WatchedInvocation, instances: Sequence[Watched], kind: str
    ) -> None:
        # Marked before the call, so a poll running meanwhile does not stop them twice.
        now = self._clock.monotonic()
        watched.changed_at = now  # the stops' outcome is expected soon: poll it soon
        for instance in instances:
            instance.stop_requested_at = now
            instance.stop_kind = kind
            self._release(instance)
        try:
            await self._client.stop_invocation(
                watched.invoke_id, [i.instance.instance_id for i in instances]
            )
        except ApiError as error:
            if error.retryable:
                raise
            # e.g. it ended meanwhile: the next listing tells how.

    def _collect_results(self) -> None:
        """Start reading the records of every invocation whose instances are all done
        (`_result_reads.py`: beside the polls, several at once)."""
        for watched in self._active.values():
            if watched.all_done():
                self._reads.start(watched)

    def _record_finished(self, watched: WatchedInvocation, records: dict[str, Record]) -> None:
        for instance in watched.instances.values():
            record = records.get(instance.instance.instance_id)
            if record is not None and record.output:
                self._ledger.output(record.instance_id, watched.wave, record.output, record.dropped)
            self._ledger.record(self._result(watched, instance, record))
        del self._active[watched.invoke_id]

    def _release(self, instance: Watched) -> None:
        if not instance.released:
            instance.released = True
            self._slots.release([instance.instance])

    def _result(
        self,
        watched: WatchedInvocation,
        instance: Watched,
        record: Record | None,
        *,
        missing: bool = False,
    ) -> InstanceResult:
        return final_result(
            watched,
            instance,
            record,
            periodic=self._periodic,
            delivery_timeout=self._delivery_timeout,
            stop_grace=self._stop_grace,
            missing=missing,
        )
