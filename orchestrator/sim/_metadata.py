"""The two plain-HTTP credential services a CI job may read a role's credentials from:
the ECS instance metadata service (the paths EcsRamRole reads, IMDSv2 token included)
and a credentials URI (what `ALIBABA_CLOUD_CREDENTIALS_URI` points at).

Both hand out fresh credentials of the fleet's `sts.instance_role` / `sts.uri_role`,
issued by the simulated STS (so they expire like any other), and both answer only
loopback callers, as the real metadata service answers only its own instance. The
answer shapes are the official library's (provider/ecs_ram_role.py, provider/uri.py):
`Code: Success`, `AccessKeyId`, `AccessKeySecret`, `SecurityToken`, `Expiration`.
"""

from __future__ import annotations

import ipaddress
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Final

from aiohttp import web

if TYPE_CHECKING:
    from orchestrator.sim._auth import WallClock
    from orchestrator.sim._stats import Stats
    from orchestrator.sim._sts import StsService
    from orchestrator.sim._sts_fleet import StsSpec

METADATA_CREDENTIALS_PATH: Final = "/latest/meta-data/ram/security-credentials/"
METADATA_TOKEN_PATH: Final = "/latest/api/token"  # noqa: S105 (a path)
CREDENTIALS_URI_PATH: Final = "/_sim/credentials-uri"
TOKEN_TTL_HEADER: Final = "X-aliyun-ecs-metadata-token-ttl-seconds"  # noqa: S105 (a name)
TOKEN_HEADER: Final = "X-aliyun-ecs-metadata-token"  # noqa: S105 (a name)
_MAX_TOKEN_TTL: Final = 21_600  # the metadata service's documented maximum


class CredentialServices:
    """The metadata and URI routes over one `StsService`."""

    def __init__(
        self, sts: StsService, spec: StsSpec, *, stats: Stats, wall_clock: WallClock
    ) -> None:
        self._sts = sts
        self._spec = spec
        self._stats = stats
        self._wall_clock = wall_clock
        self._tokens: dict[str, float] = {}  # IMDSv2 token -> expiry (POSIX seconds)

    @property
    def tokens(self) -> list[str]:
        """The IMDSv2 tokens handed out (secrets: tests hunt them in every output)."""
        return list(self._tokens)

    def add_routes(self, app: web.Application) -> None:
        """Register the routes on the simulator's app."""
        app.router.add_put(METADATA_TOKEN_PATH, self._token)
        app.router.add_get(METADATA_CREDENTIALS_PATH, self._role_name)
        app.router.add_get(METADATA_CREDENTIALS_PATH + "{role}", self._role_credentials)
        app.router.add_get(CREDENTIALS_URI_PATH, self._uri)

    async def _token(self, request: web.Request) -> web.Response:
        _loopback_only(request)
        try:
            ttl = int(request.headers.get(TOKEN_TTL_HEADER, ""))
        except ValueError:
            ttl = 0
        if not 1 <= ttl <= _MAX_TOKEN_TTL:
            raise web.HTTPBadRequest(text=f"{TOKEN_TTL_HEADER} must be 1..{_MAX_TOKEN_TTL}")
        token = secrets.token_urlsafe(32)
        self._tokens[token] = (self._wall_clock() + timedelta(seconds=ttl)).timestamp()
        return web.Response(text=token)

    def _check_token(self, request: web.Request) -> None:
        # IMDSv1 (no token) is accepted, as on an instance that has not enforced v2;
        # a token that is sent must be one we issued and still valid.
        token = request.headers.get(TOKEN_HEADER)
        if token is None:
            return
        expiry = self._tokens.get(token)
        if expiry is None or expiry <= self._wall_clock().timestamp():
            raise web.HTTPUnauthorized

    async def _role_name(self, request: web.Request) -> web.Response:
        _loopback_only(request)
        self._check_token(request)
        if self._spec.instance_role is None:
            raise web.HTTPNotFound
        return web.Response(text=self._spec.instance_role)

    async def _role_credentials(self, request: web.Request) -> web.Response:
        _loopback_only(request)
        self._check_token(request)
        role = request.match_info["role"]
        if role != self._spec.instance_role:
            raise web.HTTPNotFound
        self._stats.record("MetadataCredentials", "ok")
        return self._credentials(role)

    async def _uri(self, request: web.Request) -> web.Response:
        _loopback_only(request)
        if self._spec.uri_role is None:
            raise web.HTTPNotFound
        self._stats.record("CredentialsURI", "ok")
        return self._credentials(self._spec.uri_role)

    def _credentials(self, role: str) -> web.Response:
        issued = self._sts.issue(role)
        now = self._wall_clock().strftime("%Y-%m-%dT%H:%M:%SZ")
        return web.json_response({"Code": "Success", "LastUpdated": now, **issued.answer})


def _loopback_only(request: web.Request) -> None:
    try:
        loopback = request.remote is not None and ipaddress.ip_address(request.remote).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise web.HTTPNotFound
