"""The composition root: the only place that picks implementations.

It builds the clock, the HTTP session, the credentials and the ECS client, pointed at the
region's endpoint, an explicit endpoint, or a simulator started in-process on a free
loopback port. Credentials come from the chain (`orchestrator.ecs.resolve_credentials`)
as a provider that renews temporary ones during the run; every secret it obtains (each
refreshed key secret and token, an OIDC token, a metadata token) is registered with the
log redactor the moment it arrives.
"""

from __future__ import annotations

import os
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from orchestrator.cli._logging import register_secret
from orchestrator.clock import Clock, ScaledClock, SystemClock
from orchestrator.ecs import (
    Credentials,
    EcsClient,
    RateLimiter,
    RefreshingProvider,
    build_provider,
    endpoint_for_region,
    resolve_credentials,
)
from orchestrator.errors import UsageError
from orchestrator.sim import default_fleet, load_fleet, serve

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

# Connect fast; then every attempt as a whole (connect, headers, body) has
# REQUEST_DEADLINE seconds of real time. A lost answer is retried (RunCommand with the
# same ClientToken), so a stalled or drip-fed answer must end in an error, not a hang: a
# per-read timeout alone never fires on a server sending one byte every few seconds.
_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10)
# 20 s: the API answers in well under a second, and even its largest page (a few MB of
# output, DEFAULT_MAX_ANSWER_BYTES) needs only ~200 KB/s. It must stay well inside the
# retry policy's 60 s budget, which is checked before each backoff: a 60 s deadline would
# leave a drip-fed call no second attempt, 20 s leaves three.
REQUEST_DEADLINE = 20.0


@dataclass(frozen=True, slots=True)
class Target:
    """Where a command sends its calls. `sim` is None (no simulator), "" (the demo fleet)
    or a fleet file path."""

    region: str | None = None
    endpoint: str | None = None
    sim: str | None = None
    profile: str | None = None


@dataclass(frozen=True, slots=True)
class Connection:
    """A ready client, the clock everything waits on, and where the calls go."""

    client: EcsClient
    clock: Clock
    region: str
    description: str
    endpoint: str
    # The credential's secret parts, the access key secret then the security token (if
    # any), then any other secret the source used (an OIDC token), for the log redactor
    # and the plan's check: never printed or stored. Those of later refreshes are
    # registered with the redactor as they arrive.
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def credentials_in_use(self) -> dict[str, str]:
        """The secret parts by what they are, for `check_credentials_in_use`."""
        names = ("the access key secret", "the security token")
        named = dict(zip(names, self.secrets, strict=False))
        # After those two: the source's own tokens (an OIDC token, a metadata token).
        for n, value in enumerate(self.secrets[len(names) :], start=1):
            named[f"the credential source's token {n}"] = value
        return named


@asynccontextmanager
async def connect(
    target: Target, *, rates: Mapping[str, float] | None = None
) -> AsyncIterator[Connection]:
    """A ready client for `target`, rate limited per action (`rates` overrides the
    defaults), with everything it needs closed on exit."""
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession(timeout=_TIMEOUT))
        if target.sim is not None:
            fleet = load_fleet(Path(target.sim)) if target.sim else default_fleet()
            # Against the simulator the whole world runs on its scaled clock: agents,
            # throttle windows, and our own polling, backoff and rate limits alike.
            clock: Clock = ScaledClock(fleet.time_scale)
            sim = await stack.enter_async_context(serve(fleet, clock=clock))
            credentials = Credentials.of(sim.access_key_id, sim.access_key_secret)
            region = fleet.region
            client = EcsClient(
                sim.url,
                session,
                credentials,
                region_id=region,
                clock=clock,
                rate_limiter=RateLimiter(clock, rates),
                request_timeout=REQUEST_DEADLINE,
            )
            description = f"simulator at {sim.url} ({target.sim or 'demo fleet'})"
            endpoint = sim.url
            secrets: tuple[str, ...] = (sim.access_key_secret,)
        else:
            resolved = resolve_credentials(environ=os.environ, profile=target.profile)
            region = (
                target.region
                or os.environ.get("ALIBABA_CLOUD_REGION_ID")
                or resolved.region_id
                or ""
            )
            if not region:
                raise UsageError(
                    "no region: pass --region, set ALIBABA_CLOUD_REGION_ID, give the "
                    "aliyun CLI profile a region_id, or use --sim"
                )
            endpoint = target.endpoint or endpoint_for_region(region)
            clock = SystemClock()
            extra: list[str] = []  # secrets other than the key's (OIDC, metadata tokens)

            def on_secret(value: str) -> None:
                register_secret(value)
                extra.append(value)

            provider = build_provider(
                resolved.spec, session, environ=os.environ, on_secret=on_secret
            )
            if isinstance(provider, RefreshingProvider):
                stack.push_async_callback(provider.aclose)
            # Fetched now: a role that cannot be assumed fails before anything is sent.
            first = await provider.credentials()
            token = first.security_token
            secrets = (
                first.access_key_secret.reveal(),
                *((token.reveal(),) if token is not None else ()),
            )
            secrets += tuple(value for value in extra if value not in secrets)
            client = EcsClient(
                endpoint,
                session,
                provider,
                region_id=region,
                clock=clock,
                rate_limiter=RateLimiter(clock, rates),
                request_timeout=REQUEST_DEADLINE,
            )
            description = endpoint
        yield Connection(
            client=client,
            clock=clock,
            region=region,
            description=description,
            endpoint=endpoint,
            secrets=secrets,
        )
