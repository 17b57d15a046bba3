"""What a plan is, as frozen data: targets, the command, waves and limits.

The loader (`_load.py`) builds these from YAML and the rules (`_rules.py`) check them;
everything downstream reads only these types. docs/plan-reference.md describes every
field; a test fails when a field here is missing there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path


def _no_strings() -> Mapping[str, str]:
    return MappingProxyType({})


def _no_rates() -> Mapping[str, float]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Amount:
    """A count (`5`) or a percentage (`"10%"`) of some whole.

    A percentage rounds up and is at least 1 of a non-empty whole, so `1%` of 3
    instances is 1, never 0 (the Ansible trap of a percentage rounding to nothing).
    A count larger than the whole is the whole.
    """

    value: float
    percent: bool = False

    def of(self, whole: int) -> int:
        """How many of `whole` this amount is."""
        if whole <= 0:
            return 0
        if self.percent:
            return min(whole, max(1, math.ceil(whole * self.value / 100 - 1e-9)))
        return min(whole, int(self.value))

    def floor_of(self, whole: int) -> int:
        """How many of `whole` this amount allows, never rounding up: the rule for
        thresholds (`max_errors: 5%` of 30 instances allows 1 error, of 10 allows 0),
        so a percentage never tolerates more than it says."""
        if whole <= 0:
            return 0
        if self.percent:
            return min(whole, math.floor(whole * self.value / 100 + 1e-9))
        return min(whole, int(self.value))

    def __str__(self) -> str:
        if self.percent:
            return f"{self.value:g}%"
        return str(int(self.value))


@dataclass(frozen=True, slots=True)
class Targets:
    """Which instances: the union of `instances` and the instances carrying *all* of
    `tags`, narrowed to `zones` when given, minus `exclude`."""

    instances: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=_no_strings, hash=False)
    zones: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Command:
    """What runs on each instance: the RunCommand parameters of the plan.

    `content` is plain text (the plan's `content`, or the file its `script` names); it is
    sent Base64-encoded. `parameters` imply EnableParameter; `enable_parameter` says so
    explicitly (the loader sets it when the content uses `{{ACS::…}}` built-ins or
    `{{oos:…}}` values without `parameters`). Send `parameters_enabled`.
    """

    content: str
    type: str = "RunShellScript"
    name: str = ""
    description: str = ""
    parameters: Mapping[str, str] = field(default_factory=_no_strings, hash=False)
    timeout: int = 60
    username: str | None = None
    working_dir: str | None = None
    windows_password_name: str | None = None
    container_id: str | None = None
    container_name: str | None = None
    repeat_mode: str = "Once"
    frequency: str | None = None
    keep_command: bool = False
    tags: Mapping[str, str] = field(default_factory=_no_strings, hash=False)
    termination_mode: str | None = None
    launcher: str | None = None
    enable_parameter: bool | None = None  # None: on exactly when `parameters` are given

    @property
    def parameters_enabled(self) -> bool:
        """EnableParameter as it is sent: explicit, else implied by `parameters`."""
        if self.enable_parameter is not None:
            return self.enable_parameter
        return bool(self.parameters)


@dataclass(frozen=True, slots=True)
class Verify:
    """A check run on a wave's succeeded instances after the wave (RunCommand again).
    Its failures count as the wave's failures; if it cannot run at all the result is
    inconclusive and the rollout waits for a person, never passing silently."""

    content: str
    type: str = "RunShellScript"
    timeout: int = 60


@dataclass(frozen=True, slots=True)
class Rollback:
    """What undoes the command: run by `on_breach: rollback` or `orchestrator rollback
    RUN` on the instances a run touched (those where the command began: succeeded,
    failed, stopped), as a run of its own with one wave, `rollback`, and this gate.

    `content`, `type` and `timeout` as a `Verify`'s (sent without EnableParameter, as
    the agent's default user), but `content` is as written: the command's parameters
    are put in when it is sent (`rollback_plan`), as the run had them. `max_errors`: None (the
    default) = no limit: a rollback that fails on some instances still rolls back the
    others, and reports the failures. `max_concurrency`: instances rolling back at once
    (None: `limits.max_concurrency`)."""

    content: str
    type: str = "RunShellScript"
    timeout: int = 60
    max_errors: Amount | None = None
    max_concurrency: Amount | None = None


@dataclass(frozen=True, slots=True)
class Wave:
    """One step of the rollout: `size` instances (a count or a percentage of the whole
    target set); the last wave takes whatever remains.

    The gate: `max_errors` counted errors are tolerated (a count, or a percentage of the
    wave's size taken with `Amount.floor_of` when the wave starts); the next one breaches
    it and the rollout halts (SSM's stop rule). None = no limit. `max_concurrency`
    overrides `limits.max_concurrency` for this wave (a percentage is of the wave).
    After the wave passes: `verify` runs, then `pause` seconds pass, then, with
    `approval`, a person (or `--approve`, or `orchestrator approve`) lets the next wave go.

    Zone budgets (None = none): `max_errors_per_zone` tolerates that many counted errors
    in each zone (a count, or a percentage of the zone's instances in this wave, floored,
    frozen when the wave starts); the next one stops that zone (`order: spread`: its
    other instances are not sent, in this wave or later ones, while the other zones go
    on) or halts the rollout (`order: by_zone`). `max_concurrency_per_zone`: at most that
    many of one zone's instances execute at once (a percentage is of the zone's share of
    the wave).

    `max_error_rate` (a percentage; None = none): the statistical gate, which breaches once
    the `confidence` lower Wilson bound of the failure rate over at least `min_sample`
    completed instances is above it (rollout/_gate_rate.py). Set without `max_errors`,
    `max_errors` is None: the rate alone decides.
    """

    name: str
    size: Amount
    max_errors: Amount | None = Amount(0)
    max_concurrency: Amount | None = None
    pause: float = 0.0
    approval: bool = False
    verify: Verify | None = None
    max_errors_per_zone: Amount | None = None
    max_concurrency_per_zone: Amount | None = None
    max_error_rate: float | None = None
    confidence: float = 95.0
    min_sample: int = 1


@dataclass(frozen=True, slots=True)
class Limits:
    """How fast and how wide.

    `max_concurrency`: instances executing at once (count or percentage of the targets;
    None = only the rate limits bound it). `batch_size`: instances per RunCommand (the
    API's InstanceId.N limit: 50, up to 100 where the account's quota allows).
    `qps`: requests per second per API action (`RunCommand`, `Describe` for every
    Describe* call, `StopInvocation`); the ceilings the client's adaptive limiter starts
    at, over `ecs.DEFAULT_RATES`. `delivery_timeout`: seconds after dispatch after
    which an instance that never started is undelivered. `ignore_quota`: start even when
    the daily invocation quota cannot cover the run.
    """

    max_concurrency: Amount | None = None
    batch_size: int = 50
    qps: Mapping[str, float] = field(default_factory=_no_rates, hash=False)
    delivery_timeout: float = 300.0
    ignore_quota: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    """A whole plan. `source` and `sha256` say where it came from (the journal refuses
    to resume a run whose plan file changed).

    `on_breach`: when a wave breaches its gate, `stop_in_flight` sends StopInvocation to
    what still runs; `finish_in_flight` lets it finish; `rollback` stops it as
    `stop_in_flight` does, then the CLI starts a run of `rollback` on the instances the
    run touched. Either way later waves never start. `order`: `spread` mixes zones in
    every wave and batch; `by_zone` finishes one zone before the next.
    `count_undelivered`: whether instances that never ran (agent offline, delivery
    deadline) count against `max_errors` (they do by default, unlike SSM). `rollback`:
    what undoes the command (`Rollback`), if the plan says.
    """

    name: str
    targets: Targets
    command: Command
    waves: tuple[Wave, ...] = (Wave("all", Amount(100, percent=True)),)
    limits: Limits = Limits()
    region: str | None = None
    source: Path | None = None
    sha256: str = ""
    on_breach: Literal["stop_in_flight", "finish_in_flight", "rollback"] = "stop_in_flight"
    order: Literal["spread", "by_zone"] = "spread"
    count_undelivered: bool = True
    rollback: Rollback | None = None
