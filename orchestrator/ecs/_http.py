"""Send one signed ECS request over aiohttp and turn the answer into a dict or an error.

This is the only module of `orchestrator.ecs` that imports aiohttp. The request is
what the official SDKs send: POST to `/` with every parameter in the URL query string
and an empty body (wire-format.md). The query is encoded here, byte for byte, with the
signer's own RFC 3986 encoding, so what the server decodes is exactly what was signed.
A non-2xx answer becomes the `ApiError` subclass that `api.kind_of` names; anything
that stops an answer from arriving (the attempt's deadline included) becomes a
`TransportError`; a 2xx answer that is not a JSON object, or is larger than the cap,
becomes a `MalformedResponse`. Every message is one line, whatever the endpoint sent.
No error text holds the query (it carries the signature, and with V1 an STS token):
messages name only the endpoint's scheme, host and port.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import anyio
from yarl import URL

from orchestrator import api
from orchestrator.ecs._signing import percent_encode
from orchestrator.errors import (
    ApiError,
    AuthError,
    Forbidden,
    IdempotencyMismatch,
    IdempotentProcessing,
    InvalidParameter,
    MalformedResponse,
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

ERROR_CLASSES: Final[Mapping[api.ErrorKind, type[ApiError]]] = {
    api.ErrorKind.THROTTLED: Throttled,
    api.ErrorKind.SERVER: ServerError,
    api.ErrorKind.IN_PROGRESS: IdempotentProcessing,
    api.ErrorKind.AUTH: AuthError,
    api.ErrorKind.QUOTA: QuotaExceeded,
    api.ErrorKind.IDEMPOTENCY_MISMATCH: IdempotencyMismatch,
    api.ErrorKind.NOT_FOUND: NotFound,
    api.ErrorKind.FORBIDDEN: Forbidden,
    api.ErrorKind.INVALID: InvalidParameter,
}

# The largest answer the API gives legitimately is a page with command output: Output is
# cut at 24 KB (api-schemas.md), 32 KB in Base64, so a DescribeInvocationResults page of
# 50 records is about 1.7 MB, and DescribeInvocations with IncludeOutput for one
# invocation on 100 instances (RunCommand's quota-raised maximum) about 3.4 MB. 8 MiB
# leaves more than twice that, while a hostile body costs at most 8 MiB to refuse (and a
# few times that to parse, were it just under the cap).
DEFAULT_MAX_ANSWER_BYTES: Final = 8 * 1024 * 1024
_CHUNK: Final = 64 * 1024
_QUERY: Final = re.compile(r"\?\S*")
# Whitespace, C0/C1 controls and lone surrogates: what must never reach a one-line error.
_UNPRINTABLE: Final = re.compile(r"[\s\x00-\x1f\x7f-\x9f\ud800-\udfff]+")
_SHOWN: Final = 300  # characters of an endpoint's text shown in an error
_SNIPPET: Final = 40  # bytes of a non-JSON body quoted in an error
_JSON_KIND: Final[Mapping[type, str]] = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}
_TOO_MANY_REQUESTS: Final = 429
_SERVER_ERROR: Final = 500


def api_error(
    *, code: str, message: str, request_id: str, http_status: int, action: str
) -> ApiError:
    """The error class `code` (with `http_status`) belongs to, filled in.

    Code, message and request id come from the endpoint, so they are put on one line
    and clipped: a hostile answer can neither break the CLI's one-line error nor flood it.
    """
    code, message, request_id = (one_line(text) for text in (code, message, request_id))
    cls = ERROR_CLASSES[api.kind_of(code, http_status)]
    return cls(code, message, request_id=request_id, http_status=http_status, action=action)


def one_line(text: str, limit: int = _SHOWN) -> str:
    """`text` with every run of whitespace or control characters as one space (lone
    surrogates too: they cannot be printed), clipped to `limit` characters."""
    flat = _UNPRINTABLE.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def error_from_response(
    status: int, reason: str, body: bytes, *, action: str, oversize: bool = False
) -> ApiError:
    """The error a non-2xx answer stands for.

    A JSON body gives `Code`, `Message`, `RequestId` (the Tea SDK also reads the
    lower-case keys). A body that is not JSON (a proxy's HTML page, a cut answer, one
    past the size cap: `oversize`) is classed by its status: 5xx → `InternalError`,
    429 → `Throttling`, otherwise the status text, so a gateway's 5xx is retried like
    the service's own.
    """
    document = None if oversize else _document(body)
    if isinstance(document, dict) and (document.get("Code") or document.get("code")):
        return api_error(
            code=_shown(document.get("Code") or document.get("code")),
            message=_shown(document.get("Message") or document.get("message") or ""),
            request_id=_shown(document.get("RequestId") or document.get("requestId") or ""),
            http_status=status,
            action=action,
        )
    if status >= _SERVER_ERROR:
        code = "InternalError"
    elif status == _TOO_MANY_REQUESTS:
        code = "Throttling"
    else:
        code = reason.replace(" ", "") or f"HTTP{status}"
    what = "larger than the size cap" if oversize else "that is not a JSON error"
    return api_error(
        code=code,
        message=f"HTTP {status} {reason} with a body {what}",
        request_id="",
        http_status=status,
        action=action,
    )


def document_from_answer(
    status: int, body: bytes, *, action: str, oversize: bool = False
) -> dict[str, Any]:
    """The JSON object a 2xx answer holds, or the `MalformedResponse` saying why not."""
    if oversize:
        raise MalformedResponse(
            "ResponseTooLarge",
            "the answer is larger than the size cap",
            http_status=status,
            action=action,
        )
    document = _document(body)
    if isinstance(document, str):
        problem = document
    elif not isinstance(document, dict):
        problem = f"the answer is a JSON {_JSON_KIND.get(type(document), 'value')}, not an object"
    else:
        return document
    raise MalformedResponse("InvalidResponse", problem, http_status=status, action=action)


def _shown(value: object) -> str:
    """A value from an answer as text to show: only strings and numbers are shown
    (str() of a deeply nested list would recurse past the stack)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return one_line(repr(value))  # repr of a huge int is refused, not slow: 4300 digits
    return f"<a JSON {_JSON_KIND.get(type(value), 'value')}>"


