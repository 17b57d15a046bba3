"""Seeded, deterministic fault injection for the simulator.

Each request in scope gets a `FaultDecision` from one `random.Random(seed)`, drawn in the
order requests reach this point, with a fixed number of draws per request so that
changing one rate does not shift the others. What the decision means:

- `error` ("InternalError" 500 / "ServiceUnavailable" 503, and for RunCommand and
  StopInvocation "InternalError.Dispatch" 500): answer it *without* acting;
- `after` = "drop": act, then close the connection with no answer;
- `after` = "reset": act, then reset the connection (TCP RST);
- `after` = "stall": act, then hold the answer for `stall_seconds` of real time;
- `after` = "garble" (scripted only): act, then answer 200 with an HTML page instead of
  the JSON (a proxy's page in front of a service that did the work);
- `latency`: simulation-clock seconds added before acting.

Tests can also script faults at run time without restarting: `set()` a new `FaultSpec`,
or `fail_next()` to queue "the next N calls (of action X) fail with <kind>" (scripted
faults come first and draw nothing from the seeded stream). A scripted `API_ERROR`
answers any code of `api.ERRORS`, with its status and message, without acting: a
way to put codes no request can provoke here (InvalidCmdId.NotFound on RunCommand,
which takes no CommandId) in front of a client. `counts` tells how many of each kind
were injected.
"""

from __future__ import annotations

import enum
import random
from collections import Counter, deque
from dataclasses import dataclass

from orchestrator import api
from orchestrator.sim._spec import FaultSpec


class FaultKind(enum.StrEnum):
    """One kind of injected fault; also the key of `Faults.counts`."""

    INTERNAL_ERROR = "internal_error"  # 500 InternalError, not acted upon
    UNAVAILABLE = "unavailable"  # 503 ServiceUnavailable, not acted upon
    DROP = "drop"  # acted upon, then closed without an answer
    RESET = "reset"  # acted upon, then TCP RST
    STALL = "stall"  # acted upon, answer held back
    GARBLE = "garble"  # acted upon, answered 200 with HTML (scripted only)
    LATENCY = "latency"  # answer delayed (counted once per delayed request)
    DISPATCH_ERROR = "dispatch_error"  # 500 InternalError.Dispatch, not acted upon
    API_ERROR = "api_error"  # any code of api.ERRORS (scripted only), not acted upon


