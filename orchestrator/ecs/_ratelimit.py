"""Client-side rate limits: one adaptive token bucket per API bucket, on the injected Clock.

Every attempt of every call (the targets' DescribeInstances as much as the rollout's
RunCommand) asks `RateLimiter.acquire(action)` first. Actions share buckets: `RunCommand`,
`Describe` (every Describe* action) and `StopInvocation`; any other action has a bucket of
its own. A bucket is a GCRA token bucket (a reservation per caller, so waiters are served
in arrival order and every wait is one exact `Clock.sleep`). It adapts like TCP (AIMD): a
throttling answer cuts the bucket's rate multiplicatively (and the calls already waiting
reserve again at the new rate), each success adds a little back, up to the configured
rate. The limiter also counts what it saw (calls per action,
throttles, current rates) for progress lines and reports.
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from orchestrator.clock import Clock

# Where to START, not a limit we believe in. Alibaba Cloud publishes no QPS for these
# actions: its ECS "API throttling" page (unconfirmed which figures apply to an account)
# says each action has a per-account, per-region threshold shown in Quota Center, and
# answers past it with `Throttling*`. A rate set below the account's wastes the run's
# time on every batch; a rate above it costs a few throttled answers at the start (each
# retried, a RunCommand with its same ClientToken, so nothing runs twice) while the
# bucket halves down to the account's rate, then holds it with AIMD. So we start high
# (a 2,000-instance rollout dispatches in under a second at 50/s) and let the limiter
# find the rate; a plan's `limits.qps` sets the ceiling where the account's is known.
DEFAULT_RATES: Final[Mapping[str, float]] = MappingProxyType(
    {"RunCommand": 50.0, "Describe": 100.0, "StopInvocation": 50.0}
)
# An action without a bucket of its own (DescribeAccountAttributes is a Describe; this
# covers anything added later).
OTHER_ACTIONS_RATE: Final = 10.0


def bucket_of(action: str) -> str:
    """The bucket an API action draws from: `Describe` for every Describe* action."""
    return "Describe" if action.startswith("Describe") else action


@dataclass(frozen=True, slots=True)
class ThrottleNotice:
    """The endpoint throttled `action`; its bucket now runs at `rate` requests per second."""

    action: str
    bucket: str
    rate: float


@dataclass(frozen=True, slots=True)
class RateLimiterStats:
    """What the limiter saw so far: attempts and throttles per action, rates per bucket."""

    calls: Mapping[str, int] = field(default_factory=dict, hash=False)
    throttles: Mapping[str, int] = field(default_factory=dict, hash=False)
    rates: Mapping[str, float] = field(default_factory=dict, hash=False)
    configured: Mapping[str, float] = field(default_factory=dict, hash=False)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def total_throttles(self) -> int:
        return sum(self.throttles.values())


@dataclass(slots=True)
class _Bucket:
    configured: float
    rate: float
    # GCRA's theoretical arrival time: when the next call would be due at the current
    # rate if nobody had saved up a burst.
    due: float
    last_cut: float = float("-inf")
    cuts: int = 0  # how many times a throttle cut the rate: waiters compare it on waking


class RateLimiter:
    """Adaptive token buckets per API bucket; share one per client (one region, one key).

    `rates` overrides `DEFAULT_RATES` per bucket name. `burst` is how many calls a full
    bucket lets through at once (1: evenly spaced). On a throttle the rate is multiplied
    by `decrease`, never below `floor` (nor above the configured rate); several throttles
    within one interval of the last cut count once, since they answer calls sent before
    the cut took effect. Each success adds `recovery` (a fraction of the configured rate)
    back.
    """

    def __init__(
        self,
        clock: Clock,
        rates: Mapping[str, float] | None = None,
        *,
        burst: float = 1.0,
        decrease: float = 0.5,
        floor: float = 0.5,
        recovery: float = 0.02,
    ) -> None:
        if burst < 1:
            raise ValueError("burst must be >= 1")
        if not 0 < decrease < 1:
            raise ValueError("decrease must be between 0 and 1")
        if floor <= 0 or recovery <= 0:
            raise ValueError("floor and recovery must be > 0")
        configured = dict(DEFAULT_RATES)
        for name, rate in (rates or {}).items():
            if rate <= 0:
                raise ValueError(f"the rate of {name} must be > 0, not {rate}")
            configured[name] = float(rate)
        self._clock = clock
        self._configured = configured
        self._burst = float(burst)
        self._decrease = decrease
        self._floor = floor
        self._recovery = recovery
        self._buckets: dict[str, _Bucket] = {}
        self._calls: Counter[str] = Counter()
        self._throttles: Counter[str] = Counter()
        self._listeners: list[Callable[[ThrottleNotice], None]] = []

    def __repr__(self) -> str:
        rates = ", ".join(f"{name}={rate:g}/s" for name, rate in sorted(self.rates().items()))
        return f"<RateLimiter {rates}>"

    def _bucket(self, action: str) -> _Bucket:
        name = bucket_of(action)
        bucket = self._buckets.get(name)
        if bucket is None:
            rate = self._configured.get(name, OTHER_ACTIONS_RATE)
            bucket = _Bucket(configured=rate, rate=rate, due=self._clock.monotonic())
            self._buckets[name] = bucket
        return bucket

    async def acquire(self, action: str) -> None:
        """Wait until `action` may be sent; the wait is reserved at once (FIFO).

        A call that was waiting when a throttle cut the rate takes a new reservation
        when it wakes: its slot was spaced for the old rate, and the dispatcher keeps up
        to two seconds' worth of RunCommands waiting here, so without this a high start
        would keep sending at the old rate for that long after the endpoint said no.
        Those calls re-reserve in the order they wake, which is their old order."""
        bucket = self._bucket(action)
        self._calls[action] += 1
        while True:
            now = self._clock.monotonic()
            interval = 1.0 / bucket.rate
            due = max(bucket.due, now)
            # A bucket may run `burst - 1` intervals ahead of its schedule.
            allowed = due - (self._burst - 1.0) * interval
            bucket.due = due + interval
            if allowed <= now:
                return
            cuts = bucket.cuts
            await self._clock.sleep(allowed - now)
            if bucket.cuts == cuts:
                return

    def throttled(self, action: str) -> None:
        """The endpoint answered `action` with a Throttling code: slow its bucket down."""
        bucket = self._bucket(action)
        now = self._clock.monotonic()
        self._throttles[action] += 1
        if now - bucket.last_cut >= 1.0 / bucket.rate:
            floor = min(self._floor, bucket.configured)
            bucket.rate = max(floor, bucket.rate * self._decrease)
            bucket.last_cut = now
            bucket.cuts += 1
            # The reservations made so far were at the old rate; every call still
            # waiting on one reserves again when it wakes (`acquire`), so they are
            # dropped, and no saved-up burst survives: the next call waits one interval.
            bucket.due = now + self._burst / bucket.rate
        else:
            bucket.due = max(bucket.due, now + self._burst / bucket.rate)
        notice = ThrottleNotice(action, bucket_of(action), bucket.rate)
        for listener in list(self._listeners):
            listener(notice)

    def succeeded(self, action: str) -> None:
        """`action` was answered (not throttled): give its bucket a little rate back."""
        bucket = self._bucket(action)
        if bucket.rate < bucket.configured:
            step = self._recovery * bucket.configured
            bucket.rate = min(bucket.configured, bucket.rate + step)

    @contextmanager
    def listening(self, listener: Callable[[ThrottleNotice], None]) -> Iterator[None]:
        """Tell `listener` about every throttle while the block runs (it must not block)."""
        self._listeners.append(listener)
        try:
            yield
        finally:
            self._listeners.remove(listener)

    def rate(self, bucket: str) -> float:
        """The current rate of `bucket` (a bucket name, or an action)."""
        name = bucket_of(bucket)
        found = self._buckets.get(name)
        if found is not None:
            return found.rate
        return self._configured.get(name, OTHER_ACTIONS_RATE)

    def rates(self) -> dict[str, float]:
        """Current rate of every configured or used bucket."""
        names = set(self._configured) | set(self._buckets)
        return {name: self.rate(name) for name in sorted(names)}

    def stats(self) -> RateLimiterStats:
        """A snapshot of the counts and rates."""
        return RateLimiterStats(
            calls=MappingProxyType(dict(self._calls)),
            throttles=MappingProxyType(dict(self._throttles)),
            rates=MappingProxyType(self.rates()),
            configured=MappingProxyType(dict(self._configured)),
        )
