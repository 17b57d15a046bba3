"""The simulator's aiohttp application: one API route that runs each request through
parse → authenticate → throttle → fault (before acting) → handler → fault (after acting)
→ render, plus unsigned, loopback-only introspection under `/_sim/` (health, per-action
request counts, and how many times each instance ran each invocation).

It takes the action handlers as a plain mapping and does not care where they come from,
so tests can run it with small handlers of their own.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import anyio
from aiohttp import web

from orchestrator.sim._auth import Authenticator, KeyStore, WallClock, utc_now
from orchestrator.sim._faults import FaultDecision, FaultKind, Faults
from orchestrator.sim._protocol import Call, Handler, SimApiError
from orchestrator.sim._stats import Stats
from orchestrator.sim._sts import UNSIGNED_ACTIONS
from orchestrator.sim._throttle import Throttle
from orchestrator.sim._wire import (
    ParsedRequest,
    Rendered,
    check_call,
    new_request_id,
    read_request,
    render_error,
    render_ok,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from orchestrator.clock import Clock
    from orchestrator.sim._metadata import CredentialServices
    from orchestrator.sim._spec import FaultSpec, KeySpec, ThrottleSpec

_log = logging.getLogger(__name__)

# A 24 KB Base64 command travels in the URL (wire-format.md item 6); aiohttp's default
# 8190-byte request line would refuse it.
MAX_LINE_SIZE: Final = 256 * 1024
MAX_FIELD_SIZE: Final = 64 * 1024
# The outcome counted for a request answered normally.
OUTCOME_OK: Final = "ok"


@dataclass(frozen=True, slots=True)
class AppState:
    """Everything a request needs, stored on the app under `STATE`."""

    handlers: Mapping[str, Handler]
    authenticator: Authenticator
    throttle: Throttle
    faults: Faults
    clock: Clock
    region: str
    stats: Stats
    executions: Callable[[], Mapping[str, Mapping[str, int]]] | None


STATE: Final = web.AppKey("orchestrator_sim_state", AppState)
# Set when the app shuts down; made at startup, inside the event loop (anyio needs one).
_SHUTTING_DOWN: Final = web.AppKey("orchestrator_sim_shutting_down", anyio.Event)


def create_app(
    handlers: Mapping[str, Handler],
    *,
    keys: KeyStore | Iterable[KeySpec],
    throttle: Throttle | ThrottleSpec,
    faults: Faults | FaultSpec,
    clock: Clock,
    wall_clock: WallClock = utc_now,
    region: str,
    executions: Callable[[], Mapping[str, Mapping[str, int]]] | None = None,
    stats: Stats | None = None,
    credential_services: CredentialServices | None = None,
) -> web.Application:
    """The simulator app. `wall_clock` (real time, not the scaled clock) checks request
    timestamps and nonces; `clock` (the simulation's) drives throttling and latency.
    `credential_services` adds the metadata and credentials-URI routes."""
    key_store = keys if isinstance(keys, KeyStore) else KeyStore(keys, wall_clock=wall_clock)
    state = AppState(
        handlers=handlers,
        authenticator=Authenticator(key_store, wall_clock=wall_clock),
        throttle=throttle if isinstance(throttle, Throttle) else Throttle(throttle, clock),
        faults=faults if isinstance(faults, Faults) else Faults(faults),
        clock=clock,
        region=region,
        stats=stats or Stats(),
        executions=executions,
    )
    app = web.Application(
        handler_args={"max_line_size": MAX_LINE_SIZE, "max_field_size": MAX_FIELD_SIZE},
        client_max_size=4 * 1024 * 1024,
    )
    app[STATE] = state
    app.router.add_route("GET", "/", _api)
    app.router.add_route("POST", "/", _api)
    app.router.add_get("/_sim/health", _health)
    app.router.add_get("/_sim/stats", _stats)
    app.router.add_get("/_sim/executions", _executions)
    if credential_services is not None:
        credential_services.add_routes(app)
    app.on_startup.append(_make_shutdown_event)
    app.on_shutdown.append(_release_stalls)
    return app


async def _make_shutdown_event(app: web.Application) -> None:
    app[_SHUTTING_DOWN] = anyio.Event()


async def _release_stalls(app: web.Application) -> None:
    # A stalled answer must not hold up shutdown for its whole stall.
    app[_SHUTTING_DOWN].set()


async def _api(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    request_id = new_request_id()
    parsed = await read_request(request)
    try:
        access_key_id, decision = await _admit(state, parsed)
    except SimApiError as error:
        state.stats.record(parsed.action, error.code)
        return _error(state, parsed, error, request_id).to_response()
    rendered, outcome = await _act(state, parsed, access_key_id, request_id)
    if decision.after is not None:
        return await _after_fault(request, state, parsed, decision, rendered)
    state.stats.record(parsed.action, outcome)
    return rendered.to_response()


async def _admit(state: AppState, parsed: ParsedRequest) -> tuple[str, FaultDecision]:
    """Everything before acting: the checks that refuse a call, and pre-act faults."""
    check_call(parsed, state.handlers)
    # AssumeRoleWithOIDC carries no signature: its OIDC token is checked by the handler.
    unsigned = parsed.action in UNSIGNED_ACTIONS
    access_key_id = "" if unsigned else state.authenticator.authenticate(parsed)
    state.throttle.check(parsed.action, access_key_id)
    decision = state.faults.decide(parsed.action)
    if decision.latency > 0:
        await state.clock.sleep(decision.latency)
    if decision.error_code is not None:
        raise SimApiError(decision.error_code)
    return access_key_id, decision


async def _act(
    state: AppState, parsed: ParsedRequest, access_key_id: str, request_id: str
) -> tuple[Rendered, str]:
    """Run the handler; its answer (or error) and the outcome to count."""
    call = Call(parsed.action, parsed.own_params(), access_key_id)
    try:
        body = await state.handlers[parsed.action](call)
    except SimApiError as error:
        return _error(state, parsed, error, request_id), error.code
    except Exception:  # noqa: BLE001 - a handler bug answers as the real service's own failures do
        _log.exception("simulator handler failed: %s", parsed.action)
        return _error(state, parsed, SimApiError("InternalError"), request_id), "InternalError"
    return render_ok(parsed.action, body, request_id, xml=parsed.wants_xml), OUTCOME_OK


def _error(state: AppState, parsed: ParsedRequest, error: SimApiError, request_id: str) -> Rendered:
    return render_error(error, request_id, state.region, xml=parsed.wants_xml)


async def _after_fault(
    request: web.Request,
    state: AppState,
    parsed: ParsedRequest,
    decision: FaultDecision,
    rendered: Rendered,
) -> web.StreamResponse:
    """The action was carried out; now lose or delay its answer."""
    state.stats.record(parsed.action, str(decision.after))
    transport = request.transport
    if decision.after is FaultKind.STALL:
        with anyio.move_on_after(decision.stall_seconds):
            await request.app[_SHUTTING_DOWN].wait()
        return rendered.to_response()
    if decision.after is FaultKind.GARBLE:
        page = "<html><body><h1>200 OK</h1><p>upstream answer replaced</p></body></html>\n"
        return web.Response(status=200, text=page, content_type="text/html")
    if transport is not None:
        if decision.after is FaultKind.RESET:
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()
    # Nothing reaches the client: aiohttp finds the transport closed and writes nothing.
    return web.Response(status=204)


def _is_loopback(request: web.Request) -> bool:
    try:
        return request.remote is not None and ipaddress.ip_address(request.remote).is_loopback
    except ValueError:
        return False


def _introspection(request: web.Request) -> AppState:
    if not _is_loopback(request):
        raise web.HTTPNotFound
    return request.app[STATE]


async def _health(request: web.Request) -> web.Response:
    state = _introspection(request)
    return web.json_response({"status": "ok", "region": state.region})


async def _stats(request: web.Request) -> web.Response:
    state = _introspection(request)
    return web.json_response({"requests": state.stats.snapshot(), "faults": state.faults.counts})


async def _executions(request: web.Request) -> web.Response:
    state = _introspection(request)
    if state.executions is None:
        raise web.HTTPNotFound
    return web.json_response(
        {instance: dict(runs) for instance, runs in state.executions().items()}
    )
