"""Shared fixtures: hermetic environment, the asyncio backend, a running simulator."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import pytest

from orchestrator.ecs import Credentials, EcsClient
from orchestrator.sim import FleetSpec, RunningSimulator, load_fleet, serve
from orchestrator.testing import ManualClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """aiohttp ties us to asyncio."""
    return "asyncio"


@pytest.fixture(autouse=True)
def clean_environ() -> Iterator[None]:
    """No real ALIBABA_CLOUD_* credentials or profile may leak into a test."""
    saved = {k: v for k, v in os.environ.items() if k.startswith(("ALIBABA_CLOUD_", "ALICLOUD_"))}
    for key in saved:
        del os.environ[key]
    yield
    for key in [k for k in os.environ if k.startswith(("ALIBABA_CLOUD_", "ALICLOUD_"))]:
        del os.environ[key]
    os.environ.update(saved)


# --- the simulator and a client pointed at it --------------------------------------

ROOT = Path(__file__).resolve().parent.parent
SMALL_FLEET = ROOT / "plans" / "fleets" / "small.yaml"


@pytest.fixture
def clock() -> ManualClock:
    """The simulator's clock, moved by hand: statuses change only when a test says so."""
    return ManualClock()


@pytest.fixture
def fleet() -> FleetSpec:
    """The small test fleet; a test may override this fixture with its own."""
    return load_fleet(SMALL_FLEET)


@pytest.fixture
async def sim(fleet: FleetSpec, clock: ManualClock) -> AsyncIterator[RunningSimulator]:
    """The simulator serving `fleet` on 127.0.0.1, any free port."""
    async with serve(fleet, clock=clock) as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP session with a short read timeout, so a stalled answer fails fast."""
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=2)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        yield http


@pytest.fixture(params=["v3", "v1"])
def signature_version(request: pytest.FixtureRequest) -> str:
    """Both signature versions: V3 is what the Tea SDK sends, V1 the legacy SDK."""
    return str(request.param)


@pytest.fixture
def client(
    sim: RunningSimulator, session: aiohttp.ClientSession, signature_version: str
) -> EcsClient:
    """Our client, signed with the simulator's key pair; it backs off on its own clock."""
    credentials = Credentials.of(sim.access_key_id, sim.access_key_secret)
    return EcsClient(
        sim.url,
        session,
        credentials,
        region_id=sim.region,
        clock=ManualClock(autojump=True),
        signature_version="v1" if signature_version == "v1" else "v3",
        rng=random.Random(1),
    )
