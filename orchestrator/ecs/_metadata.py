"""Credentials read over plain HTTP GET: the ECS instance metadata service (a RAM role
attached to the instance the job runs on) and a credentials URI.

The paths and answers are the official library's (provider/ecs_ram_role.py, uri.py):
an IMDSv2 token from `PUT /latest/api/token` (falling back to IMDSv1 when the service
gives none, as the library does unless told not to), the role name from
`/latest/meta-data/ram/security-credentials/`, the role's credentials from that path +
the name; a URI answers `{"Code": "Success", "AccessKeyId": ..., "Expiration": ...}`.
The metadata endpoint is `ORCHESTRATOR_ECS_METADATA_ENDPOINT` (the official tools have
no setting for it; the real service is http://100.100.100.200). Errors name the URL
without its query (a URI may carry a token there); answers are never quoted.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final

import aiohttp
from yarl import URL

from orchestrator.ecs._sts import temporary_from
from orchestrator.errors import CredentialsError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from orchestrator.ecs._http import Session
    from orchestrator.ecs._providers import Temporary

ENV_METADATA_ENDPOINT: Final = "ORCHESTRATOR_ECS_METADATA_ENDPOINT"
DEFAULT_METADATA_ENDPOINT: Final = "http://100.100.100.200"
_CREDENTIALS_PATH: Final = "/latest/meta-data/ram/security-credentials/"
_TOKEN_PATH: Final = "/latest/api/token"  # noqa: S105 (a path)
_TOKEN_TTL: Final = "21600"  # noqa: S105 - seconds: the token's longest life, as the library asks
_TIMEOUT: Final = aiohttp.ClientTimeout(total=10)
_MAX_ANSWER: Final = 64 * 1024
_OK: Final = 200


def metadata_endpoint(environ: Mapping[str, str]) -> str:
    """Where the instance metadata service is (module docstring)."""
    return environ.get(ENV_METADATA_ENDPOINT, "").strip().rstrip("/") or DEFAULT_METADATA_ENDPOINT


async def from_metadata(
    session: Session,
    *,
    endpoint: str,
    role_name: str | None,
    on_secret: Callable[[str], None] | None = None,
) -> Temporary:
    """The credentials of the instance's RAM role `role_name` (None: the one attached)."""
    base = URL(endpoint)
    headers: dict[str, str] = {}
    status, token = await _request(
        session,
        "PUT",
        base.with_path(_TOKEN_PATH),
        {"X-aliyun-ecs-metadata-token-ttl-seconds": _TOKEN_TTL},
    )
    if status == _OK and token:
        if on_secret is not None:
            on_secret(token)
        headers["X-aliyun-ecs-metadata-token"] = token
    name = role_name
    if not name:
        status, text = await _request(session, "GET", base.with_path(_CREDENTIALS_PATH), headers)
        name = text.strip() if status == _OK else ""
        if not name:
            raise CredentialsError(
                f"the metadata service at {base} names no RAM role of this instance "
                f"(HTTP {status}); attach one, or name it in ALIBABA_CLOUD_ECS_METADATA"
            )
    url = base.with_path(_CREDENTIALS_PATH + name)
    status, text = await _request(session, "GET", url, headers)
    what = f"RAM role {name} from the metadata service at {base}"
    if status != _OK:
        raise CredentialsError(f"{what}: HTTP {status}")
    return _parse(text, what)


async def from_uri(session: Session, *, url: str) -> Temporary:
    """The credentials a credentials URI answers."""
    target = URL(url)
    shown = str(target.with_query(None).with_fragment(None))
    if target.scheme not in {"http", "https"} or not target.host:
        raise CredentialsError(f"the credentials URI {shown} is not an http(s) URL")
    status, text = await _request(session, "GET", target, {})
    what = f"the credentials URI {shown}"
    if status != _OK:
        raise CredentialsError(f"{what}: HTTP {status}")
    return _parse(text, what)


def _parse(text: str, what: str) -> Temporary:
    try:
        document = json.loads(text)
    except ValueError:
        raise CredentialsError(f"{what}: the answer is not JSON") from None
    if not isinstance(document, dict) or document.get("Code", "Success") != "Success":
        raise CredentialsError(f"{what}: the answer does not say Success")
    return temporary_from(document, what=what)


async def _request(
    session: Session, method: str, url: URL, headers: Mapping[str, str]
) -> tuple[int, str]:
    """(status, body text) of one request; a transport failure is a CredentialsError."""
    shown = str(url.with_query(None))
    try:
        async with session.request(
            method, url, headers=headers, timeout=_TIMEOUT, allow_redirects=False
        ) as response:
            body = await response.content.read(_MAX_ANSWER + 1)
            if len(body) > _MAX_ANSWER:
                raise CredentialsError(f"{shown}: the answer is larger than {_MAX_ANSWER} bytes")
            return response.status, body.decode("utf-8", "replace")
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise CredentialsError(f"cannot reach {shown}: {type(exc).__name__}") from None
