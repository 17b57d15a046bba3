"""The adaptive rate limiter on a hand-moved clock: exact pacing, bursts, AIMD, counts."""

from __future__ import annotations

import anyio
import pytest

from orchestrator.ecs import DEFAULT_RATES, RateLimiter, ThrottleNotice, bucket_of
from orchestrator.ecs._ratelimit import OTHER_ACTIONS_RATE
from orchestrator.testing import ManualClock

pytestmark = pytest.mark.anyio


async def test_calls_are_spaced_one_interval_apart():
    """2/s with no burst: the 2nd call waits 0.5 s, the 3rd another 0.5 s."""
    clock = ManualClock(autojump=True)
    limiter = RateLimiter(clock, {"RunCommand": 2})
    for _ in range(3):
        await limiter.acquire("RunCommand")
    assert clock.slept == [0.5, 0.5]
    assert clock.monotonic() == 1.0


async def test_a_burst_goes_through_at_once_then_the_rate_holds():
    """Burst 3 at 1/s: three calls at t=0, the fourth at t=1, the fifth at t=2."""
    clock = ManualClock(autojump=True)
    limiter = RateLimiter(clock, {"RunCommand": 1}, burst=3)
    times = []
    for _ in range(5):
        await limiter.acquire("RunCommand")
        times.append(clock.monotonic())
    assert times == [0.0, 0.0, 0.0, 1.0, 2.0]


async def test_an_idle_bucket_refills_its_burst():
    """After enough idle time, a full burst goes through again without waiting."""
    clock = ManualClock(autojump=True)
    limiter = RateLimiter(clock, {"Describe": 2}, burst=2)
    for _ in range(4):
        await limiter.acquire("DescribeInvocations")
    assert clock.monotonic() == 1.0
    clock.advance(10)
    for _ in range(2):
        await limiter.acquire("DescribeInvocations")
    assert clock.monotonic() == 11.0


async def test_waiters_are_served_in_arrival_order():
    """Three callers at once at 1/s go at t=0, 1 and 2, in the order they came."""
    clock = ManualClock()
    limiter = RateLimiter(clock, {"RunCommand": 1})
    done: list[tuple[int, float]] = []

    async def call(number: int) -> None:
        await limiter.acquire("RunCommand")
        done.append((number, clock.monotonic()))

    async with anyio.create_task_group() as group:
        for number in range(3):
            group.start_soon(call, number)
            await anyio.wait_all_tasks_blocked()
        clock.advance(1)
        await anyio.wait_all_tasks_blocked()
        clock.advance(1)
    assert done == [(0, 0.0), (1, 1.0), (2, 2.0)]


async def test_a_throttle_halves_the_rate_and_delays_the_next_call():
    """10/s, throttled at t=0: 5/s, and the next call waits one new interval (0.2 s)."""
    clock = ManualClock(autojump=True)
    limiter = RateLimiter(clock, {"RunCommand": 10}, burst=5)
    await limiter.acquire("RunCommand")
    limiter.throttled("RunCommand")
    assert limiter.rate("RunCommand") == 5.0
    await limiter.acquire("RunCommand")
    assert clock.monotonic() == pytest.approx(0.2)


async def test_a_cut_respaces_the_calls_already_waiting():
    """4/s: five callers reserve t=0, 0.25, 0.5, 0.75 and 1; the first is throttled at
    t=0.125 and the rate halves. The four still waiting go 0.5 s apart from the cut, in
    their order, not in the slots they had reserved at the old rate."""
    clock = ManualClock()
    limiter = RateLimiter(clock, {"RunCommand": 4})
    sent: list[tuple[int, float]] = []

    async def call(number: int) -> None:
        await limiter.acquire("RunCommand")
        sent.append((number, clock.monotonic()))

    async with anyio.create_task_group() as group:
        for number in range(5):
            group.start_soon(call, number)
            await anyio.wait_all_tasks_blocked()
        clock.advance(0.125)
        limiter.throttled("RunCommand")
        for _ in range(20):
            clock.advance(0.125)
            await anyio.wait_all_tasks_blocked()
    assert sent == [(0, 0.0), (1, 0.625), (2, 1.125), (3, 1.625), (4, 2.125)]
    assert limiter.stats().calls == {"RunCommand": 5}  # one attempt each, not one a wake


