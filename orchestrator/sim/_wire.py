"""The simulator's wire format: read an HTTP request into a `ParsedRequest`, and render
answers the way the real ECS endpoint does.

A request is a GET or POST to `/` whose parameters come from the query string, merged
with an `application/x-www-form-urlencoded` body when there is one (the official SDKs put
everything in the query; other clients use the body). The action comes from the
`x-acs-action` header (V3) or the `Action` parameter (V1). Answers are JSON or XML, chosen
as the real service chooses: XML when the request says `Format=XML`, or says no Format
and does not name JSON in `Accept`; JSON otherwise. Every answer carries a RequestId;
error bodies also carry HostId, Code, Message and Recommend.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import parse_qsl, quote
from xml.sax.saxutils import escape

from aiohttp import web

from orchestrator import api
from orchestrator.sim._protocol import SimApiError

# Parameters every RPC call may carry that are not the action's own.
COMMON_PARAMS: Final = frozenset(
    {
        "Action",
        "Version",
        "Format",
        "AccessKeyId",
        "Signature",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureNonce",
        "SignatureType",
        "Timestamp",
        "SecurityToken",
    }
)

JSON_CONTENT_TYPE: Final = "application/json;charset=utf-8"
# The Tea SDK parses an error body as XML only when Content-Type is exactly this string.
XML_CONTENT_TYPE: Final = "text/xml;charset=utf-8"
_FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"


def percent_encode(text: str) -> str:
    """RFC 3986 encoding as both signature versions use it: UTF-8, space `%20`, `*` `%2A`,
    only `A-Z a-z 0-9 - _ . ~` left as they are."""
    return quote(text, safe="~", encoding="utf-8")


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """One request as it arrived: the raw parts a signature covers, plus what the rest of
    the wire layer needs (action, version, merged parameters, answer format)."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]  # decoded (`+` is a space), in arrival order
    form: tuple[tuple[str, str], ...]  # decoded urlencoded body pairs, if any
    headers: Mapping[str, tuple[str, ...]]  # lower-case name -> values
    body: bytes
    params: Mapping[str, str]  # query, then form (a later value wins)
    action: str  # "" when the request names none
    version: str | None
    wants_xml: bool

    def header(self, name: str) -> str | None:
        """The first value of header `name` (any case), or None."""
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def own_params(self) -> dict[str, str]:
        """The action's own parameters: everything but the common ones."""
        return {k: v for k, v in self.params.items() if k not in COMMON_PARAMS}


