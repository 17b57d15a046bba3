"""A hostile ECS endpoint of the tests' own: raw HTTP over a loopback TCP socket.

aiohttp's own server cannot lie (it fixes Content-Length, it will not drip), so this one
writes the bytes itself: a status line, headers and a body, paced or cut as the test asks.
Every request's target (path and query) and headers are recorded, so a test can see what
each attempt carried (a RunCommand's ClientToken, say). Each answer closes the connection.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import anyio
from anyio.abc import SocketAttribute

if TYPE_CHECKING:
    from anyio.abc import SocketStream

_MAX_HEAD = 64 * 1024


@dataclass(frozen=True, slots=True)
class Answer:
    """What the server writes back: `head` (status line and headers) then `body` pieces,
    `pause` real seconds apart; `close` ends the connection after them (a cut body)."""

    status: str
    headers: tuple[tuple[str, str], ...]
    body: Iterable[bytes]
    pause: float = 0.0


@dataclass(frozen=True, slots=True)
class Seen:
    """One request as it arrived."""

    action: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class HostileServer:
    """Where it listens and what it was asked."""

    url: str
    seen: list[Seen] = field(default_factory=list)

    def actions(self) -> list[str]:
        return [request.action for request in self.seen]


Answerer = Callable[[Seen], Answer]


def _answer(status: str, body: bytes, content_type: str, **extra: str) -> Answer:
    headers = (("Content-Type", content_type), ("Content-Length", str(len(body))))
    return Answer(status, headers + tuple(extra.items()), [body])


def json_answer(document: Any, status: str = "200 OK") -> Answer:
    """A well-formed JSON answer of `document` (which may still break the API's shape)."""
    return _answer(status, json.dumps(document).encode(), "application/json")


def raw_answer(
    body: bytes, status: str = "200 OK", content_type: str = "application/json"
) -> Answer:
    """`body` as it is, with a true Content-Length."""
    return _answer(status, body, content_type)


def html_answer(status: str = "200 OK") -> Answer:
    """A proxy's error page."""
    page = b"<html><head><title>Bad Gateway</title></head>\n<body><h1>oops</h1></body></html>\n"
    return _answer(status, page, "text/html")


def drip_answer(body: bytes, pause: float) -> Answer:
    """`body` one byte every `pause` seconds (a broken proxy)."""
    headers = (("Content-Type", "application/json"), ("Content-Length", str(len(body))))
    return Answer("200 OK", headers, [body[i : i + 1] for i in range(len(body))], pause)


def lying_answer(body: bytes, claimed: int) -> Answer:
    """`body`, then the connection closes, though Content-Length promised `claimed` bytes."""
    headers = (("Content-Type", "application/json"), ("Content-Length", str(claimed)))
    return Answer("200 OK", headers, [body])


def chunked_answer(piece: bytes, count: int) -> Answer:
    """`count` chunks of `piece` with chunked transfer encoding: no length up front."""
    headers = (("Content-Type", "application/json"), ("Transfer-Encoding", "chunked"))
    frame = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return Answer("200 OK", headers, [*(frame for _ in range(count)), b"0\r\n\r\n"])


def declared_answer(length: int) -> Answer:
    """A Content-Length far beyond any cap, and a few bytes of what it announces."""
    headers = (("Content-Type", "application/json"), ("Content-Length", str(length)))
    return Answer("200 OK", headers, [b'{"RequestId": "'])


def deep_json(depth: int) -> bytes:
    """`[[[…]]]` nested `depth` deep: valid JSON that json.loads cannot recurse through."""
    return b"[" * depth + b"]" * depth


async def _read_head(stream: SocketStream) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:
        if len(head) > _MAX_HEAD:
            raise ValueError("request head too long")
        head += await stream.receive()
    return head.split(b"\r\n\r\n", 1)[0]


def _seen(head: bytes) -> Seen:
    first, *lines = head.decode("latin-1").split("\r\n")
    target = first.split(" ")[1]
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    query = dict(parse_qsl(urlsplit(target).query, keep_blank_values=True))
    action = headers.get("x-acs-action") or query.get("Action", "")
    return Seen(action, query, headers)


@asynccontextmanager
async def serve_hostile(answer: Answerer) -> AsyncIterator[HostileServer]:
    """Listen on 127.0.0.1 (a free port) and answer every request with `answer(request)`."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(SocketAttribute.local_port)  # noqa: S610 - anyio, not Django
    server = HostileServer(f"http://127.0.0.1:{port}")

    async def handle(stream: SocketStream) -> None:
        async with stream:
            try:
                request = _seen(await _read_head(stream))
                server.seen.append(request)
                reply = answer(request)
                head = [f"HTTP/1.1 {reply.status}", *(f"{k}: {v}" for k, v in reply.headers)]
                head.append("Connection: close")
                await stream.send(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
                for piece in reply.body:
                    if reply.pause:
                        await anyio.sleep(reply.pause)  # the fault itself: a slow proxy
                    await stream.send(piece)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream):
                return  # the client gave up, as it should

    failure: BaseException | None = None
    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, handle)
        try:
            yield server
        except BaseException as exc:  # noqa: BLE001 - re-raised below, outside the group
            # Raised out of the task group it would come wrapped in an ExceptionGroup.
            failure = exc
        finally:
            tasks.cancel_scope.cancel()
    if failure is not None:
        raise failure
