"""Send a call again when the error says the same call may succeed later.

`retry_call` runs one attempt after another on an injected `Clock` and `random.Random`,
sleeping an exponential backoff with full jitter (AWS's "full jitter": a uniform draw
between 0 and the capped exponential) between them, and stops at whichever comes
first: the attempt limit or the time budget. Only errors whose `retryable` is True are
retried (Throttled, ServerError, IdempotentProcessing, TransportError); anything else is
raised at once. Throttling backs off from a larger base, as the legacy SDK does (CORE:
100 ms for server errors, 500 ms for `Throttling`). The attempt callable is called
afresh each time, so the caller re-signs (fresh nonce and timestamp) while sending the
very same parameters — a RunCommand retry carries the same ClientToken.

Throttling can be given more patience than the other retryable errors
(`throttle_attempts`, `throttle_budget`): it is the endpoint saying "not now", never "no",
while a run of 5xx or lost connections more likely means an outage that waiting longer
does not cure. `PATIENT_READS` is that policy for the read-only calls a run cannot start
without (the targets step, the quota check): a burst of throttling must not end a run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from orchestrator.errors import ApiError, OrchestratorError, Throttled

if TYPE_CHECKING:
    import random

    from orchestrator.clock import Clock

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry a retryable error.

    `attempts` counts every try, the first included. A delay before attempt n+1 is
    drawn uniformly from [0, min(max_delay, base * 2**(n-1))], `base` being
    `throttle_base_delay` after a Throttled and `base_delay` otherwise. No sleep is
    started that would end past `budget` seconds after the first attempt began.
    The defaults (5 attempts, 0.1 s / 0.5 s bases, 20 s cap) follow the legacy SDK's
    backoff with one more attempt; the 60 s budget keeps a throttling storm from
    stalling a wave for long. When the last error is a Throttled, `throttle_attempts`
    and `throttle_budget` (None: `attempts` and `budget`) are the limits instead.
    """

    attempts: int = 5
    base_delay: float = 0.1
    throttle_base_delay: float = 0.5
    max_delay: float = 20.0
    budget: float = 60.0
    throttle_attempts: int | None = None
    throttle_budget: float | None = None

    def __post_init__(self) -> None:
        if min(self.attempts, self.throttle_attempts or 1) < 1:
            raise ValueError("attempts must be >= 1")
        budgets = (self.budget, self.throttle_budget or 0.0)
        if min(self.base_delay, self.throttle_base_delay, self.max_delay, *budgets) < 0:
            raise ValueError("delays and budget must be >= 0")

    def limits(self, error: OrchestratorError) -> tuple[int, float]:
        """The attempts and the budget that apply when the last attempt failed with `error`."""
        if isinstance(error, Throttled):
            attempts = self.attempts if self.throttle_attempts is None else self.throttle_attempts
            budget = self.budget if self.throttle_budget is None else self.throttle_budget
            return attempts, budget
        return self.attempts, self.budget

    @classmethod
    def none(cls) -> RetryPolicy:
        """A single attempt: the error, if any, goes straight to the caller."""
        return cls(attempts=1)

    def delay(self, failed_attempts: int, error: OrchestratorError, rng: random.Random) -> float:
        """The jittered sleep after `failed_attempts` attempts failed, the last with `error`."""
        base = self.throttle_base_delay if isinstance(error, Throttled) else self.base_delay
        cap = min(self.max_delay, base * 2 ** (failed_attempts - 1))
        return rng.uniform(0.0, cap)


# 20 attempts: 15 Throttling answers in a row and more still pass, and the worst case of
# the jittered waits for 19 of them (0.5 s doubling to the 20 s cap: 291.5 s) fits the
# 300 s budget. Any other error gets the usual 5 attempts, 60 s.
PATIENT_READS = RetryPolicy(throttle_attempts=20, throttle_budget=300.0)


@dataclass(frozen=True, slots=True)
class RetryDetails:
    """One retry about to happen: which call, after which attempt, how long it waits, why."""

    action: str
    attempt: int  # the attempt that failed, 1-based
    delay: float
    error_code: str  # the API error code, or "TransportError"


RetryHook = Callable[[RetryDetails], None]


def error_code_of(error: OrchestratorError) -> str:
    """The API code of an ApiError, else the error's class name."""
    return error.code if isinstance(error, ApiError) else type(error).__name__


async def retry_call(
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    clock: Clock,
    rng: random.Random,
    action: str,
    on_retry: RetryHook | None = None,
) -> T:
    """Await `attempt()` until it returns, raises a non-retryable error, or the policy ends.

    The last error is raised as it is, so the caller sees the service's own code.
    """
    started = clock.monotonic()
    failed = 0
    while True:
        try:
            return await attempt()
        except OrchestratorError as error:
            failed += 1
            attempts, budget = policy.limits(error)
            if not error.retryable or failed >= attempts:
                raise
            delay = policy.delay(failed, error, rng)
            if clock.monotonic() - started + delay > budget:
                raise
            if on_retry is not None:
                on_retry(RetryDetails(action, failed, delay, error_code_of(error)))
            await clock.sleep(delay)
