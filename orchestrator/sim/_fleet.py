"""The fleet file: YAML → a validated, frozen `FleetSpec` (instances, agents, quotas).

Every value is checked where it is read, and an error names its place in the file
(`fleet.generate[0].zones: must be a non-empty list`). Generated instances are seeded:
the same file always yields the same IDs, zones, states and agent versions. The demo
fleet ships inside the package (`orchestrator/sim/fleets/demo.yaml`, the same text as
`plans/fleets/demo.yaml`) so `default_fleet()` works from an installed wheel too.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal, cast

import yaml

from orchestrator import api
from orchestrator.sim._agent import Behaviour, BehaviourRule, BehaviourSpec
from orchestrator.sim._fleet_node import FleetError, Node
from orchestrator.sim._spec import (
    HISTORY_MAX_AGE,
    HISTORY_MAX_FINISHED,
    RESOURCE_GROUP_STATES,
    AccountSpec,
    FaultSpec,
    HistorySpec,
    KeySpec,
    ResourceGroupState,
    ThrottleSpec,
)
from orchestrator.sim._sts_fleet import StsSpec, parse_sts

OsType = Literal["linux", "windows"]
AgentState = Literal["online", "offline", "not_installed"]
AgentMode = Literal["simulated", "local"]

DEFAULT_AGENT_VERSION: Final = {"linux": "2.2.3.857", "windows": "2.1.3.857"}
OLD_AGENT_VERSION: Final = {"linux": "2.2.0.106", "windows": "2.1.0.106"}  # < 2.x.3.282
DEFAULT_OS_NAME: Final = {
    "linux": "Alibaba Cloud Linux 3.2104 LTS 64 bit",
    "windows": "Windows Server 2022 Datacenter 64bit",
}
_CREATED_BASE: Final = datetime(2024, 1, 1, tzinfo=UTC)
_ID_ALPHABET: Final = string.ascii_lowercase + string.digits
_INSTANCE_ID: Final = re.compile(r"^i-[a-z0-9]{1,40}$")


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    """One simulated ECS instance and its Cloud Assistant agent."""

    instance_id: str
    name: str
    zone: str
    tags: tuple[tuple[str, str], ...]
    os: OsType
    status: str
    agent: AgentState
    agent_version: str  # "" when not installed
    instance_type: str
    os_name: str
    created: datetime


@dataclass(frozen=True, slots=True)
class QuotaSpec:
    """Account quotas the simulator enforces (and DescribeAccountAttributes reports)."""

    # Counted per instance per RunCommand, not per call: whether the real quota counts
    # calls or instance runs is unconfirmed; counting runs is the conservative reading.
    invocations_daily: int = 10_000
    commands: int = 500  # kept commands (KeepCommand=true)
    max_instances_per_call: int = api.RUN_COMMAND_MAX_INSTANCES


@dataclass(frozen=True, slots=True)
class FleetSpec:
    """A whole simulated account in one region."""

    region: str = "cn-hangzhou"
    account_id: str = "1234567890123456"
    seed: int = 0
    time_scale: float = 1.0
    keys: tuple[KeySpec, ...] = ()  # empty: the default pair in _spec.py
    throttle: ThrottleSpec = field(default_factory=ThrottleSpec)
    faults: FaultSpec = field(default_factory=FaultSpec)
    quotas: QuotaSpec = field(default_factory=QuotaSpec)
    instances: tuple[InstanceSpec, ...] = ()
    behaviour: BehaviourSpec = field(default_factory=BehaviourSpec)
    agent_mode: AgentMode = "simulated"
    local_concurrency: int = 16  # local mode: scripts running at once
    run_command_latency: float = 0.0  # simulation seconds a RunCommand takes to accept
    account: AccountSpec = field(default_factory=AccountSpec)
    history: HistorySpec = field(default_factory=HistorySpec)
    sts: StsSpec = field(default_factory=StsSpec)  # roles, OIDC providers (_sts_fleet.py)


def load_fleet(source: Path | str) -> FleetSpec:
    """A fleet from a file path (a `Path`, or a one-line string naming a file), or
    from YAML text."""
    origin = "fleet"
    if isinstance(source, Path) or ("\n" not in source and Path(source).is_file()):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise FleetError(f"{path}: cannot read the fleet file: {exc.strerror}") from None
        origin = f"{path}: fleet"
    else:
        text = source
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FleetError(f"{origin}: not valid YAML: {exc}") from exc
    if isinstance(data, str) and "\n" not in text:
        raise FleetError(f"{text}: no such fleet file")  # a mistyped path, not a fleet
    try:
        return _parse(Node(data if data is not None else {}, "fleet"))
    except FleetError as exc:
        if origin != "fleet":
            raise FleetError(f"{origin.removesuffix(': fleet')}: {exc}") from None
        raise


def default_fleet() -> FleetSpec:
    """The demo fleet shipped in the package (same text as plans/fleets/demo.yaml)."""
    text = resources.files("orchestrator.sim").joinpath("fleets/demo.yaml").read_text("utf-8")
    return load_fleet(text)


def _parse(root: Node) -> FleetSpec:
    root.only(
        "region", "account_id", "seed", "time_scale", "keys", "throttle", "faults", "quotas",
        "instances", "generate", "behaviour", "agent_mode", "local_concurrency",
        "run_command_latency", "account", "history", "sts",
    )  # fmt: skip
    region = root.str_("region", "cn-hangzhou")
    seed = root.integer("seed", 0)
    time_scale = root.number("time_scale", 1.0)
    if time_scale <= 0:
        raise root.fail("time_scale", "must be > 0")
    instances = _listed(root, region, seed) + _generated(root, region, seed)
    seen: set[str] = set()
    for inst in instances:
        if inst.instance_id in seen:
            raise root.fail("instances", f"duplicate instance id {inst.instance_id}")
        seen.add(inst.instance_id)
    return FleetSpec(
        region=region,
        account_id=root.str_("account_id", "1234567890123456"),
        seed=seed,
        time_scale=time_scale,
        keys=_keys(root),
        throttle=_throttle(root.child("throttle")),
        faults=_faults(root.child("faults")),
        quotas=_quotas(root.child("quotas")),
        instances=tuple(instances),
        behaviour=_behaviour(root.child("behaviour")),
        agent_mode=root.choice("agent_mode", "simulated", ("simulated", "local")),  # type: ignore[arg-type]
        local_concurrency=root.integer("local_concurrency", 16, low=1),
        run_command_latency=root.number("run_command_latency", 0.0),
        account=_account(root.child("account"), region),
        history=_history(root.child("history")),
        sts=parse_sts(root.child("sts")),
    )


def _history(node: Node) -> HistorySpec:
    node.only("max_finished", "max_age")
    max_age = node.number("max_age", HISTORY_MAX_AGE)
    if max_age <= 0:
        raise node.fail("max_age", "must be > 0")
    return HistorySpec(node.integer("max_finished", HISTORY_MAX_FINISHED, low=1), max_age)


def _keys(root: Node) -> tuple[KeySpec, ...]:
    keys = []
    for node in root.items("keys"):
        node.only(
            "access_key_id", "access_key_secret", "security_token", "forbidden", "bid_user",
            "parameter_store_access", "revoked",
        )  # fmt: skip
        key_id, secret = node.str_("access_key_id", ""), node.str_("access_key_secret", "")
        if not key_id or not secret:
            raise node.fail("access_key_id" if not key_id else "access_key_secret", "is required")
        token = node.str_("security_token", "") or None
        revoked = node.boolean("revoked", default=False)
        if revoked and token is None:
            raise node.fail("revoked", "only a temporary key (with a security_token) is revoked")
        keys.append(
            KeySpec(
                key_id,
                secret,
                token,
                forbidden=node.boolean("forbidden", default=False),
                bid_user=node.boolean("bid_user", default=False),
                parameter_store_access=node.boolean("parameter_store_access", default=True),
                revoked=revoked,
            )
        )
    return tuple(keys)


def _account(node: Node, region: str) -> AccountSpec:
    node.only(
        "resource_groups", "parameter_store", "secret_parameters", "parameter_store_supported",
        "regions_without_cloud_assistant", "hidden_zones",
    )  # fmt: skip
    groups = node.names("resource_groups")
    for group_id, state in (groups or {}).items():
        if state not in RESOURCE_GROUP_STATES:
            raise node.fail(
                f"resource_groups.{group_id}", f"must be one of {', '.join(RESOURCE_GROUP_STATES)}"
            )
    store, secrets = node.names("parameter_store"), node.names("secret_parameters")
    supported = node.boolean("parameter_store_supported", default=True)
    if not supported and (store or secrets):
        raise node.fail("parameter_store_supported", "is false, yet parameters are listed")
    regions = node.strings("regions_without_cloud_assistant")
    if region in regions:
        raise node.fail("regions_without_cloud_assistant", f"lists the fleet's own {region}")
    states = cast("dict[str, ResourceGroupState]", groups or {})  # checked just above
    return AccountSpec(
        resource_groups=None if groups is None else MappingProxyType(states),
        parameter_store=None if store is None else MappingProxyType(store),
        secret_parameters=None if secrets is None else MappingProxyType(secrets),
        parameter_store_supported=supported,
        regions_without_cloud_assistant=frozenset(regions),
        hidden_zones=frozenset(node.strings("hidden_zones")),
    )


def _throttle(node: Node) -> ThrottleSpec:
    node.only("qps", "burst", "per_action")
    per_action = node.child("per_action")
    rates = {str(action): per_action.number(str(action), 0.0) for action in per_action.data}
    return ThrottleSpec(node.number("qps", 0.0), node.number("burst", 0.0), MappingProxyType(rates))


def _faults(node: Node) -> FaultSpec:
    node.only(
        "seed", "latency", "error_rate", "dispatch_error_rate", "drop_rate", "reset_rate",
        "stall_rate", "stall_seconds", "actions",
    )  # fmt: skip
    return FaultSpec(
        seed=node.integer("seed", 0),
        latency=node.number("latency", 0.0),
        error_rate=node.rate("error_rate"),
        dispatch_error_rate=node.rate("dispatch_error_rate"),
        drop_rate=node.rate("drop_rate"),
        reset_rate=node.rate("reset_rate"),
        stall_rate=node.rate("stall_rate"),
        stall_seconds=node.number("stall_seconds", 30.0),
        actions=frozenset(node.strings("actions")),
    )


def _quotas(node: Node) -> QuotaSpec:
    node.only("invocations_daily", "commands", "max_instances_per_call")
    max_per_call = node.integer("max_instances_per_call", api.RUN_COMMAND_MAX_INSTANCES, low=1)
    if max_per_call > api.RUN_COMMAND_MAX_INSTANCES_QUOTA:
        raise node.fail("max_instances_per_call", "must be <= 100")
    return QuotaSpec(
        invocations_daily=node.integer("invocations_daily", 10_000),
        commands=node.integer("commands", 500),
        max_instances_per_call=max_per_call,
    )


def _random_id(rng: random.Random) -> str:
    return "i-" + "".join(rng.choices(_ID_ALPHABET, k=20))


def _zone(node: Node, key: str, zone: str, region: str) -> str:
    if not zone.startswith(region + "-"):
        raise node.fail(key, f"zone {zone!r} is not in region {region}")
    return zone


def _os(node: Node) -> OsType:
    return node.choice("os", "linux", ("linux", "windows"))  # type: ignore[return-value]


def _listed(root: Node, region: str, seed: int) -> list[InstanceSpec]:
    result = []
    for index, node in enumerate(root.items("instances")):
        node.only(
            "id", "name", "zone", "tags", "os", "status", "agent", "agent_version",
            "instance_type", "os_name",
        )  # fmt: skip
        rng = random.Random(f"{seed}:listed:{index}")  # noqa: S311 - simulation, not security
        instance_id = node.str_("id", "") or _random_id(rng)
        if not _INSTANCE_ID.match(instance_id):
            raise node.fail("id", "must look like i-<lowercase letters and digits>")
        if "zone" not in node.data:
            raise node.fail("zone", "is required")
        os_type = _os(node)
        agent: AgentState = node.choice("agent", "online", ("online", "offline", "not_installed"))  # type: ignore[assignment]
        version = node.str_("agent_version", DEFAULT_AGENT_VERSION[os_type])
        result.append(
            InstanceSpec(
                instance_id=instance_id,
                name=node.str_("name", f"node-{index + 1}"),
                zone=_zone(node, "zone", node.str_("zone", ""), region),
                tags=node.tags("tags"),
                os=os_type,
                status=node.choice("status", "Running", api.INSTANCE_STATUSES),
                agent=agent,
                agent_version="" if agent == "not_installed" else version,
                instance_type=node.str_("instance_type", "ecs.g7.large"),
                os_name=node.str_("os_name", DEFAULT_OS_NAME[os_type]),
                created=_CREATED_BASE + timedelta(minutes=rng.randrange(300 * 24 * 60)),
            )
        )
    return result


def _generated(root: Node, region: str, seed: int) -> list[InstanceSpec]:
    result = []
    for group_index, node in enumerate(root.items("generate")):
        node.only(
            "count", "zones", "spread", "tags", "os", "name_prefix", "status", "offline_rate",
            "not_installed_rate", "stopped_rate", "old_agent_rate", "agent_version",
            "instance_type", "os_name",
        )  # fmt: skip
        count = node.integer("count", 0, low=1)
        zones = [_zone(node, "zones", z, region) for z in node.strings("zones", required=True)]
        spread = node.choice("spread", "round_robin", ("round_robin", "random"))
        os_type = _os(node)
        tags, prefix = node.tags("tags"), node.str_("name_prefix", f"node-{group_index + 1}-")
        status = node.choice("status", "Running", api.INSTANCE_STATUSES)
        offline, missing = node.rate("offline_rate"), node.rate("not_installed_rate")
        stopped, old = node.rate("stopped_rate"), node.rate("old_agent_rate")
        version = node.str_("agent_version", DEFAULT_AGENT_VERSION[os_type])
        instance_type = node.str_("instance_type", "ecs.g7.large")
        os_name = node.str_("os_name", DEFAULT_OS_NAME[os_type])
        rng = random.Random(f"{seed}:generate:{group_index}")  # noqa: S311 - simulation
        width = len(str(count))
        for k in range(count):
            # Draw the same numbers in the same order whatever the rates, so changing one
            # rate does not reshuffle every other choice.
            instance_id = _random_id(rng)
            u_zone, u_stop, u_agent, u_old = rng.random(), rng.random(), rng.random(), rng.random()
            minutes = rng.randrange(300 * 24 * 60)
            zone = (
                zones[k % len(zones)]
                if spread == "round_robin"
                else zones[int(u_zone * len(zones))]
            )
            agent: AgentState = (
                "offline" if u_agent < offline else
                "not_installed" if u_agent < offline + missing else "online"
            )  # fmt: skip
            agent_version = OLD_AGENT_VERSION[os_type] if u_old < old else version
            result.append(
                InstanceSpec(
                    instance_id=instance_id,
                    name=f"{prefix}{k + 1:0{width}d}",
                    zone=zone,
                    tags=tags,
                    os=os_type,
                    status="Stopped" if u_stop < stopped else status,
                    agent=agent,
                    agent_version="" if agent == "not_installed" else agent_version,
                    instance_type=instance_type,
                    os_name=os_name,
                    created=_CREATED_BASE + timedelta(minutes=minutes),
                )
            )
    return result


_BEHAVIOUR_KEYS: Final = (
    "duration", "delivery_delay", "exit_code", "output", "output_repeat", "fail_rate",
    "fail_exit_code", "fail_output", "hang_rate",
)  # fmt: skip


def _behaviour_fields(node: Node) -> dict[str, object]:
    """The behaviour keys present in `node`, parsed (absent keys are left out)."""
    base = Behaviour()
    fields: dict[str, object] = {}
    for key in _BEHAVIOUR_KEYS:
        if key not in node.data:
            continue
        if key in {"duration", "delivery_delay"}:
            fields[key] = node.span(key, getattr(base, key))
        elif key in {"output", "fail_output"}:
            fields[key] = node.str_(key, "")
        elif key in {"fail_rate", "hang_rate"}:
            fields[key] = node.rate(key)
        elif key == "output_repeat":
            fields[key] = node.integer(key, 1, low=1)
        else:
            value = node.data[key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise node.fail(key, "must be an integer")
            fields[key] = value
    return fields


def _behaviour(node: Node) -> BehaviourSpec:
    node.only("default", "rules", "offline_timeout", "stop_delay")
    default_node = node.child("default")
    default_node.only(*_BEHAVIOUR_KEYS)
    default = Behaviour(**_behaviour_fields(default_node))  # type: ignore[arg-type]
    rules = []
    for rule in node.items("rules"):
        rule.only("match", *_BEHAVIOUR_KEYS)
        match = rule.child("match")
        match.only("tags", "instances")
        tags, instances = match.tags("tags"), match.strings("instances")
        if not tags and not instances:
            raise rule.fail("match", "must name tags or instances")
        overrides = _behaviour_fields(rule)
        rules.append(BehaviourRule(tags, frozenset(instances), tuple(overrides.items())))
    return BehaviourSpec(
        default=default,
        rules=tuple(rules),
        offline_timeout=node.number("offline_timeout", 60.0),
        stop_delay=node.number("stop_delay", 1.0),
    )
