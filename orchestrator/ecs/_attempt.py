"""One attempt of an ECS call: wait for the rate limiter, take the credentials the
provider holds now, sign (fresh nonce and timestamp), send, and tell the limiter how it
went. A refusal for an expired token is sent once more with fresh credentials: the
endpoint authenticates before it acts, so even a RunCommand without a ClientToken
cannot run twice. A provider that cannot renew its credentials makes the attempt an
`AuthError` of our own code, with nothing sent: a refusal, never a maybe-lost call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal

from orchestrator import api
from orchestrator.ecs._signing import sign_call
from orchestrator.errors import ApiError, AuthError, CredentialsError, Throttled

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping
    from datetime import datetime

    from orchestrator.ecs._credentials import Credentials
    from orchestrator.ecs._http import Answer, HttpSender
    from orchestrator.ecs._providers import CredentialsProvider
    from orchestrator.ecs._ratelimit import RateLimiter

USER_AGENT: Final = "orchestrator/0.1.0"
EXPIRED_TOKEN: Final = "InvalidSecurityToken.Expired"  # noqa: S105 (a code)
CREDENTIALS_UNAVAILABLE: Final = "Credentials.Unavailable"  # ours: no call was sent


class Attempts:
    """Sends single attempts for `EcsClient` (which retries them by its policy)."""

    def __init__(
        self,
        http: HttpSender,
        provider: CredentialsProvider,
        *,
        signature_version: Literal["v1", "v3"],
        nonce_factory: Callable[[], str],
        wall_clock: Callable[[], datetime],
        rate_limiter: RateLimiter | None,
    ) -> None:
        self._http = http
        self.provider = provider
        self._signature_version = signature_version
        self._nonce_factory = nonce_factory
        # The endpoint checks the signed timestamp against real time (15 min skew), so
        # signing reads the wall clock, not the policy clock that paces retries.
        self._wall_clock = wall_clock
        self._limiter = rate_limiter

    async def attempt(
        self, action: str, params: Mapping[str, str], *, may_send: Callable[[], None]
    ) -> Answer:
        """One attempt; `may_send` is called after the rate-limit wait, just before the
        attempt leaves (it raises to withdraw the call)."""
        if self._limiter is not None:
            await self._limiter.acquire(action)
        may_send()
        creds = await self._credentials(action, self.provider.credentials())
        try:
            return await self._send(action, params, creds)
        except AuthError as exc:
            if exc.code != EXPIRED_TOKEN:
                raise
            fresh = await self._credentials(action, self.provider.refreshed(creds))
            if fresh == creds:
                raise  # fixed keys: nothing can renew them
            if self._limiter is not None:
                await self._limiter.acquire(action)
            return await self._send(action, params, fresh)

    @staticmethod
    async def _credentials(action: str, getting: Awaitable[Credentials]) -> Credentials:
        try:
            return await getting
        except CredentialsError as exc:
            raise AuthError(CREDENTIALS_UNAVAILABLE, str(exc), action=action) from None

    async def _send(self, action: str, params: Mapping[str, str], creds: Credentials) -> Answer:
        limiter = self._limiter
        token = creds.security_token.reveal() if creds.security_token is not None else None
        query, headers = sign_call(  # after the wait: a fresh timestamp
            self._signature_version,
            action=action,
            version=api.API_VERSION,
            host=self._http.host,
            params=params,
            access_key_id=creds.access_key_id,
            access_key_secret=creds.access_key_secret.reveal(),
            security_token=token,
            timestamp=self._wall_clock(),
            nonce=self._nonce_factory(),
            user_agent=USER_AGENT,
        )
        try:
            answer = await self._http.send(action, query, headers)
        except Throttled:
            if limiter is not None:
                limiter.throttled(action)
            raise
        except ApiError:
            # Any other answer shows the endpoint is not throttling us.
            if limiter is not None:
                limiter.succeeded(action)
            raise
        if limiter is not None:
            limiter.succeeded(action)
        return answer
