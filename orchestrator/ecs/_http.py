"""Send one signed ECS request over aiohttp and turn the answer into a dict or an error.

This is the only module of `orchestrator.ecs` that imports aiohttp. The request is
what the official SDKs send: POST to `/` with every parameter in the URL query string
and an empty body (wire-format.md). The query is encoded here, byte for byte, with the
signer's own RFC 3986 encoding, so what the server decodes is exactly what was signed.
A non-2xx answer becomes the `ApiError` subclass that `codes.kind_of` names; anything
that stops an answer from arriving becomes a `TransportError`. No error text holds the
query (it carries the signature, and with V1 an STS token): messages name only the
endpoint's scheme, host and port.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from yarl import URL

from orchestrator.ecs import codes
from orchestrator.ecs._signing import percent_encode
from orchestrator.errors import (
    ApiError,
    AuthError,
    Forbidden,
    IdempotencyMismatch,
    IdempotentProcessing,
    InvalidParameter,
    NotFound,
    QuotaExceeded,
    ServerError,
    Throttled,
    TransportError,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

# The session type callers hand to EcsClient, so no other module needs aiohttp itself.
Session = aiohttp.ClientSession

ERROR_CLASSES: Final[Mapping[codes.ErrorKind, type[ApiError]]] = {
    codes.ErrorKind.THROTTLED: Throttled,
    codes.ErrorKind.SERVER: ServerError,
    codes.ErrorKind.IN_PROGRESS: IdempotentProcessing,
    codes.ErrorKind.AUTH: AuthError,
    codes.ErrorKind.QUOTA: QuotaExceeded,
    codes.ErrorKind.IDEMPOTENCY_MISMATCH: IdempotencyMismatch,
    codes.ErrorKind.NOT_FOUND: NotFound,
    codes.ErrorKind.FORBIDDEN: Forbidden,
    codes.ErrorKind.INVALID: InvalidParameter,
}

_QUERY: Final = re.compile(r"\?\S*")
_TOO_MANY_REQUESTS: Final = 429
_SERVER_ERROR: Final = 500


def api_error(
    *, code: str, message: str, request_id: str, http_status: int, action: str
) -> ApiError:
    """The error class `code` (with `http_status`) belongs to, filled in."""
    cls = ERROR_CLASSES[codes.kind_of(code, http_status)]
    return cls(code, message, request_id=request_id, http_status=http_status, action=action)


def error_from_response(status: int, reason: str, body: bytes, *, action: str) -> ApiError:
    """The error a non-2xx answer stands for.

    A JSON body gives `Code`, `Message`, `RequestId` (the Tea SDK also reads the
    lower-case keys). A body that is not JSON (a proxy's HTML page, a cut answer) is
    classed by its status: 5xx → `InternalError`, 429 → `Throttling`, otherwise the
    status text, so a gateway's 5xx is retried like the service's own.
    """
    document = _json_object(body)
    if document is not None and (document.get("Code") or document.get("code")):
        return api_error(
            code=str(document.get("Code") or document.get("code")),
            message=str(document.get("Message") or document.get("message") or ""),
            request_id=str(document.get("RequestId") or document.get("requestId") or ""),
            http_status=status,
            action=action,
        )
    if status >= _SERVER_ERROR:
        code = "InternalError"
    elif status == _TOO_MANY_REQUESTS:
        code = "Throttling"
    else:
        code = reason.replace(" ", "") or f"HTTP{status}"
    return api_error(
        code=code,
        message=f"HTTP {status} {reason} with a body that is not a JSON error",
        request_id="",
        http_status=status,
        action=action,
    )


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return document if isinstance(document, dict) else None


def encode_query(params: Mapping[str, str]) -> str:
    """`k=v&…` with RFC 3986 encoding (space `%20`, `+` `%2B`), in the given order."""
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in params.items())


class HttpSender:
    """Sends signed requests to one endpoint on a caller-owned aiohttp session.

    `request_timeout` (seconds) bounds each request's I/O as an aiohttp ClientTimeout;
    None leaves the session's own timeout in force.
    """

    def __init__(
        self, session: Session, endpoint: str, *, request_timeout: float | None = None
    ) -> None:
        url = URL(endpoint)
        if url.scheme not in {"http", "https"} or not url.host:
            raise ValueError(f"endpoint must be an http(s) URL with a host, got {endpoint!r}")
        if url.path not in {"", "/"} or url.query_string or url.fragment:
            raise ValueError(f"endpoint must have no path, query or fragment: {endpoint!r}")
        self._session = session
        self._origin = url.origin()
        self._timeout = (
            aiohttp.ClientTimeout(total=request_timeout) if request_timeout is not None else None
        )

    @property
    def endpoint(self) -> str:
        """`scheme://host[:port]`, safe to show."""
        return str(self._origin)

    @property
    def host(self) -> str:
        """The Host header value: the host, with the port when it is not the default."""
        host = self._origin.host or ""
        return host if self._origin.is_default_port() else f"{host}:{self._origin.port}"

    async def send(
        self, action: str, query: Mapping[str, str], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        """POST `/?query` with `headers` and an empty body; the JSON object answered."""
        url = self._origin.with_path("/").with_query(None)
        url = URL(f"{url}?{encode_query(query)}", encoded=True)
        # Host is sent as signed (V3 signs it) instead of whatever aiohttp would derive.
        all_headers = {"Host": self.host, **headers}
        timeout = self._timeout if self._timeout is not None else self._session.timeout
        try:
            async with self._session.post(
                url,
                headers=all_headers,
                allow_redirects=False,  # a redirect would replay a signed request elsewhere
                timeout=timeout,
            ) as response:
                body = await response.read()
                status, reason = response.status, response.reason or ""
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransportError(self._describe(action, exc)) from exc
        if not 200 <= status < 300:  # noqa: PLR2004
            raise error_from_response(status, reason, body, action=action)
        document = _json_object(body)
        if document is None:
            raise ServerError(
                "InvalidResponse",
                f"HTTP {status} with a body that is not a JSON object",
                http_status=status,
                action=action,
            )
        return document

    def _describe(self, action: str, exc: BaseException) -> str:
        detail = _QUERY.sub("?…", str(exc)) if str(exc) else ""
        kind = type(exc).__name__
        return f"{action}: {kind} talking to {self.endpoint}" + (f": {detail}" if detail else "")
