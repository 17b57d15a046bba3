"""Dispatch: one RunCommand per batch, under the concurrency cap, exactly once.

Batches go out in order. Each first takes its instances' execution slots (waiting for
the tracker to report completions), then a sender (a few RunCommands may be in the air at
once; the client's rate limiter paces them). Every RunCommand carries a ClientToken
derived from (run, wave, batch, split path), the run's tag and the plan's (`_guard.py`:
other runs of the plan look for them), and `before_dispatch` is
awaited before it is sent (the journal records the token there). Transient faults are
retried by the client with that token; a RunCommand that still has no answer is sent
again, same token, a few rounds more.

A batch refused because of one of its instances (InvalidInstance.*) is split in halves,
each with its own derived token, recursively, until the offending instances stand alone:
they end SKIPPED with the API's code and message, the rest run. Any other refusal
(Invocation.ExceedQuota mid-run, auth, validation, IdempotentParameterMismatch) halts
dispatch: nothing more is sent, what was already accepted is still tracked to its end.

A gate breach calls `stop(halt)`: from that moment no batch starts. Batches waiting for
execution slots or a sender are cancelled where they wait, and a batch that gets its turn
re-checks the halt right before it is handed to the client. A RunCommand already handed
to the client runs to its answer, because cancelling it half-way could leave an
invocation that ran but that we could neither track nor stop; its invocation is then
tracked (and stopped, with `stop_in_flight`). The verify step uses a dispatcher of its
own, whose tokens are derived from `token_key` (the run id and "verify").

Resuming (`history`, from the journal): a token whose answer is known is never sent
again: an accepted one is followed by its InvokeId (its instances take their slots at
once: they may be running), a split one is replayed half by half, a rejected one stays
SKIPPED. A token with no known answer is sent again, same token, same request: the API
answers with the original invocation if there was one, so nothing runs twice. Every
answer becomes an event (`BatchDispatched`, `BatchRefused`), which the journal records.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

import anyio
import structlog

from orchestrator.ecs import Instance, RunCommandRequest, RunCommandResult
from orchestrator.errors import (
    ApiError,
    IdempotencyMismatch,
    OrchestratorError,
    Throttled,
    Withdrawn,
)
from orchestrator.rollout._batches import client_token
from orchestrator.rollout._events import (
    BatchDispatched,
    BatchRefused,
    EventSink,
    InstanceRejected,
)
from orchestrator.rollout._history import NO_HISTORY, BatchState, RecordedBatch, RunHistory
from orchestrator.rollout._outcome import Outcome
from orchestrator.rollout._results import Halt, InstanceResult
from orchestrator.rollout._tags import RUN_TAG_KEY

if TYPE_CHECKING:
    from collections.abc import Sequence

    from anyio.abc import TaskGroup

    from orchestrator.clock import Clock
    from orchestrator.ecs import EcsClient
    from orchestrator.plan._model import Command
    from orchestrator.rollout._batches import Batch, WavePlan
    from orchestrator.rollout._capacity import ExecutionSlots
    from orchestrator.rollout._guard import PlanIdentity
    from orchestrator.rollout._ledger import RunLedger
    from orchestrator.rollout._tracker import InvocationTracker

# RunCommands in the air at once. The rate limiter paces every send, so this only has to
# keep slow answers from starving it: two seconds' worth of calls at the configured
# RunCommand rate, at least 4 (docs/performance.md: with a fixed 4, a p99 answer of
# 300 ms already holds dispatch below the bound). A breach still stops dispatch at once:
# each send re-checks the halt after its rate-limit wait, before it leaves.
PARALLEL_SENDS: Final = 4
SEND_WINDOW_SECONDS: Final = 2.0


def parallel_sends(rate: float | None) -> int:
    """How many RunCommands may be in the air at `rate` per second."""
    return max(PARALLEL_SENDS, math.ceil((rate or 0.0) * SEND_WINDOW_SECONDS))


# After the client's own retries gave up on a transient fault, send again this many
# times (same token, so never twice), pausing in between.
SEND_ROUNDS: Final = 4
ROUND_PAUSE: Final = 5.0

# Recorded states a resume acts on without sending: the answer is known.
_FOLLOWED: Final = frozenset({BatchState.ACCEPTED, BatchState.SPLIT, BatchState.REJECTED})

_log = structlog.get_logger(__name__)


def names_an_instance(code: str) -> bool:
    """Whether a RunCommand error code is about one of the instances named in the call.

    InvalidInstance.NotFound / .NotMatch are the documented ones; the prefixes also catch
    InvalidInstanceId.*, IncorrectInstanceStatus and InstanceNotRunning (unconfirmed for
    RunCommand, but they can only mean an instance problem).
    """
    return code.startswith(
        ("InvalidInstance.", "InvalidInstanceId.", "IncorrectInstanceStatus", "InstanceNotRunning")
    )


@dataclass(frozen=True, slots=True)
class BatchAttempt:
    """One RunCommand about to be sent (what `before_dispatch` sees)."""

    run_id: str
    wave: int
    batch: int
    split_path: str
    client_token: str
    instance_ids: tuple[str, ...]
    purpose: str = "run"  # "run": the plan's command; "verify": a wave's verify command


class BeforeDispatch(Protocol):
    """Awaited before each RunCommand (a distinct token), never before a mere retry."""

    async def __call__(self, attempt: BatchAttempt) -> None: ...


def build_request(
    command: Command,
    instance_ids: Sequence[str],
    *,
    token: str,
    run_id: str,
    plan: PlanIdentity | None = None,
) -> RunCommandRequest:
    """The RunCommand of one batch: the plan's command, Base64 content, the run's tag and
    the plan's (`plan`: its name and digest, which the API guard of other runs reads)."""
    return RunCommandRequest(
        type=command.type,
        content=base64.b64encode(command.content.encode()).decode("ascii"),
        content_encoding="Base64",
        instance_ids=tuple(instance_ids),
        name=command.name or None,
        description=command.description or None,
        working_dir=command.working_dir,
        timeout=command.timeout,
        parameters=command.parameters,
        enable_parameter=command.parameters_enabled,
        repeat_mode=command.repeat_mode,
        frequency=command.frequency,
        keep_command=command.keep_command,
        username=command.username,
        windows_password_name=command.windows_password_name,
        tags={**command.tags, **(plan.tags() if plan is not None else {}), RUN_TAG_KEY: run_id},
        container_id=command.container_id,
        container_name=command.container_name,
        client_token=token,
        launcher=command.launcher,
        termination_mode=command.termination_mode,
    )