def _document(body: bytes) -> object:
    """The JSON value of `body`, or a string saying why it is not JSON."""
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        return "the answer is not UTF-8 text"
    except RecursionError:
        # json.loads recurses once per level: a hostile `[[[[…` ends here, not in a crash.
        return "the answer is JSON nested too deeply"
    except ValueError:
        start = body[:_SNIPPET].decode("utf-8", errors="replace")
        return f"the answer is not JSON (it starts {one_line(start, _SNIPPET)!r})"


def encode_query(params: Mapping[str, str]) -> str:
    """`k=v&…` with RFC 3986 encoding (space `%20`, `+` `%2B`), in the given order."""
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in params.items())


@dataclass(frozen=True, slots=True)
class Answer:
    """A 2xx answer: its HTTP status and the JSON object it held."""

    status: int
    document: dict[str, Any]


class HttpSender:
    """Sends signed requests to one endpoint on a caller-owned aiohttp session.

    `request_timeout` (seconds) is the deadline of each attempt as a whole: connecting,
    sending, the headers and the whole body. A server that drips its answer a byte at a
    time, or stalls, ends in a `TransportError` at the deadline, which the retry policy
    treats like any lost answer. None leaves only the session's own timeouts.
    `max_answer_bytes` caps an answer's body (see DEFAULT_MAX_ANSWER_BYTES).
    """

    def __init__(
        self,
        session: Session,
        endpoint: str,
        *,
        request_timeout: float | None = None,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
    ) -> None:
        url = URL(endpoint)
        if url.scheme not in {"http", "https"} or not url.host:
            raise ValueError(f"endpoint must be an http(s) URL with a host, got {endpoint!r}")
        if url.path not in {"", "/"} or url.query_string or url.fragment:
            raise ValueError(f"endpoint must have no path, query or fragment: {endpoint!r}")
        if request_timeout is not None and not request_timeout > 0:
            raise ValueError(f"request_timeout must be > 0 seconds, got {request_timeout!r}")
        if max_answer_bytes < 1:
            raise ValueError(f"max_answer_bytes must be >= 1, got {max_answer_bytes!r}")
        self._session = session
        self._origin = url.origin()
        self._deadline = request_timeout
        self._max_answer_bytes = max_answer_bytes

    @property
    def endpoint(self) -> str:
        """`scheme://host[:port]`, safe to show."""
        return str(self._origin)

    @property
    def host(self) -> str:
        """The Host header value: the host, with the port when it is not the default."""
        host = self._origin.host or ""
        return host if self._origin.is_default_port() else f"{host}:{self._origin.port}"

    @property
    def request_timeout(self) -> float | None:
        """The deadline of each attempt, in seconds (None: no deadline of our own)."""
        return self._deadline

    async def send(
        self, action: str, query: Mapping[str, str], headers: Mapping[str, str]
    ) -> Answer:
        """POST `/?query` with `headers` and an empty body; the JSON object answered."""
        url = self._origin.with_path("/").with_query(None)
        url = URL(f"{url}?{encode_query(query)}", encoded=True)
        # Host is sent as signed (V3 signs it) instead of whatever aiohttp would derive.
        all_headers = {"Host": self.host, **headers}
        # The deadline runs on the event loop's clock, real monotonic time, not on the
        # injected Clock that paces retries: sockets wait in real time, and a ManualClock
        # (tests) or a ScaledClock (the simulator) would never, or far too soon, fire it.
        with anyio.move_on_after(self._deadline) as scope:
            try:
                status, reason, body = await self._exchange(action, url, all_headers)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise TransportError(self._describe(action, exc)) from exc
        if scope.cancelled_caught:
            raise TransportError(
                f"{action}: TimeoutError talking to {self.endpoint}: no complete answer"
                f" within the {self._deadline:g} s deadline of an attempt"
            )
        if not 200 <= status < 300:  # noqa: PLR2004
            raise error_from_response(
                status, reason, body or b"", action=action, oversize=body is None
            )
        return Answer(
            status, document_from_answer(status, body or b"", action=action, oversize=body is None)
        )

    async def _exchange(
        self, action: str, url: URL, headers: Mapping[str, str]
    ) -> tuple[int, str, bytes | None]:
        """(status, reason, body) of one request; the body is None past the size cap."""
        async with self._session.post(
            url,
            headers=headers,
            allow_redirects=False,  # a redirect would replay a signed request elsewhere
        ) as response:
            status, reason = response.status, response.reason or ""
            try:
                body = await self._capped_body(response)
            except aiohttp.ClientPayloadError as exc:
                # The status came, the body was cut short (or was not valid chunked or
                # compressed data): a lost answer, retried like one.
                raise TransportError(
                    f"{action}: the HTTP {status} answer from {self.endpoint} was cut short:"
                    f" {one_line(_QUERY.sub('?…', str(exc)))}"
                ) from exc
        return status, reason, body

    async def _capped_body(self, response: aiohttp.ClientResponse) -> bytes | None:
        """The body, read a chunk at a time; None as soon as it passes the cap (an
        announced Content-Length past it is refused before reading anything)."""
        limit = self._max_answer_bytes
        if response.content_length is not None and response.content_length > limit:
            return None
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > limit:
                return None  # leaving the `async with` drops the connection, unread
            chunks.append(chunk)
        return b"".join(chunks)

    def _describe(self, action: str, exc: BaseException) -> str:
        detail = one_line(_QUERY.sub("?…", str(exc))) if str(exc) else ""
        kind = type(exc).__name__
        return f"{action}: {kind} talking to {self.endpoint}" + (f": {detail}" if detail else "")
