"""The parts of the fleet file that the simulator's wire layer reads: keys, throttling
and faults. (Instances and agent behaviour are in `_fleet.py`.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

# The documented default key pair: a user or another client can call a fresh simulator
# at once with it. It guards nothing real, so it is not a secret.
DEFAULT_ACCESS_KEY_ID: Final = "LTAI5tSimulatorDefaultKey"
DEFAULT_ACCESS_KEY_SECRET: Final = "simulator-default-secret"  # noqa: S105


@dataclass(frozen=True, slots=True)
class KeySpec:
    """An access key pair the simulator accepts. With `security_token`, it is an STS
    credential: requests must carry that token (`SecurityToken` / x-acs-security-token)."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class ThrottleSpec:
    """Token buckets per (action, access key): `qps` refill rate, `burst` capacity.
    `per_action` overrides `qps` for named actions; qps <= 0 means unlimited."""

    qps: float = 0.0
    burst: float = 0.0  # 0 means: the same as the rate (at least 1)
    per_action: MappingProxyType[str, float] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """Seeded, deterministic faults. Rates are probabilities per request in [0, 1].

    - latency: added to every answer (seconds of the simulator's clock);
    - error_rate: answer 500 InternalError / 503 ServiceUnavailable without acting;
    - drop_rate: act, then close the connection without an answer;
    - reset_rate: act, then reset the connection (TCP RST) without an answer;
    - stall_rate: act, then hold the answer for `stall_seconds` (real seconds);
    - actions: the actions faults apply to (empty = all).
    """

    seed: int = 0
    latency: float = 0.0
    error_rate: float = 0.0
    drop_rate: float = 0.0
    reset_rate: float = 0.0
    stall_rate: float = 0.0
    stall_seconds: float = 30.0
    actions: frozenset[str] = frozenset()
