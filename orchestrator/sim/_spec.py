"""The small value types of the fleet file: the parts the simulator's wire layer reads
(keys, throttling, faults) and the account settings RunCommand checks (resource groups,
parameter store, regions without Cloud Assistant). Instances, agent behaviour and the
parsing of the file are in `_fleet.py`."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

# The documented default key pair: a user or another client can call a fresh simulator
# at once with it. It guards nothing real, so it is not a secret.
DEFAULT_ACCESS_KEY_ID: Final = "LTAI5tSimulatorDefaultKey"
DEFAULT_ACCESS_KEY_SECRET: Final = "simulator-default-secret"  # noqa: S105


@dataclass(frozen=True, slots=True)
class KeySpec:
    """An access key pair the simulator accepts. With `security_token`, it is an STS
    credential: requests must carry that token (`SecurityToken` / x-acs-security-token).

    The flags describe who holds the key (all off by default = an unrestricted owner):
    - forbidden: a RAM user without `ecs:RunCommand` (RunCommand → Operation.Forbidden);
    - bid_user: a bid (reseller) account that may not own resources (RunCommand →
      OperationDenied.BidOwnResource);
    - parameter_store_access: False = no OOS permission (a `{{oos:…}}` reference →
      ParameterStore.NoPermission);
    - revoked: an STS credential revoked before its expiry (every call →
      TemporaryAccessKey.Error); only for keys with a `security_token`.
    """

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)
    forbidden: bool = False
    bid_user: bool = False
    parameter_store_access: bool = True
    revoked: bool = False


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
    - dispatch_error_rate: RunCommand and StopInvocation only: answer 500
      InternalError.Dispatch without acting (drawn from a stream of its own, so setting
      it does not change the decisions the other rates make);
    - drop_rate: act, then close the connection without an answer;
    - reset_rate: act, then reset the connection (TCP RST) without an answer;
    - stall_rate: act, then hold the answer for `stall_seconds` (real seconds);
    - actions: the actions faults apply to (empty = all).
    """

    seed: int = 0
    latency: float = 0.0
    error_rate: float = 0.0
    dispatch_error_rate: float = 0.0
    drop_rate: float = 0.0
    reset_rate: float = 0.0
    stall_rate: float = 0.0
    stall_seconds: float = 30.0
    actions: frozenset[str] = frozenset()


# The real service keeps invocation records of the last 30 days, at most 10,000
# (api-schemas.md, DescribeInvocationResults "Retention", DOC 2026-06; earlier pages said
# four or two weeks and 100,000). Which of its invocations count, and whether a running
# one can be aged out, is not documented: here only a finished one is (unconfirmed).
HISTORY_MAX_FINISHED: Final = 10_000
HISTORY_MAX_AGE: Final = 30 * 86_400.0


@dataclass(frozen=True, slots=True)
class HistorySpec:
    """How long finished invocations stay listed: at most `max_finished` of them, none
    finished more than `max_age` simulation seconds ago. An invocation with an instance
    still pending, running or scheduled is kept whatever its age."""

    max_finished: int = HISTORY_MAX_FINISHED
    max_age: float = HISTORY_MAX_AGE


ResourceGroupState = Literal["Available", "Creating", "Deleting"]
RESOURCE_GROUP_STATES: Final = ("Available", "Creating", "Deleting")
_NO_NAMES: Final[MappingProxyType[str, str]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """Account and region settings RunCommand checks. Every default is the behaviour
    before these settings existed: any resource group, any parameter-store reference.

    - resource_groups: id → state; None (not configured) accepts any ResourceGroupId;
    - parameter_store / secret_parameters: name → value of the OOS parameters that
      `{{oos:NAME}}` / `{{oos-secret:NAME}}` refer to; None accepts any name and leaves
      the reference as written;
    - parameter_store_supported: False = this region has no parameter store;
    - regions_without_cloud_assistant: real regions where the Cloud Assistant API is
      not offered (RegionId.ApiNotSupported rather than InvalidRegionId.NotFound);
    - hidden_zones: zones DescribeZones leaves out though instances are in them (the
      real list can be incomplete: a zone closed to new purchases, `_zones.py`).
    """

    resource_groups: MappingProxyType[str, ResourceGroupState] | None = None
    parameter_store: MappingProxyType[str, str] | None = field(default=None, repr=False)
    secret_parameters: MappingProxyType[str, str] | None = field(default=None, repr=False)
    parameter_store_supported: bool = True
    regions_without_cloud_assistant: frozenset[str] = frozenset()
    hidden_zones: frozenset[str] = frozenset()

    def store_values(self) -> dict[str, str]:
        """`oos:NAME` / `oos-secret:NAME` → value, the keys `render` looks up."""
        values = {f"oos:{k}": v for k, v in (self.parameter_store or _NO_NAMES).items()}
        values |= {f"oos-secret:{k}": v for k, v in (self.secret_parameters or _NO_NAMES).items()}
        return values