class Dispatcher:
    """Sends the batches of one run's waves; `halt` says why it stopped early, if it did."""

    def __init__(
        self,
        client: EcsClient,
        command: Command,
        *,
        run_id: str,
        clock: Clock,
        slots: ExecutionSlots,
        tracker: InvocationTracker,
        ledger: RunLedger,
        sink: EventSink,
        before_dispatch: BeforeDispatch,
        token_key: str | None = None,
        purpose: str = "run",
        history: RunHistory = NO_HISTORY,
        plan: PlanIdentity | None = None,
    ) -> None:
        self._client = client
        self._command = command
        self._plan = plan
        self._run_id = run_id
        self._clock = clock
        self._slots = slots
        self._tracker = tracker
        self._ledger = ledger
        self._sink = sink
        self._before_dispatch = before_dispatch
        self._token_key = token_key if token_key is not None else run_id
        self._purpose = purpose
        self._history = history
        self._waiting: anyio.CancelScope | None = None
        self.halt: Halt | None = None
        self.stopped_zones: set[str] = set()  # zone budgets broken: none of theirs is sent

    def stop(self, halt: Halt) -> None:
        """Stop dispatching at once (a gate breached): no batch starts from now on."""
        if self.halt is None:
            self.halt = halt
        if self._waiting is not None:
            self._waiting.cancel()

    def stop_zone(self, zone: str) -> None:
        """Send nothing more to `zone` (its `max_errors_per_zone` broke); the other zones
        go on. Batches then hold one zone each (`_zone_batches.py`), so whole batches
        are left out and no RunCommand's InstanceId list ever changes."""
        self.stopped_zones.add(zone)

    def _zone_stopped(self, instances: Sequence[Instance]) -> bool:
        return any(instance.zone_id in self.stopped_zones for instance in instances)

    def _proceed(self) -> bool:
        """Asked by the client just before a RunCommand leaves: not after a halt."""
        return self.halt is None

    def _halted(self) -> bool:
        # A method, not the attribute: the halt can change at any await.
        return self.halt is not None

    async def dispatch(self, wave: WavePlan) -> None:
        """Send every batch of `wave` (or up to a halt); returns once all were answered."""
        limiter = self._client.rate_limiter
        rate = limiter.stats().configured.get("RunCommand") if limiter is not None else None
        senders = anyio.Semaphore(parallel_sends(rate))
        started = 0
        async with anyio.create_task_group() as group:
            # Only the waits are cancelled by `stop`; batches already sent finish.
            with anyio.CancelScope() as self._waiting:
                for batch in wave.batches:
                    if self.halt is not None:
                        break
                    if self._recorded(batch):
                        self._follow_recorded(group, wave.name, batch)
                        started += 1
                        continue
                    if self._zone_stopped(batch.instances):
                        started += 1  # never sent: it ends NOT_SENT, naming its zone
                        continue
                    await self._slots.acquire(batch.instances)
                    try:
                        await senders.acquire()
                    except BaseException:
                        self._slots.release(batch.instances)
                        raise
                    if self._halted():  # stopped while this batch waited
                        senders.release()
                        self._slots.release(batch.instances)
                        break
                    group.start_soon(self._send_batch, wave.name, batch, senders)
                    started += 1
            self._waiting = None
            # After a halt, what an earlier attempt of the run sent is still followed.
            for batch in wave.batches[started:]:
                if self._recorded(batch):
                    self._follow_recorded(group, wave.name, batch)

    def _recorded(self, batch: Batch) -> bool:
        """Whether an earlier attempt of the run sent this batch (or its halves)."""
        token = client_token(self._token_key, batch.wave, batch.index, "")
        return self._history.batch(token) is not None

    def _follow_recorded(self, group: TaskGroup, wave_name: str, batch: Batch) -> None:
        # Its instances may be running already: they take their slots without waiting
        # (they do occupy them), and what was never answered is sent again only if no
        # halt came (`_send` checks).
        self._slots.take(batch.instances)
        group.start_soon(self._send, wave_name, batch, batch.instances, "")

    async def _send_batch(self, wave_name: str, batch: Batch, senders: anyio.Semaphore) -> None:
        try:
            await self._send(wave_name, batch, batch.instances, "")
        finally:
            senders.release()

    async def _send(
        self, wave_name: str, batch: Batch, instances: Sequence[Instance], path: str
    ) -> None:
        ids = tuple(instance.instance_id for instance in instances)
        token = client_token(self._token_key, batch.wave, batch.index, path)
        recorded = self._history.batch(token)
        if recorded is not None and recorded.state in _FOLLOWED:
            await self._replay(wave_name, batch, instances, path, recorded)
            return
        if self.halt is not None or self._zone_stopped(instances):
            self._slots.release(instances)
            if recorded is not None and recorded.state is BatchState.SENDING:
                self._ledger.sending(ids)  # an earlier attempt's answer is unknown: it may run
            return
        attempt = BatchAttempt(
            self._run_id, batch.wave, batch.index, path, token, ids, self._purpose
        )
        await self._before_dispatch(attempt)
        if self._halted() or self._zone_stopped(instances):  # a breach while journaling
            self._slots.release(instances)
            self._refused(attempt, BatchState.WITHDRAWN, "Halted", "a halt came first")
            return
        request = build_request(
            self._command, ids, token=token, run_id=self._run_id, plan=self._plan
        )
        self._ledger.sending(ids)
        try:
            result = await self._run_command(request)
        except ApiError as error:
            await self._refusal(wave_name, batch, instances, attempt, error)
            return
        except Withdrawn:
            # A halt came while it waited for its rate-limit token: nothing was sent.
            self._ledger.answered(ids, accepted=False)
            self._slots.release(instances)
            self._refused(attempt, BatchState.WITHDRAWN, "Halted", "a halt came first")
            return
        except OrchestratorError as error:
            # No answer even after every round: the command may have run. The instances
            # stay "in flight" (a resume re-sends the same token and finds out).
            self._stop(error, instances, answered=False)
            return
        self._accepted(wave_name, batch, instances, path, result.invoke_id)

    def _accepted(
        self,
        wave_name: str,
        batch: Batch,
        instances: Sequence[Instance],
        path: str,
        invoke_id: str,
    ) -> None:
        """RunCommand answered `invoke_id`: follow the instances with no result yet."""
        token = client_token(self._token_key, batch.wave, batch.index, path)
        ids = tuple(instance.instance_id for instance in instances)
        waiting = [i for i in instances if i.instance_id not in self._ledger.results]
        self._slots.release([i for i in instances if i.instance_id in self._ledger.results])
        self._ledger.answered(ids, accepted=True)
        if waiting:
            self._tracker.watch(invoke_id, wave_name, waiting)
        self._sink(
            BatchDispatched(batch.wave, batch.index, path, token, invoke_id, ids, self._clock.now())
        )

    async def _refusal(
        self,
        wave_name: str,
        batch: Batch,
        instances: Sequence[Instance],
        attempt: BatchAttempt,
        error: ApiError,
    ) -> None:
        """RunCommand answered with an error: split, reject, or halt."""
        if error.retryable and not isinstance(error, Throttled):
            # A 5xx or IdempotentProcessing to the last: it may have been carried out.
            self._stop(error, instances, answered=False)
            return
        self._ledger.answered(attempt.instance_ids, accepted=False)
        if not names_an_instance(error.code):
            self._refused(attempt, BatchState.REFUSED, error.code, error.message)
            self._stop(error, instances)
        elif len(instances) == 1:
            self._refused(attempt, BatchState.REJECTED, error.code, error.message)
            self._reject(batch.wave, wave_name, instances[0], error.code, error.message)
        else:
            self._refused(attempt, BatchState.SPLIT, error.code, error.message)
            await self._halves(wave_name, batch, instances, attempt.split_path)

    async def _replay(
        self,
        wave_name: str,
        batch: Batch,
        instances: Sequence[Instance],
        path: str,
        recorded: RecordedBatch,
    ) -> None:
        """A token an earlier attempt of the run sent and got an answer for."""
        if recorded.state is BatchState.ACCEPTED:
            # Never sent again: its invocation is followed by its InvokeId.
            self._accepted(wave_name, batch, instances, path, recorded.invoke_id)
        elif recorded.state is BatchState.SPLIT:
            # The recorded halves, never the whole batch again: refused once because of
            # one instance, it could be accepted now and run twice on the others.
            await self._halves(wave_name, batch, instances, path)
        elif instances[0].instance_id in self._ledger.results:
            self._slots.release(instances)
        else:  # REJECTED, and the result was not recorded before the earlier attempt ended
            self._reject(batch.wave, wave_name, instances[0], recorded.error_code, "")

    async def _halves(
        self, wave_name: str, batch: Batch, instances: Sequence[Instance], path: str
    ) -> None:
        middle = len(instances) // 2
        await self._send(wave_name, batch, instances[:middle], path + "0")
        await self._send(wave_name, batch, instances[middle:], path + "1")

    def _refused(self, attempt: BatchAttempt, state: BatchState, code: str, message: str) -> None:
        self._sink(
            BatchRefused(
                attempt.wave,
                attempt.batch,
                attempt.split_path,
                attempt.client_token,
                state,
                code,
                message,
            )
        )

    async def _run_command(self, request: RunCommandRequest) -> RunCommandResult:
        rounds = 0
        while True:
            try:
                # Only the first round may be withdrawn: a later one follows attempts that
                # were sent and may have been carried out.
                proceed = self._proceed if rounds == 0 else None
                return await self._client.run_command(request, proceed=proceed)
            except OrchestratorError as error:
                rounds += 1
                if not error.retryable or rounds >= SEND_ROUNDS or self.halt is not None:
                    raise
            await self._clock.sleep(ROUND_PAUSE)

    def _reject(
        self, wave: int, wave_name: str, instance: Instance, code: str, message: str
    ) -> None:
        self._slots.release([instance])
        self._sink(InstanceRejected(wave, instance.instance_id, code, message))
        self._ledger.record(
            InstanceResult(
                instance.instance_id,
                Outcome.SKIPPED,
                wave=wave_name,
                zone_id=instance.zone_id,
                error_code=code,
                error_info=message,
            )
        )

    def _stop(
        self, error: OrchestratorError, instances: Sequence[Instance], *, answered: bool = True
    ) -> None:
        self._slots.release(instances)
        if self.halt is not None:
            return
        code = error.code if isinstance(error, ApiError) else type(error).__name__
        message = error.message if isinstance(error, ApiError) else str(error)
        reason = "bug" if isinstance(error, IdempotencyMismatch) else "refused"
        if not answered:
            reason = "unanswered"
            message = f"RunCommand got no final answer, the batch may have run: {message}"
        self.halt = Halt(reason, code, message)
        # A token reused with other parameters means our journal and request disagree.
        log = _log.error if reason == "bug" else _log.warning
        log("rollout.dispatch_halted", run_id=self._run_id, reason=reason, code=code)
