"""Run the simulator: compose a fleet's `Simulation` (the domain) with the wire app, and
serve it on a real socket.

`serve()` is an async context manager yielding a `RunningSimulator` (its URL, the key
pair to sign with, the fault controller, the stats); `run_forever()` is what the CLI
runs. Port 0 binds any free port, read back from the socket once bound, so nothing can
take it in between.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import anyio
from aiohttp import web

from orchestrator.clock import Clock, ScaledClock
from orchestrator.sim._app import create_app
from orchestrator.sim._auth import KeyStore, utc_now
from orchestrator.sim._faults import Faults
from orchestrator.sim._metadata import CredentialServices
from orchestrator.sim._simulation import Simulation
from orchestrator.sim._spec import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, KeySpec
from orchestrator.sim._stats import Stats
from orchestrator.sim._sts import StsService
from orchestrator.sim._throttle import Throttle

if TYPE_CHECKING:
    import ssl
    from collections.abc import AsyncIterator, Callable

    from orchestrator.sim._fleet import FleetSpec

# A stalled answer is released at shutdown; this only bounds a handler that hangs.
_SHUTDOWN_TIMEOUT: Final = 5.0


@dataclass(frozen=True, slots=True)
class RunningSimulator:
    """A simulator serving on `url`. Sign requests with `access_key_id` and
    `access_key_secret` (the first key of the fleet). With an SSL context, the same
    app (ECS, STS, metadata, URI) is served over HTTPS too, on `https_url`."""

    url: str
    access_key_id: str
    _access_key_secret: str = field(repr=False)
    region: str
    simulation: Simulation = field(repr=False)
    faults: Faults = field(repr=False)
    throttle: Throttle = field(repr=False)
    stats: Stats = field(repr=False)
    keys: KeyStore = field(repr=False)
    sts: StsService = field(repr=False)
    credential_services: CredentialServices = field(repr=False)
    https_url: str | None = None

    @property
    def access_key_secret(self) -> str:
        """The secret of `access_key_id`."""
        return self._access_key_secret

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return int(self.url.rsplit(":", 1)[1])

    def issue_sts(self, ttl_seconds: float) -> KeySpec:
        """An STS credential the simulator accepts for `ttl_seconds` of wall time."""
        return self.keys.issue_sts(ttl_seconds)

    def revoke_sts(self, access_key_id: str) -> None:
        """Revoke an STS credential: it is refused with 403 TemporaryAccessKey.Error."""
        self.keys.revoke(access_key_id)


@asynccontextmanager
async def serve(
    fleet: FleetSpec,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Clock | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[RunningSimulator]:
    """Serve `fleet` on `host:port` until the block exits; with `ssl_context`, over
    HTTPS as well, on another free port (STS clients such as the official credentials
    library speak only HTTPS)."""
    sim_clock: Clock = clock if clock is not None else ScaledClock(fleet.time_scale)
    key_specs = fleet.keys or (KeySpec(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),)
    # Signatures are checked against real wall time: clients sign with it, not with the
    # scaled simulation clock.
    keys = KeyStore(key_specs, wall_clock=utc_now)
    faults = Faults(fleet.faults)
    throttle = Throttle(fleet.throttle, sim_clock)
    stats = Stats()
    sts = StsService(fleet.sts, account_id=fleet.account_id, keys=keys, wall_clock=utc_now)
    services = CredentialServices(sts, fleet.sts, stats=stats, wall_clock=utc_now)
    async with Simulation(fleet, sim_clock) as simulation:
        app = create_app(
            {**simulation.handlers, **sts.handlers},
            keys=keys,
            throttle=throttle,
            faults=faults,
            clock=sim_clock,
            wall_clock=utc_now,
            region=fleet.region,
            executions=simulation.execution_counts,
            stats=stats,
            credential_services=services,
        )
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
            bound_host, bound_port = runner.addresses[0][:2]
            url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
            https_url = None
            if ssl_context is not None:
                await web.TCPSite(runner, host, 0, ssl_context=ssl_context).start()
                https_url = f"https://{url_host}:{runner.addresses[1][1]}"
            yield RunningSimulator(
                url=f"http://{url_host}:{bound_port}",
                access_key_id=key_specs[0].access_key_id,
                _access_key_secret=key_specs[0].access_key_secret,
                region=fleet.region,
                simulation=simulation,
                faults=faults,
                throttle=throttle,
                stats=stats,
                keys=keys,
                sts=sts,
                credential_services=services,
                https_url=https_url,
            )
        finally:
            with anyio.CancelScope(shield=True):
                await runner.cleanup()


async def run_forever(
    fleet: FleetSpec,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    print_fn: Callable[[str], object] = print,
) -> None:
    """Serve `fleet` until cancelled, after printing where and with which key."""
    async with serve(fleet, host=host, port=port) as sim:
        print_fn(f"ECS API simulator listening on {sim.url} (region {sim.region})")
        print_fn(f"access key id: {sim.access_key_id}")
        # Only the documented default secret may be printed: it is public by design.
        if (sim.access_key_id, sim.access_key_secret) == (
            DEFAULT_ACCESS_KEY_ID,
            DEFAULT_ACCESS_KEY_SECRET,
        ):
            print_fn(f"access key secret: {DEFAULT_ACCESS_KEY_SECRET} (the public default)")
        else:
            print_fn("access key secret: the one in the fleet file")
        if fleet.sts.roles:
            print_fn(
                f"STS (AssumeRole, AssumeRoleWithOIDC), the metadata service and "
                f"{sim.url}/_sim/credentials-uri: same URL (ALIBABA_CLOUD_STS_ENDPOINT={sim.url})"
            )
        await anyio.sleep_forever()