_ERROR_CODES = {
    FaultKind.INTERNAL_ERROR: "InternalError",
    FaultKind.UNAVAILABLE: "ServiceUnavailable",
    FaultKind.DISPATCH_ERROR: "InternalError.Dispatch",
}
_AFTER_KINDS = frozenset({FaultKind.DROP, FaultKind.RESET, FaultKind.STALL, FaultKind.GARBLE})
# The actions that dispatch a command to agents, the only ones a dispatch can fail.
DISPATCH_ACTIONS = frozenset({"RunCommand", "StopInvocation"})


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What to do to one request."""

    latency: float = 0.0
    error: FaultKind | None = None  # INTERNAL_ERROR, UNAVAILABLE, DISPATCH_ERROR, API_ERROR
    after: FaultKind | None = None  # DROP, RESET or STALL
    stall_seconds: float = 0.0
    code: str | None = None  # the code of an API_ERROR

    @property
    def error_code(self) -> str | None:
        """The API error code to answer with, when the request fails before acting."""
        if self.error is None:
            return None
        return self.code if self.code is not None else _ERROR_CODES[self.error]


NO_FAULT = FaultDecision()


@dataclass(frozen=True, slots=True)
class _Scripted:
    kind: FaultKind
    action: str | None
    stall_seconds: float
    code: str | None

    def matches(self, action: str) -> bool:
        if self.kind is FaultKind.DISPATCH_ERROR and action not in DISPATCH_ACTIONS:
            return False  # "the next call" of a dispatch fault: the next that dispatches
        return self.action is None or self.action == action


class Faults:
    """The fault controller of one running simulator."""

    def __init__(self, spec: FaultSpec | None = None) -> None:
        self._spec = spec or FaultSpec()
        self._rng = random.Random(self._spec.seed)  # noqa: S311 - reproducible, not secret
        self._dispatch_rng = _dispatch_stream(self._spec.seed)
        self._queue: deque[_Scripted] = deque()
        self._counts: Counter[FaultKind] = Counter()

    @property
    def spec(self) -> FaultSpec:
        """The seeded faults in force."""
        return self._spec

    @property
    def counts(self) -> dict[str, int]:
        """Faults injected so far, by kind (every kind present, zero or not)."""
        return {kind.value: self._counts[kind] for kind in FaultKind}

    def set(self, spec: FaultSpec) -> None:
        """Replace the seeded faults; the random stream restarts from `spec.seed`."""
        self._spec = spec
        self._rng = random.Random(spec.seed)  # noqa: S311
        self._dispatch_rng = _dispatch_stream(spec.seed)

    def fail_next(
        self,
        kind: FaultKind | str,
        count: int = 1,
        *,
        action: str | None = None,
        stall_seconds: float | None = None,
        code: str | None = None,
    ) -> None:
        """Queue `count` scripted faults for the next calls (of `action`, if given).

        `DISPATCH_ERROR` applies to RunCommand / StopInvocation only (without `action`:
        the next of either). `API_ERROR` needs `code`, a code of `api.ERRORS`.
        """
        fault = FaultKind(kind)
        if fault is FaultKind.LATENCY:
            raise ValueError("latency is set through FaultSpec, not queued")
        if fault is FaultKind.API_ERROR:
            if code not in api.ERRORS:
                raise ValueError(f"API_ERROR needs a code of api.ERRORS, not {code!r}")
        elif code is not None:
            raise ValueError("only an API_ERROR fault takes a code")
        if fault is FaultKind.DISPATCH_ERROR and action not in {None, *DISPATCH_ACTIONS}:
            raise ValueError(f"only {', '.join(sorted(DISPATCH_ACTIONS))} dispatch commands")
        seconds = self._spec.stall_seconds if stall_seconds is None else stall_seconds
        self._queue.extend(_Scripted(fault, action, seconds, code) for _ in range(count))

    def clear(self) -> None:
        """Forget queued faults and stop the seeded ones (counts are kept)."""
        self._queue.clear()
        self.set(FaultSpec(seed=self._spec.seed))

    @property
    def pending(self) -> int:
        """Scripted faults not yet used."""
        return len(self._queue)

    def decide(self, action: str) -> FaultDecision:
        """The fault for the request arriving now (one call per request, in order)."""
        scripted = self._take_scripted(action)
        decision = scripted if scripted is not None else self._draw(action)
        if decision.latency > 0:
            self._counts[FaultKind.LATENCY] += 1
        for kind in (decision.error, decision.after):
            if kind is not None:
                self._counts[kind] += 1
        return decision

    def _take_scripted(self, action: str) -> FaultDecision | None:
        for index, scripted in enumerate(self._queue):
            if scripted.matches(action):
                del self._queue[index]
                if scripted.kind in _AFTER_KINDS:
                    return FaultDecision(after=scripted.kind, stall_seconds=scripted.stall_seconds)
                return FaultDecision(error=scripted.kind, code=scripted.code)
        return None

    def _draw(self, action: str) -> FaultDecision:
        spec = self._spec
        if spec.actions and action not in spec.actions:
            return NO_FAULT
        # Always five draws, whatever the rates, so the stream stays aligned; dispatch
        # faults draw from a stream of their own (one draw per dispatching request), so
        # the five stay what they were before that rate existed.
        error, which, drop, reset, stall = (self._rng.random() for _ in range(5))
        dispatch = self._dispatch_rng.random() if action in DISPATCH_ACTIONS else 1.0
        latency = max(spec.latency, 0.0)
        if error < spec.error_rate:
            kind = FaultKind.INTERNAL_ERROR if which < 0.5 else FaultKind.UNAVAILABLE  # noqa: PLR2004
            return FaultDecision(latency=latency, error=kind)
        if dispatch < spec.dispatch_error_rate:
            return FaultDecision(latency=latency, error=FaultKind.DISPATCH_ERROR)
        if drop < spec.drop_rate:
            return FaultDecision(latency=latency, after=FaultKind.DROP)
        if reset < spec.reset_rate:
            return FaultDecision(latency=latency, after=FaultKind.RESET)
        if stall < spec.stall_rate:
            return FaultDecision(
                latency=latency, after=FaultKind.STALL, stall_seconds=spec.stall_seconds
            )
        return FaultDecision(latency=latency)


def _dispatch_stream(seed: int) -> random.Random:
    # A string seed is hashed with SHA-512: the same on every run and platform.
    return random.Random(f"{seed}:dispatch")  # noqa: S311 - reproducible, not secret