async def test_throttles_answering_calls_sent_before_a_cut_count_once():
    """Three throttles within one interval cut once; one an interval later cuts again."""
    clock = ManualClock()
    limiter = RateLimiter(clock, {"RunCommand": 8})
    for _ in range(3):
        limiter.throttled("RunCommand")
    assert limiter.rate("RunCommand") == 4.0
    clock.advance(0.25)  # one interval at 4/s
    limiter.throttled("RunCommand")
    assert limiter.rate("RunCommand") == 2.0
    assert limiter.stats().throttles == {"RunCommand": 4}


async def test_the_rate_never_drops_below_the_floor():
    """Cut after cut, the rate stops at the floor (0.5/s by default)."""
    clock = ManualClock()
    limiter = RateLimiter(clock, {"StopInvocation": 10})
    for _ in range(10):
        limiter.throttled("StopInvocation")
        clock.advance(10)
    assert limiter.rate("StopInvocation") == 0.5


async def test_a_configured_rate_below_the_floor_is_its_own_floor():
    """A bucket configured at 0.2/s is never cut below 0.2/s."""
    limiter = RateLimiter(ManualClock(), {"RunCommand": 0.2})
    limiter.throttled("RunCommand")
    assert limiter.rate("RunCommand") == 0.2


async def test_successes_bring_the_rate_back_additively_up_to_the_configured_rate():
    """Each success adds 2 % of 10/s; 25 bring 5/s back to 10/s, never above."""
    limiter = RateLimiter(ManualClock(), {"RunCommand": 10})
    limiter.throttled("RunCommand")
    for _ in range(10):
        limiter.succeeded("RunCommand")
    assert limiter.rate("RunCommand") == pytest.approx(7.0)
    for _ in range(30):
        limiter.succeeded("RunCommand")
    assert limiter.rate("RunCommand") == 10.0


def test_every_describe_action_shares_one_bucket():
    """Describe* → Describe; RunCommand and StopInvocation have their own."""
    assert bucket_of("DescribeInstances") == "Describe"
    assert bucket_of("DescribeAccountAttributes") == "Describe"
    assert bucket_of("RunCommand") == "RunCommand"
    assert bucket_of("StopInvocation") == "StopInvocation"


async def test_shared_bucket_paces_different_describe_actions_together():
    """DescribeInstances then DescribeInvocations at 1/s: the second waits 1 s."""
    clock = ManualClock(autojump=True)
    limiter = RateLimiter(clock, {"Describe": 1})
    await limiter.acquire("DescribeInstances")
    await limiter.acquire("DescribeInvocations")
    assert clock.monotonic() == 1.0
    stats = limiter.stats()
    assert stats.calls == {"DescribeInstances": 1, "DescribeInvocations": 1}
    assert stats.total_calls == 2


def test_defaults_and_overrides_show_in_the_rates():
    """50/100/50 by default (a high start, for AIMD to come down from); a plan's qps
    overrides a bucket; other actions get 10/s."""
    limiter = RateLimiter(ManualClock(), {"Describe": 5})
    assert dict(DEFAULT_RATES) == {"RunCommand": 50.0, "Describe": 100.0, "StopInvocation": 50.0}
    assert limiter.rates() == {"Describe": 5.0, "RunCommand": 50.0, "StopInvocation": 50.0}
    assert limiter.rate("SomethingNew") == OTHER_ACTIONS_RATE


def test_listeners_hear_throttles_only_while_listening():
    """A listener gets a notice with the new rate inside the block, none after it."""
    limiter = RateLimiter(ManualClock(), {"RunCommand": 4})
    heard: list[ThrottleNotice] = []
    with limiter.listening(heard.append):
        limiter.throttled("RunCommand")
    limiter.throttled("RunCommand")
    assert heard == [ThrottleNotice("RunCommand", "RunCommand", 2.0)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rates": {"RunCommand": 0}},
        {"burst": 0.5},
        {"decrease": 1.0},
        {"floor": 0},
        {"recovery": 0},
    ],
)
def test_nonsense_settings_are_refused(kwargs):
    """Zero rates, bursts below one and cuts that do not cut are errors."""
    with pytest.raises(ValueError):
        RateLimiter(ManualClock(), **kwargs)
