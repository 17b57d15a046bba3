"""Credentials that last the whole run: a provider the client asks before every attempt.

`StaticProvider` holds keys that never change. `RefreshingProvider` holds temporary
credentials (STS, metadata, URI) and renews them before they expire:

- past the *prefetch* point (half the life, at most 15 minutes before expiry) the
  first caller starts one refresh in the background and every caller goes on signing
  with the current credentials: dispatch never waits for a refresh that is not due;
- past the *stale* point (a sixth of the life, at most 3 minutes before expiry) callers
  wait for the refresh, one fetch shared by all of them (single flight);
- `refreshed(stale)`, after a call was refused with InvalidSecurityToken.Expired (a
  clock skew, a revocation), fetches anew unless another caller already has.

Why our own providers rather than the official `alibabacloud-credentials` ones: its STS
calls hardcode `https://` and a host name, its metadata provider the host
100.100.100.200, and its async getters run on its own HTTP stack; ours go through the
client's aiohttp session and signer, to endpoints a setting names (so the simulator plays
STS, metadata and URI in the tests), and report every new secret to the log redactor.
The wire is the library's (tests/sdk checks that it obtains credentials from the
simulator unchanged).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, Protocol

import structlog

from orchestrator.errors import CredentialsError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from orchestrator.ecs._credentials import Credentials

_log = structlog.get_logger(__name__)
_MAX_PREFETCH: Final = timedelta(minutes=15)
_MAX_STALE: Final = timedelta(minutes=3)
_RETRY_AFTER: Final = timedelta(seconds=10)


def utc_now() -> datetime:
    """The wall clock expiries are told in."""
    return datetime.now(UTC)


class CredentialsProvider(Protocol):
    """What the client signs with: `credentials()` before each attempt."""

    @property
    def description(self) -> str:
        """What the credentials are (an access key id, a role), never a secret."""
        ...

    async def credentials(self) -> Credentials:
        """Credentials valid now (refreshed first if they are about to expire)."""
        ...

    async def refreshed(self, stale: Credentials) -> Credentials:
        """Credentials other than `stale`, which the endpoint refused as expired; the
        same ones when they cannot be renewed (static keys)."""
        ...


class StaticProvider:
    """Keys that do not change (AK, an StsToken profile, the environment's keys)."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    @property
    def description(self) -> str:
        """The access key id."""
        return self._credentials.access_key_id

    async def credentials(self) -> Credentials:
        """The keys."""
        return self._credentials

    async def refreshed(self, stale: Credentials) -> Credentials:  # noqa: ARG002 - the protocol
        """The same keys: nothing can renew them."""
        return self._credentials


@dataclass(frozen=True, slots=True)
class Temporary:
    """Credentials and the wall-clock moment they stop being accepted."""

    credentials: Credentials
    expires_at: datetime


class RefreshingProvider:
    """Temporary credentials, renewed ahead of expiry (module docstring).

    `fetch` obtains a new set; `on_new` is told of each (the CLI registers its secrets
    with the log redactor before anything can print them); `wall_clock` is injected for
    the tests of the timing.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[Temporary]],
        *,
        description: str,
        wall_clock: Callable[[], datetime] = utc_now,
        on_new: Callable[[Credentials], None] | None = None,
    ) -> None:
        self._fetch = fetch
        self._description = description
        self._wall_clock = wall_clock
        self._on_new = on_new
        self._current: Temporary | None = None
        self._prefetch_at = self._stale_at = datetime.min.replace(tzinfo=UTC)
        self._inflight: asyncio.Task[Temporary] | None = None
        self.refreshes = 0  # fetches that succeeded (for tests and logs)

    @property
    def description(self) -> str:
        """The role or service the credentials come from."""
        return self._description

    @property
    def expires_at(self) -> datetime | None:
        """When the current credentials expire (None before the first fetch)."""
        return None if self._current is None else self._current.expires_at

    async def credentials(self) -> Credentials:
        """Current credentials; waits only when they are stale or there are none."""
        now = self._wall_clock()
        current = self._current
        if current is None or now >= self._stale_at:
            return (await self._refresh()).credentials
        if now >= self._prefetch_at and self._running() is None:
            self._start()
        return current.credentials

    async def refreshed(self, stale: Credentials) -> Credentials:
        """New credentials after `stale` was refused (unless someone already renewed)."""
        if self._current is not None and self._current.credentials != stale:
            return self._current.credentials
        return (await self._refresh()).credentials

    async def aclose(self) -> None:
        """Cancel a refresh still running (the run is over)."""
        task, self._inflight = self._inflight, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, CredentialsError):
                await task

    async def _refresh(self) -> Temporary:
        task = self._running() or self._start()
        # Shielded: a caller cancelled while waiting must not cancel the fetch the
        # others share.
        return await asyncio.shield(task)

    def _running(self) -> asyncio.Task[Temporary] | None:
        # A task already done may not have run its done callback yet.
        task = self._inflight
        return task if task is not None and not task.done() else None

    def _start(self) -> asyncio.Task[Temporary]:
        task = asyncio.get_running_loop().create_task(self._fetch_and_keep())
        self._inflight = task
        task.add_done_callback(self._finished)
        return task

    async def _fetch_and_keep(self) -> Temporary:
        obtained_at = self._wall_clock()
        try:
            fresh = await self._fetch()
        except Exception as error:
            # Tried again by a caller past the retry point (or, once the credentials are
            # stale, by one that waits for the fetch and sees its error). The message
            # names the role and the refusal, never a secret.
            _log.warning("credentials.refresh_failed", source=self._description, error=str(error))
            self._prefetch_at = min(self._wall_clock() + _RETRY_AFTER, self._stale_at)
            raise
        if self._on_new is not None:
            self._on_new(fresh.credentials)
        life = max(fresh.expires_at - obtained_at, timedelta(0))
        self._prefetch_at = fresh.expires_at - min(life / 2, _MAX_PREFETCH)
        self._stale_at = fresh.expires_at - min(life / 6, _MAX_STALE)
        self._current = fresh
        self.refreshes += 1
        _log.info(
            "credentials.refreshed",
            source=self._description,
            expires_at=fresh.expires_at.isoformat(),
        )
        return fresh

    def _finished(self, task: asyncio.Task[Temporary]) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled():
            task.exception()  # retrieved: a background failure was logged in the task
