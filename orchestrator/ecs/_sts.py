"""STS, the service temporary credentials of a RAM role come from: AssumeRole (signed
with the caller's own credentials) and AssumeRoleWithOIDC (unsigned: the OIDC token is
the proof), over the same RPC wire and `HttpSender` as the ECS calls.

The requests are the official credentials library's (provider/ram_role_arn.py,
oidc.py): Version 2015-04-01, V1 signature, `RoleArn`, `RoleSessionName`,
`DurationSeconds`; the library sends GET, we send POST with the same query, which RPC
APIs accept alike. The endpoint is `ALIBABA_CLOUD_STS_ENDPOINT` (a host, as the aliyun
CLI and ACK RRSA set it, or a whole URL such as the simulator's `http://127.0.0.1:PORT`),
else `sts.<sts_region>.aliyuncs.com`, else `sts.aliyuncs.com`, over HTTPS.

A refusal is a `CredentialsError` naming the role, the endpoint and STS's code and
message; no error holds the request (its signature, the caller's token, the OIDC token).
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import anyio

from orchestrator import api
from orchestrator.clock import SystemClock
from orchestrator.ecs._credentials import Credentials
from orchestrator.ecs._http import Answer, HttpSender, one_line
from orchestrator.ecs._providers import Temporary, utc_now
from orchestrator.ecs._retry import RetryPolicy, retry_call
from orchestrator.ecs._signing import format_timestamp, sign_v1
from orchestrator.errors import ApiError, CredentialsError, TransportError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping
    from pathlib import Path

    from orchestrator.ecs._http import Session
    from orchestrator.ecs._providers import CredentialsProvider

ENV_STS_ENDPOINT: Final = "ALIBABA_CLOUD_STS_ENDPOINT"
ENV_STS_REGION: Final = "ALIBABA_CLOUD_STS_REGION"
ENV_VPC_ENDPOINT_ENABLED: Final = "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED"
DEFAULT_STS_HOST: Final = "sts.aliyuncs.com"
_TIMEOUT: Final = 20.0  # seconds, the deadline of an ECS attempt too
_RETRY: Final = RetryPolicy()
_SYSTEM_CLOCK: Final = SystemClock()
_JITTER: Final = random.Random()  # noqa: S311 - backoff jitter, not a secret
_EXPIRATION_FORMATS: Final = ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ")


def sts_endpoint(environ: Mapping[str, str], sts_region: str | None = None) -> str:
    """The STS endpoint URL (module docstring), as the official tools choose it."""
    given = environ.get(ENV_STS_ENDPOINT, "").strip()
    if given:
        return given.rstrip("/") if "://" in given else f"https://{given}"
    prefix = "sts-vpc" if environ.get(ENV_VPC_ENDPOINT_ENABLED, "").lower() == "true" else "sts"
    region = sts_region or environ.get(ENV_STS_REGION) or ""
    return f"https://{prefix}.{region}.aliyuncs.com" if region else f"https://{DEFAULT_STS_HOST}"


def temporary_from(document: object, *, what: str) -> Temporary:
    """Credentials and expiry from an answer's credentials object (STS's `Credentials`,
    the metadata service's or a credentials URI's whole answer)."""
    fields: Mapping[str, Any] = document if isinstance(document, dict) else {}
    values = [fields.get(k) for k in ("AccessKeyId", "AccessKeySecret", "SecurityToken")]
    expiration = fields.get("Expiration")
    if not all(isinstance(v, str) and v for v in values) or not isinstance(expiration, str):
        # The answer is not quoted: it may hold a secret.
        raise CredentialsError(f"{what}: the answer holds no complete credentials")
    key_id, secret, token = (str(v) for v in values)
    for fmt in _EXPIRATION_FORMATS:
        try:
            expires_at = datetime.strptime(expiration, fmt).replace(tzinfo=UTC)
            break
        except ValueError:
            continue
    else:
        raise CredentialsError(f"{what}: Expiration {one_line(expiration, 40)!r} is not a time")
    return Temporary(Credentials.of(key_id, secret, token), expires_at)


async def assume_role(
    session: Session,
    *,
    endpoint: str,
    base: CredentialsProvider,
    role_arn: str,
    session_name: str,
    duration_seconds: int,
    external_id: str | None = None,
    policy: str | None = None,
    wall_clock: Callable[[], datetime] = utc_now,
) -> Temporary:
    """AssumeRole `role_arn`, signed with what `base` gives now."""
    params = {
        "RoleArn": role_arn,
        "RoleSessionName": session_name,
        "DurationSeconds": str(duration_seconds),
    }
    if external_id:
        params["ExternalId"] = external_id
    if policy:
        params["Policy"] = policy

    async def signed() -> Mapping[str, str]:
        # Signed afresh for every attempt: a retry with the same nonce would be refused.
        creds = await base.credentials()
        token = creds.security_token.reveal() if creds.security_token is not None else None
        return sign_v1(
            action="AssumeRole",
            version=api.STS_API_VERSION,
            params=params,
            access_key_id=creds.access_key_id,
            access_key_secret=creds.access_key_secret.reveal(),
            security_token=token,
            timestamp=wall_clock(),
            nonce=uuid.uuid4().hex,
        )

    answer = await _send(session, endpoint, "AssumeRole", signed, role_arn)
    return temporary_from(answer.get("Credentials"), what=f"AssumeRole of {role_arn}")


async def assume_role_with_oidc(
    session: Session,
    *,
    endpoint: str,
    role_arn: str,
    provider_arn: str,
    token_file: Path,
    session_name: str,
    duration_seconds: int,
    policy: str | None = None,
    on_token: Callable[[str], None] | None = None,
    wall_clock: Callable[[], datetime] = utc_now,
) -> Temporary:
    """AssumeRoleWithOIDC `role_arn` with the token now in `token_file` (re-read at
    every call: CI runners and ACK RRSA rotate it). `on_token` is told the token
    before it is sent, so the log redactor knows it."""
    try:
        oidc_token = (await anyio.Path(token_file).read_text(encoding="utf-8")).strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise CredentialsError(f"cannot read the OIDC token file {token_file}: {reason}") from None
    if not oidc_token:
        raise CredentialsError(f"the OIDC token file {token_file} is empty")
    if on_token is not None:
        on_token(oidc_token)
    params = {
        "Action": "AssumeRoleWithOIDC",
        "Version": api.STS_API_VERSION,
        "Format": "JSON",
        "RoleArn": role_arn,
        "OIDCProviderArn": provider_arn,
        "OIDCToken": oidc_token,
        "RoleSessionName": session_name,
        "DurationSeconds": str(duration_seconds),
    }
    if policy:
        params["Policy"] = policy

    async def unsigned() -> Mapping[str, str]:
        return params | {"Timestamp": format_timestamp(wall_clock())}

    answer = await _send(session, endpoint, "AssumeRoleWithOIDC", unsigned, role_arn)
    return temporary_from(answer.get("Credentials"), what=f"AssumeRoleWithOIDC of {role_arn}")


async def _send(
    session: Session,
    endpoint: str,
    action: str,
    query: Callable[[], Awaitable[Mapping[str, str]]],
    role_arn: str,
) -> Mapping[str, Any]:
    """One STS call, retried as the ECS calls are when STS throttles, fails (5xx) or
    the answer is lost: assuming a role twice only issues a second session."""
    try:
        sender = HttpSender(session, endpoint, request_timeout=_TIMEOUT)
    except ValueError as exc:
        raise CredentialsError(f"{ENV_STS_ENDPOINT}: {exc}") from None
    headers = {"accept": "application/json", "user-agent": "orchestrator"}

    async def attempt() -> Answer:
        return await sender.send(action, await query(), headers)

    try:
        answer = await retry_call(
            attempt,
            policy=_RETRY,
            clock=_SYSTEM_CLOCK,
            rng=_JITTER,
            action=action,
        )
    except ApiError as exc:
        raise CredentialsError(
            f"{action} of {role_arn} refused by {sender.endpoint}: {exc.code}: {exc.message}"
        ) from None
    except TransportError as exc:
        raise CredentialsError(f"{action} of {role_arn}: {exc}") from None
    return answer.document
