"""Sign ECS RPC requests, as pure functions: no I/O, no clock, no randomness.

Two schemes, both as the official SDKs compute them (`shared/reference/wire-format.md`,
and every signature in `shared/reference/captures` is recomputed by the tests):
RPC signature V1 (HMAC-SHA1 over the sorted query, carried in the `Signature` query
parameter) and V3 `ACS3-HMAC-SHA256` (a canonical request over query and headers,
carried in the `Authorization` header). The caller passes the timestamp and the
nonce, so a retry re-signs with fresh ones while the parameters stay identical.
Secrets arrive here as plain strings, revealed at the last moment by the caller, and
never leave in anything but a MAC.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import quote

if TYPE_CHECKING:
    from collections.abc import Mapping

V1_SIGNATURE_METHOD: Final = "HMAC-SHA1"
V1_SIGNATURE_VERSION: Final = "1.0"
V3_ALGORITHM: Final = "ACS3-HMAC-SHA256"
# Hex SHA-256 of the empty body: every call sends its parameters in the query.
EMPTY_BODY_SHA256: Final = hashlib.sha256(b"").hexdigest()


def percent_encode(value: str) -> str:
    """RFC 3986 encoding of UTF-8 `value`: only `A-Za-z0-9-_.~` stay as they are.

    So a space is `%20` (never `+`), `*` is `%2A`, `/` is `%2F` and `~` is kept, which is
    what both signature schemes hash.
    """
    return quote(value, safe="~", encoding="utf-8")


def format_timestamp(moment: datetime) -> str:
    """`yyyy-MM-ddTHH:mm:ssZ` in UTC, the form of `Timestamp` and `x-acs-date`."""
    if moment.tzinfo is None:
        raise ValueError("timestamp must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical_query(params: Mapping[str, str]) -> str:
    """Parameters sorted by name, each `pe(name)=pe(value)`, joined by `&`."""
    return "&".join(
        f"{percent_encode(key)}={percent_encode(params[key])}" for key in sorted(params)
    )


# --- V1: HMAC-SHA1 in the query ---------------------------------------------------------


def v1_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """`METHOD&%2F&pe(canonical query)`; a `Signature` parameter is left out."""
    unsigned = {key: value for key, value in params.items() if key != "Signature"}
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical_query(unsigned))}"


def v1_signature(method: str, params: Mapping[str, str], access_key_secret: str) -> str:
    """Base64(HMAC-SHA1(secret + "&", string to sign))."""
    digest = hmac.new(
        (access_key_secret + "&").encode(),
        v1_string_to_sign(method, params).encode(),
        hashlib.sha1,
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def sign_v1(
    *,
    action: str,
    version: str,
    params: Mapping[str, str],
    access_key_id: str,
    access_key_secret: str,
    security_token: str | None,
    timestamp: datetime,
    nonce: str,
    method: str = "POST",
) -> dict[str, str]:
    """The complete query of a V1-signed call: `params` plus the common ones and `Signature`."""
    signed = dict(params)
    signed.update(
        {
            "Action": action,
            "Version": version,
            "Format": "JSON",
            "AccessKeyId": access_key_id,
            "SignatureMethod": V1_SIGNATURE_METHOD,
            "SignatureVersion": V1_SIGNATURE_VERSION,
            "SignatureNonce": nonce,
            "Timestamp": format_timestamp(timestamp),
        }
    )
    if security_token:
        signed["SecurityToken"] = security_token
    signed["Signature"] = v1_signature(method, signed, access_key_secret)
    return signed


# --- V3: ACS3-HMAC-SHA256 in the Authorization header ------------------------------------


def v3_canonical_request(
    *,
    method: str,
    path: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    signed_headers: list[str],
    body_sha256: str,
) -> str:
    """Method, path, canonical query, `name:value` lines, the signed list, body hash."""
    lowered = {name.lower(): value for name, value in headers.items()}
    names = sorted(name.lower() for name in signed_headers)
    header_lines = "".join(f"{name}:{lowered[name].strip()}\n" for name in names)
    return "\n".join(
        (
            method.upper(),
            path,
            canonical_query(params),
            header_lines,
            ";".join(names),
            body_sha256,
        )
    )


def v3_signature(
    *,
    method: str,
    path: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    signed_headers: list[str],
    access_key_secret: str,
    body_sha256: str = EMPTY_BODY_SHA256,
) -> str:
    """Hex HMAC-SHA256(secret, `ACS3-HMAC-SHA256\\n` + hex SHA-256(canonical request))."""
    canonical = v3_canonical_request(
        method=method,
        path=path,
        params=params,
        headers=headers,
        signed_headers=signed_headers,
        body_sha256=body_sha256,
    )
    string_to_sign = f"{V3_ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return hmac.new(access_key_secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def sign_v3(
    *,
    action: str,
    version: str,
    host: str,
    params: Mapping[str, str],
    access_key_id: str,
    access_key_secret: str,
    security_token: str | None,
    timestamp: datetime,
    nonce: str,
    method: str = "POST",
    extra_headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The headers of a V3-signed call whose query is `params` and whose body is empty.

    Every header returned is signed (the Tea SDK signs host, accept, user-agent and all
    `x-acs-*`); `extra_headers` (say a user-agent) are added and signed too. Headers the
    HTTP library adds later (Content-Length, Accept-Encoding) stay unsigned, as in the SDK.
    """
    headers = {
        "host": host,
        "accept": "application/json",
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": format_timestamp(timestamp),
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": EMPTY_BODY_SHA256,
    }
    if security_token:
        headers["x-acs-security-token"] = security_token
    for name, value in (extra_headers or {}).items():
        headers[name.lower()] = value
    names = sorted(headers)
    signature = v3_signature(
        method=method,
        path="/",
        params=params,
        headers=headers,
        signed_headers=names,
        access_key_secret=access_key_secret,
    )
    headers["Authorization"] = (
        f"{V3_ALGORITHM} Credential={access_key_id},"
        f"SignedHeaders={';'.join(names)},Signature={signature}"
    )
    return headers


def sign_call(
    signature_version: Literal["v1", "v3"],
    *,
    action: str,
    version: str,
    host: str,
    params: Mapping[str, str],
    access_key_id: str,
    access_key_secret: str,
    security_token: str | None,
    timestamp: datetime,
    nonce: str,
    user_agent: str,
) -> tuple[Mapping[str, str], Mapping[str, str]]:
    """(query, headers) of a call signed with `signature_version`: V1 signs the query,
    V3 the headers (the query is `params` as given)."""
    if signature_version == "v1":
        query = sign_v1(
            action=action,
            version=version,
            params=params,
            access_key_id=access_key_id,
            access_key_secret=access_key_secret,
            security_token=security_token,
            timestamp=timestamp,
            nonce=nonce,
        )
        return query, {"accept": "application/json", "user-agent": user_agent}
    headers = sign_v3(
        action=action,
        version=version,
        host=host,
        params=params,
        access_key_id=access_key_id,
        access_key_secret=access_key_secret,
        security_token=security_token,
        timestamp=timestamp,
        nonce=nonce,
        extra_headers={"user-agent": user_agent},
    )
    return params, headers
