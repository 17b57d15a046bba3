"""Dispatch: one RunCommand per batch, under the concurrency cap, exactly once.

Batches go out in order. Each first takes its instances' execution slots (waiting for
the tracker to report completions), then a sender (a few RunCommands may be in the air at
once; the client's rate limiter paces them). Every RunCommand carries a ClientToken
derived from (run, wave, batch, split path) and the run's tag, and `before_dispatch` is
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
from orchestrator.rollout._events import BatchDispatched, EventSink, InstanceRejected
from orchestrator.rollout._results import Halt, InstanceResult, Outcome

if TYPE_CHECKING:
    from collections.abc import Sequence

    from orchestrator.clock import Clock
    from orchestrator.ecs import EcsClient
    from orchestrator.plan._model import Command
    from orchestrator.rollout._batches import Batch, WavePlan
    from orchestrator.rollout._capacity import ExecutionSlots
    from orchestrator.rollout._ledger import RunLedger
    from orchestrator.rollout._tracker import InvocationTracker

# The tag every invocation of a run carries, so the tracker lists them in one paged call.
RUN_TAG_KEY: Final = "orchestrator-run"
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
    command: Command, instance_ids: Sequence[str], *, token: str, run_id: str
) -> RunCommandRequest:
    """The RunCommand of one batch: the plan's command, Base64 content, the run's tag."""
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
        tags={**command.tags, RUN_TAG_KEY: run_id},
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
    ) -> None:
        self._client = client
        self._command = command
        self._run_id = run_id
        self._clock = clock
        self._slots = slots
        self._tracker = tracker
        self._ledger = ledger
        self._sink = sink
        self._before_dispatch = before_dispatch
        self._token_key = token_key if token_key is not None else run_id
        self._purpose = purpose
        self._waiting: anyio.CancelScope | None = None
        self.halt: Halt | None = None

    def stop(self, halt: Halt) -> None:
        """Stop dispatching at once (a gate breached): no batch starts from now on."""
        if self.halt is None:
            self.halt = halt
        if self._waiting is not None:
            self._waiting.cancel()

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
        async with anyio.create_task_group() as group:
            # Only the waits are cancelled by `stop`; batches already sent finish.
            with anyio.CancelScope() as self._waiting:
                for batch in wave.batches:
                    if self.halt is not None:
                        break
                    await self._slots.acquire(len(batch.instances))
                    try:
                        await senders.acquire()
                    except BaseException:
                        self._slots.release(len(batch.instances))
                        raise
                    if self._halted():  # stopped while this batch waited
                        senders.release()
                        self._slots.release(len(batch.instances))
                        break
                    group.start_soon(self._send_batch, wave.name, batch, senders)
            self._waiting = None

    async def _send_batch(self, wave_name: str, batch: Batch, senders: anyio.Semaphore) -> None:
        try:
            await self._send(wave_name, batch, batch.instances, "")
        finally:
            senders.release()

    async def _send(
        self, wave_name: str, batch: Batch, instances: Sequence[Instance], path: str
    ) -> None:
        if self.halt is not None:
            self._slots.release(len(instances))
            return
        ids = tuple(instance.instance_id for instance in instances)
        token = client_token(self._token_key, batch.wave, batch.index, path)
        await self._before_dispatch(
            BatchAttempt(self._run_id, batch.wave, batch.index, path, token, ids, self._purpose)
        )
        if self._halted():  # a breach while the journal was writing
            self._slots.release(len(instances))
            return
        request = build_request(self._command, ids, token=token, run_id=self._run_id)
        self._ledger.sending(ids)
        try:
            result = await self._run_command(request)
        except ApiError as error:
            if error.retryable and not isinstance(error, Throttled):
                # A 5xx or IdempotentProcessing to the last: it may have been carried out.
                self._stop(error, instances, answered=False)
                return
            self._ledger.answered(ids, accepted=False)
            if not names_an_instance(error.code):
                self._stop(error, instances)
            elif len(instances) == 1:
                self._reject(batch.wave, wave_name, instances[0], error)
            else:
                middle = len(instances) // 2
                await self._send(wave_name, batch, instances[:middle], path + "0")
                await self._send(wave_name, batch, instances[middle:], path + "1")
            return
        except Withdrawn:
            # A halt came while it waited for its rate-limit token: nothing was sent.
            self._ledger.answered(ids, accepted=False)
            self._slots.release(len(instances))
            return
        except OrchestratorError as error:
            # No answer even after every round: the command may have run. The instances
            # stay "in flight" (a resume re-sends the same token and finds out).
            self._stop(error, instances, answered=False)
            return
        self._ledger.answered(ids, accepted=True)
        self._tracker.watch(result.invoke_id, wave_name, instances)
        self._sink(
            BatchDispatched(
                batch.wave, batch.index, path, token, result.invoke_id, ids, self._clock.now()
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

    def _reject(self, wave: int, wave_name: str, instance: Instance, error: ApiError) -> None:
        self._slots.release(1)
        self._sink(InstanceRejected(wave, instance.instance_id, error.code, error.message))
        self._ledger.record(
            InstanceResult(
                instance.instance_id,
                Outcome.SKIPPED,
                wave=wave_name,
                zone_id=instance.zone_id,
                error_code=error.code,
                error_info=error.message,
            )
        )

    def _stop(
        self, error: OrchestratorError, instances: Sequence[Instance], *, answered: bool = True
    ) -> None:
        self._slots.release(len(instances))
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
