"""The retry loop on a hand-advanced clock, and the client's retry rules on a loopback wire."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import TYPE_CHECKING, Any, Literal

import aiohttp
import pytest
from aiohttp import web

from orchestrator.ecs import (
    Credentials,
    EcsClient,
    RetryDetails,
    RetryPolicy,
    RunCommandRequest,
)
from orchestrator.ecs._retry import PATIENT_READS, retry_call
from orchestrator.errors import (
    IdempotentProcessing,
    InvalidParameter,
    ServerError,
    Throttled,
    TransportError,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable


class FakeClock:
    """A Clock whose sleep records the delay, advances virtual time and returns at once."""

    def __init__(self) -> None:
        self.elapsed = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.elapsed

    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=self.elapsed)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.elapsed += seconds

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds


class Script:
    """An attempt callable that raises the scripted errors in turn, then returns "ok"."""

    def __init__(self, *errors: Exception, clock: FakeClock | None = None, cost: float = 0.0):
        self.errors = list(errors)
        self.calls = 0
        self.clock = clock
        self.cost = cost

    async def __call__(self) -> str:
        self.calls += 1
        if self.clock is not None:
            self.clock.advance(self.cost)
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def server_error() -> ServerError:
    return ServerError("InternalError", "boom", http_status=500)


def throttled() -> Throttled:
    return Throttled("Throttling", "slow down", http_status=400)


async def run(
    script: Script,
    policy: RetryPolicy,
    clock: FakeClock,
    seed: int = 7,
    hook: Callable[[RetryDetails], None] | None = None,
) -> str:
    return await retry_call(
        script, policy=policy, clock=clock, rng=random.Random(seed), action="X", on_retry=hook
    )


@pytest.mark.anyio
async def test_exact_backoff_with_full_jitter() -> None:
    """Delays are uniform draws in [0, base*2^(n-1)] from the injected Random, in order."""
    clock = FakeClock()
    script = Script(server_error(), server_error(), server_error())
    assert await run(script, RetryPolicy(attempts=5), clock) == "ok"
    rng = random.Random(7)
    assert clock.sleeps == [rng.uniform(0, 0.1), rng.uniform(0, 0.2), rng.uniform(0, 0.4)]
    assert script.calls == 4


@pytest.mark.anyio
async def test_throttling_backs_off_from_the_larger_base() -> None:
    """After Throttled the cap starts at throttle_base_delay, not base_delay."""
    clock = FakeClock()
    await run(Script(throttled(), throttled()), RetryPolicy(), clock)
    rng = random.Random(7)
    assert clock.sleeps == [rng.uniform(0, 0.5), rng.uniform(0, 1.0)]


@pytest.mark.anyio
async def test_delay_is_capped_by_max_delay() -> None:
    """The exponential stops growing at max_delay."""
    clock = FakeClock()
    policy = RetryPolicy(attempts=6, base_delay=1.0, max_delay=2.0, budget=1000)
    await run(Script(*(server_error() for _ in range(5))), policy, clock, seed=1)
    rng = random.Random(1)
    assert clock.sleeps == [rng.uniform(0, cap) for cap in (1.0, 2.0, 2.0, 2.0, 2.0)]


@pytest.mark.anyio
async def test_attempts_bound_raises_the_last_error() -> None:
    """With attempts=3 an always-failing call is tried 3 times and its last error raised."""
    clock = FakeClock()
    last = ServerError("ServiceUnavailable", "third", http_status=503)
    script = Script(server_error(), server_error(), last, server_error())
    with pytest.raises(ServerError) as excinfo:
        await run(script, RetryPolicy(attempts=3), clock)
    assert excinfo.value is last
    assert script.calls == 3
    assert len(clock.sleeps) == 2


@pytest.mark.anyio
async def test_budget_bounds_total_time() -> None:
    """No sleep starts that would end past the budget, even with attempts left."""
    clock = FakeClock()
    policy = RetryPolicy(attempts=100, base_delay=1.0, max_delay=1.0, budget=25.0)
    script = Script(*(server_error() for _ in range(100)), clock=clock, cost=10.0)
    with pytest.raises(ServerError):
        await run(script, policy, clock)
    # Calls cost 10 s each: after the 3rd call 30 s have passed, over the budget.
    assert script.calls == 3
    assert clock.elapsed <= 25.0 + 10.0
    assert len(clock.sleeps) == 2


@pytest.mark.anyio
async def test_non_retryable_is_raised_at_once() -> None:
    """A validation error is raised on the first attempt, with no sleep."""
    clock = FakeClock()
    script = Script(InvalidParameter("MissingParam.InstanceId", "m", http_status=400))
    with pytest.raises(InvalidParameter):
        await run(script, RetryPolicy(), clock)
    assert script.calls == 1
    assert clock.sleeps == []


@pytest.mark.anyio
async def test_foreign_exceptions_are_not_retried() -> None:
    """Bugs (exceptions outside the orchestrator tree) propagate at once."""
    clock = FakeClock()
    script = Script(RuntimeError("bug"))
    with pytest.raises(RuntimeError):
        await run(script, RetryPolicy(), clock)
    assert script.calls == 1


@pytest.mark.anyio
async def test_policy_none_makes_one_attempt() -> None:
    """RetryPolicy.none() never retries, even a retryable error."""
    clock = FakeClock()
    script = Script(server_error())
    with pytest.raises(ServerError):
        await run(script, RetryPolicy.none(), clock)
    assert script.calls == 1


@pytest.mark.anyio
async def test_on_retry_reports_each_retry() -> None:
    """The hook hears action, failed attempt, delay and code, before each sleep."""
    clock = FakeClock()
    seen: list[RetryDetails] = []
    script = Script(
        throttled(), TransportError("reset"), IdempotentProcessing("IdempotentProcessing", "m")
    )
    await run(script, RetryPolicy(), clock, hook=seen.append)
    assert [(d.action, d.attempt, d.error_code) for d in seen] == [
        ("X", 1, "Throttling"),
        ("X", 2, "TransportError"),
        ("X", 3, "IdempotentProcessing"),
    ]
    assert [d.delay for d in seen] == clock.sleeps


def test_policy_rejects_nonsense() -> None:
    """Zero attempts or negative delays are refused when the policy is made."""
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(budget=-1)


# --- the client's rules, on a real loopback server --------------------------------------------


class Canned:
    """A loopback ECS stand-in: answers from a list, records each request's query."""

    def __init__(self, *answers: tuple[int, dict[str, Any]]) -> None:
        self.answers = list(answers)
        self.queries: list[dict[str, str]] = []
        self.headers: list[dict[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.queries.append(dict(request.query))
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        status, body = self.answers.pop(0) if self.answers else (200, {"RequestId": "r"})
        return web.json_response(body, status=status)


@pytest.fixture
async def canned() -> AsyncIterator[tuple[Canned, str]]:
    """A started Canned server and its URL."""
    server = Canned()
    app = web.Application()
    app.router.add_post("/", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield server, f"http://127.0.0.1:{port}"
    await runner.cleanup()


def _client(
    session: aiohttp.ClientSession,
    url: str,
    clock: FakeClock,
    version: Literal["v1", "v3"] = "v3",
    hook: Callable[[RetryDetails], None] | None = None,
) -> EcsClient:
    nonces = count(1)
    return EcsClient(
        url,
        session,
        Credentials.of("testid", "testsecret"),
        region_id="cn-hangzhou",
        clock=clock,
        signature_version=version,
        nonce_factory=lambda: f"nonce-{next(nonces)}",
        rng=random.Random(3),
        on_retry=hook,
    )


BUSY = (503, {"RequestId": "r0", "Code": "ServiceUnavailable", "Message": "busy"})
DONE = (200, {"RequestId": "r1", "CommandId": "c-1", "InvokeId": "t-1"})


@pytest.mark.anyio
@pytest.mark.parametrize("version", ["v1", "v3"])
async def test_run_command_retry_resends_same_token_with_fresh_signature(
    canned: tuple[Canned, str], version: Literal["v1", "v3"]
) -> None:
    """With a ClientToken, a 503 is retried: same parameters and token, new nonce and signature."""
    server, url = canned
    server.answers = [BUSY, DONE]
    clock = FakeClock()
    async with aiohttp.ClientSession() as session:
        client = _client(session, url, clock, version)
        req = RunCommandRequest(
            type="RunShellScript", content="echo hi", instance_ids=["i-1"], client_token="tok-1"
        )
        result = await client.run_command(req)
    assert result.invoke_id == "t-1"
    first, second = server.queries
    assert first["ClientToken"] == second["ClientToken"] == "tok-1"
    volatile = {"Signature", "SignatureNonce", "Timestamp"}
    assert {k: v for k, v in first.items() if k not in volatile} == {
        k: v for k, v in second.items() if k not in volatile
    }
    if version == "v1":
        assert first["SignatureNonce"] != second["SignatureNonce"]
        assert first["Signature"] != second["Signature"]
    else:
        h1, h2 = server.headers
        assert h1["x-acs-signature-nonce"] == "nonce-1"
        assert h2["x-acs-signature-nonce"] == "nonce-2"
        assert h1["authorization"] != h2["authorization"]
    assert len(clock.sleeps) == 1


@pytest.mark.anyio
async def test_run_command_without_token_is_sent_once(canned: tuple[Canned, str]) -> None:
    """Without a ClientToken a retryable error is not retried: the script could run twice."""
    server, url = canned
    server.answers = [BUSY, DONE]
    async with aiohttp.ClientSession() as session:
        client = _client(session, url, FakeClock())
        req = RunCommandRequest(type="RunShellScript", content="echo hi", instance_ids=["i-1"])
        with pytest.raises(ServerError) as excinfo:
            await client.run_command(req)
    assert excinfo.value.code == "ServiceUnavailable"
    assert excinfo.value.action == "RunCommand"
    assert len(server.queries) == 1


@pytest.mark.anyio
async def test_describe_is_retried_on_throttling(canned: tuple[Canned, str]) -> None:
    """A Describe call is retried after Throttling and the hook sees it."""
    server, url = canned
    throttle = (400, {"RequestId": "r", "Code": "Throttling.User", "Message": "m"})
    server.answers = [throttle, (200, {"RequestId": "r", "AccountAttributeItems": {}})]
    seen: list[RetryDetails] = []
    async with aiohttp.ClientSession() as session:
        client = _client(session, url, FakeClock(), hook=seen.append)
        attributes = await client.describe_account_attributes(["max-axt-invocation-daily"])
    assert attributes.values == {}
    assert [(d.action, d.attempt, d.error_code) for d in seen] == [
        ("DescribeAccountAttributes", 1, "Throttling.User")
    ]
    assert len(server.queries) == 2
    assert server.queries[1]["RegionId"] == "cn-hangzhou"
    assert server.queries[1]["AttributeName.1"] == "max-axt-invocation-daily"


@pytest.mark.anyio
async def test_patient_reads_wait_out_15_throttles_but_not_15_server_errors() -> None:
    """PATIENT_READS: Throttling gets 20 attempts in 300 s; any other error the usual 5."""
    clock = FakeClock()
    assert await run(Script(*(throttled() for _ in range(15))), PATIENT_READS, clock) == "ok"
    assert len(clock.sleeps) == 15
    assert sum(clock.sleeps) <= 300.0
    failing = Script(*(server_error() for _ in range(15)))
    with pytest.raises(ServerError):
        await run(failing, PATIENT_READS, FakeClock())
    assert failing.calls == 5


@pytest.mark.anyio
async def test_throttle_limits_fall_back_to_the_general_ones() -> None:
    """Without throttle_attempts, Throttling is retried as often as anything else."""
    script = Script(*(throttled() for _ in range(6)))
    with pytest.raises(Throttled):
        await run(script, RetryPolicy(attempts=3), FakeClock())
    assert script.calls == 3