def parse_parts(
    *,
    method: str,
    path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes = b"",
) -> ParsedRequest:
    """Build a `ParsedRequest` from the raw parts of an HTTP request (no I/O)."""
    grouped: dict[str, list[str]] = {}
    for name, value in headers:
        grouped.setdefault(name.lower(), []).append(value)
    frozen_headers = MappingProxyType({k: tuple(v) for k, v in grouped.items()})

    # keep_blank_values: the legacy SDK signs `SignatureType=` with its empty value.
    query = tuple(parse_qsl(raw_query, keep_blank_values=True))
    form: tuple[tuple[str, str], ...] = ()
    content_type = (grouped.get("content-type") or [""])[0]
    if body and content_type.split(";")[0].strip().lower() == _FORM_CONTENT_TYPE:
        form = tuple(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    params = dict(query)
    params.update(form)

    action = (grouped.get("x-acs-action") or [""])[0] or params.get("Action", "")
    version = params.get("Version") or next(iter(grouped.get("x-acs-version", ())), None)
    return ParsedRequest(
        method=method.upper(),
        path=path,
        query=query,
        form=form,
        headers=frozen_headers,
        body=body,
        params=MappingProxyType(params),
        action=action,
        version=version,
        wants_xml=_wants_xml(params.get("Format"), (grouped.get("accept") or [""])[0]),
    )


def _wants_xml(format_param: str | None, accept: str) -> bool:
    # The real service answers XML by default; V1 clients ask for JSON with Format=JSON
    # (or json), the V3 Tea SDK sends no Format but `accept: application/json`.
    if format_param:
        return format_param.strip().upper() == "XML"
    return "json" not in accept.lower()


async def read_request(request: web.Request) -> ParsedRequest:
    """Read an aiohttp request (including its body) into a `ParsedRequest`."""
    body = await request.read()
    raw_path = request.raw_path
    path, _, raw_query = raw_path.partition("?")
    return parse_parts(
        method=request.method,
        path=path,
        raw_query=raw_query,
        headers=request.headers.items(),
        body=body,
    )


def check_call(parsed: ParsedRequest, known_actions: Collection[str]) -> None:
    """Refuse a request that names no action, an unknown action, or another API version."""
    if not parsed.action:
        raise SimApiError(
            "MissingParameter",
            'The input parameter "Action" that is mandatory for processing this request '
            "is not supplied.",
        )
    if parsed.action not in known_actions:
        raise SimApiError("InvalidAction.NotFound")
    # An absent Version is accepted: V3 sends it only as x-acs-version, which is read too.
    # STS shares the wire (it is another RPC API) but has a version of its own.
    expected = api.STS_API_VERSION if parsed.action in api.STS_ACTIONS else api.API_VERSION
    if parsed.version is not None and parsed.version != expected:
        raise SimApiError("InvalidVersion")


# --- rendering ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rendered:
    """An answer ready to send."""

    status: int
    body: bytes
    content_type: str
    request_id: str

    def to_response(self) -> web.Response:
        """The aiohttp response; Content-Type is set verbatim (aiohttp would add a space)."""
        return web.Response(
            status=self.status,
            body=self.body,
            headers={"Content-Type": self.content_type, "x-acs-request-id": self.request_id},
        )


def new_request_id() -> str:
    """A request id in the real service's form: an upper-case UUID."""
    return str(uuid.uuid4()).upper()


def host_id(region: str) -> str:
    """The HostId error bodies carry."""
    return f"ecs.{region}.aliyuncs.com"


def render_ok(action: str, body: Mapping[str, Any], request_id: str, *, xml: bool) -> Rendered:
    """A 200 answer: the handler's body with RequestId first."""
    full: dict[str, Any] = {"RequestId": request_id, **body}
    if xml:
        return Rendered(200, _xml_document(f"{action}Response", full), XML_CONTENT_TYPE, request_id)
    return Rendered(200, _json(full), JSON_CONTENT_TYPE, request_id)


def render_error(error: SimApiError, request_id: str, region: str, *, xml: bool) -> Rendered:
    """An error answer with every field the real service sends."""
    full = {
        "RequestId": request_id,
        "HostId": host_id(region),
        "Code": error.code,
        "Message": error.message,
        "Recommend": (
            f"https://api.aliyun.com/troubleshoot?q={error.code}&product=Ecs&requestId={request_id}"
        ),
    }
    status = error.http_status
    if xml:
        return Rendered(status, _xml_document("Error", full), XML_CONTENT_TYPE, request_id)
    return Rendered(status, _json(full), JSON_CONTENT_TYPE, request_id)


def _json(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _xml_document(root: str, body: Mapping[str, Any]) -> bytes:
    text = f'<?xml version="1.0" encoding="UTF-8"?><{root}>{_xml_children(body)}</{root}>'
    return text.encode("utf-8")


def _xml_children(body: Mapping[str, Any]) -> str:
    # A list under a key repeats that key: {"Instance": [a, b]} -> <Instance>a</Instance>
    # <Instance>b</Instance>, which is how {"Instances": {"Instance": [...]}} nests.
    parts: list[str] = []
    for key, value in body.items():
        items = value if isinstance(value, list) else [value]
        parts.extend(f"<{key}>{_xml_value(item)}</{key}>" for item in items)
    return "".join(parts)


def _xml_value(value: Any) -> str:
    if isinstance(value, Mapping):
        return _xml_children(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return escape(str(value))
