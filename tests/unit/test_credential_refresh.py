"""When `RefreshingProvider` renews temporary credentials, on an injected wall clock:
not before the prefetch point; in the background (callers keep signing with the current
ones) between prefetch and stale; callers wait, sharing one fetch, once stale; at once
after an expired-token refusal, unless another caller already renewed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest

from orchestrator.ecs import Credentials, RefreshingProvider, Temporary
from orchestrator.errors import CredentialsError

pytestmark = pytest.mark.anyio

START = datetime(2026, 1, 1, tzinfo=UTC)
LIFE = timedelta(minutes=60)  # prefetch 15 min before expiry, stale 3 min before


class Issuer:
    """Hands out credentials numbered 1, 2, ...; a fetch can be held at a gate."""

    def __init__(self) -> None:
        self.now = START
        self.fetches = 0
        self.gate: anyio.Event | None = None
        self.started = anyio.Event()
        self.fail = False

    def clock(self) -> datetime:
        return self.now

    async def fetch(self) -> Temporary:
        self.fetches += 1
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise CredentialsError("AssumeRole of acs:ram::1:role/x refused: NoPermission")
        creds = Credentials.of(f"STS.{self.fetches}", f"secret-{self.fetches}", "token")
        return Temporary(creds, self.now + LIFE)


def _provider(issuer: Issuer, told: list[str] | None = None) -> RefreshingProvider:
    def on_new(creds: Credentials) -> None:
        if told is not None:
            told.append(creds.access_key_id)

    return RefreshingProvider(
        issuer.fetch, description="role x", wall_clock=issuer.clock, on_new=on_new
    )


async def test_fetched_once_and_kept_until_the_prefetch_point():
    issuer = Issuer()
    told: list[str] = []
    provider = _provider(issuer, told)
    assert (await provider.credentials()).access_key_id == "STS.1"
    issuer.now = START + LIFE - timedelta(minutes=15, seconds=1)
    assert (await provider.credentials()).access_key_id == "STS.1"
    assert issuer.fetches == 1
    assert told == ["STS.1"]
    assert provider.expires_at == START + LIFE


async def test_past_the_prefetch_point_callers_do_not_wait_for_the_refresh():
    issuer = Issuer()
    provider = _provider(issuer)
    await provider.credentials()
    issuer.gate, issuer.started = anyio.Event(), anyio.Event()
    issuer.now = START + LIFE - timedelta(minutes=10)
    # The refresh is started, held at the gate, and the callers go on with STS.1.
    assert (await provider.credentials()).access_key_id == "STS.1"
    await issuer.started.wait()
    assert (await provider.credentials()).access_key_id == "STS.1"
    assert issuer.fetches == 2  # one refresh, however many callers
    issuer.gate.set()
    with anyio.fail_after(5):
        while (await provider.credentials()).access_key_id != "STS.2":
            await anyio.wait_all_tasks_blocked()
    assert issuer.fetches == 2
    await provider.aclose()


async def test_stale_credentials_make_callers_wait_for_one_shared_fetch():
    issuer = Issuer()
    provider = _provider(issuer)
    await provider.credentials()
    issuer.now = START + LIFE - timedelta(minutes=2)
    issuer.gate = anyio.Event()
    seen: list[str] = []

    async def caller() -> None:
        seen.append((await provider.credentials()).access_key_id)

    async with anyio.create_task_group() as tasks:
        for _ in range(5):
            tasks.start_soon(caller)
        await anyio.wait_all_tasks_blocked()
        assert seen == []  # all waiting: the credentials are too close to expiry
        issuer.gate.set()
    assert seen == ["STS.2"] * 5
    assert issuer.fetches == 2


async def test_refreshed_after_an_expired_refusal_fetches_unless_already_renewed():
    issuer = Issuer()
    provider = _provider(issuer)
    first = await provider.credentials()
    second = await provider.refreshed(first)
    assert second.access_key_id == "STS.2"
    # A caller still holding the first credentials gets the second, no new fetch.
    assert (await provider.refreshed(first)).access_key_id == "STS.2"
    assert issuer.fetches == 2


async def test_a_failed_background_refresh_is_retried_later_and_then_surfaces():
    issuer = Issuer()
    provider = _provider(issuer)
    await provider.credentials()
    issuer.fail = True
    issuer.now = START + LIFE - timedelta(minutes=10)
    assert (await provider.credentials()).access_key_id == "STS.1"  # refresh fails behind
    await anyio.wait_all_tasks_blocked()
    assert issuer.fetches == 2
    assert (await provider.credentials()).access_key_id == "STS.1"
    assert issuer.fetches == 2  # not again at once
    issuer.now += timedelta(seconds=11)
    await provider.credentials()
    await anyio.wait_all_tasks_blocked()
    assert issuer.fetches == 3
    issuer.now = START + LIFE - timedelta(minutes=1)  # stale: the caller sees the error
    with pytest.raises(CredentialsError, match="NoPermission"):
        await provider.credentials()


async def test_short_lived_credentials_refresh_in_proportion():
    """A 6-second credential: prefetch at 3 s left, stale at 1 s left."""
    issuer = Issuer()
    provider = RefreshingProvider(_short(issuer), description="short", wall_clock=issuer.clock)
    await provider.credentials()
    issuer.now = START + timedelta(seconds=2.9)
    await provider.credentials()
    await anyio.wait_all_tasks_blocked()
    assert issuer.fetches == 1
    issuer.now = START + timedelta(seconds=3.1)
    await provider.credentials()
    await anyio.wait_all_tasks_blocked()
    assert issuer.fetches == 2


def _short(issuer: Issuer):
    async def fetch() -> Temporary:
        issuer.fetches += 1
        creds = Credentials.of(f"STS.{issuer.fetches}", "s", "t")
        return Temporary(creds, issuer.now + timedelta(seconds=6))

    return fetch
