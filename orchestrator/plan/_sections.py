"""The plan's own sections: `targets`, `waves` and `limits`, read and checked.

Plan rules (rule names, not API codes, unless a limit is the API's): a non-empty
selector; instance IDs shaped `i-…`, none repeated; at most 20 tag pairs (DescribeInstances'
Tag.N, `InvalidTagCount`); waves as `{name, size, <gate keys>}` mappings or the Ansible
shorthand `[1, "10%", "100%"]`, with unique names, sizes a positive count or a percentage
in (0, 100], and no wave that must be empty because the percentages before it already
reach 100% (a wave that comes out empty only for a given number of targets is legal: it
is reported empty at run time); a wave's gate keys are read by `_gates`, and what a wave
leaves out comes from `wave_defaults`; limits within the API's bounds (`batch_size` ≤ 50
unless `instance_quota` says the account's InstanceId.N quota was raised, up to 100).
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Final

from orchestrator import api
from orchestrator.plan._findings import Findings, shown
from orchestrator.plan._gate_rate import check_rate
from orchestrator.plan._gates import GATE_KEYS, Context, Gates, read_gates
from orchestrator.plan._model import Amount, Limits, Targets, Wave
from orchestrator.plan._reader import TYPE, Section, kind
from orchestrator.plan._values import parse_amount

_INSTANCE_ID: Final = re.compile(r"i-[a-z0-9]{1,63}")
_WAVE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_FULL: Final = 100.0
TARGET_KEYS: Final = ("instances", "tags", "zones", "exclude")
WAVE_KEYS: Final = ("name", "size", *GATE_KEYS)
LIMIT_KEYS: Final = (
    "max_concurrency",
    "batch_size",
    "instance_quota",
    "qps",
    "delivery_timeout",
    "ignore_quota",
)
ALL_NAME: Final = "all"  # the one wave of a plan without `waves` (the model's default)
QPS_ACTIONS: Final = ("RunCommand", "Describe", "StopInvocation")
# Keys the next versions add; until then a plan using them is refused, saying why
# (`not-supported-yet`). None at present.
WAVE_LATER: Final[MappingProxyType[str, str]] = MappingProxyType({})


def _ids(section: Section, key: str) -> tuple[str, ...]:
    found = section.strings(key)
    for i, instance_id in enumerate(found):
        if not _INSTANCE_ID.fullmatch(instance_id):
            section.findings.add(
                f"{section.at(key)}[{i}]",
                f"{shown(instance_id)} is not an instance ID "
                "(i- then lowercase letters and digits)",
                "instance-id",
            )
    seen: set[str] = set()
    for i, instance_id in enumerate(found):
        if instance_id in seen:
            section.findings.add(f"{section.at(key)}[{i}]", "is listed twice", "duplicate-id")
        seen.add(instance_id)
    return found


def read_targets(findings: Findings, value: object) -> Targets:
    """The `targets:` section."""
    section = Section(findings, value, "targets", TARGET_KEYS)
    instances = _ids(section, "instances")
    tags = section.string_map("tags")
    if len(tags) > api.TAGS_MAX:
        findings.add(
            section.at("tags"),
            f"has {len(tags)} pairs; DescribeInstances filters on at most {api.TAGS_MAX}",
            "InvalidTagCount",
        )
    for key in tags:
        if not key.strip():
            findings.add(section.at("tags"), "a tag key may not be empty", "empty-key")
    zones = section.strings("zones")
    exclude = _ids(section, "exclude")
    given = section.data.get("instances") or section.data.get("tags")
    if not given and not findings.broken("targets"):
        findings.add("targets", "selects nothing: give instances or tags (or both)", "no-targets")
    return Targets(instances, MappingProxyType(tags), zones, exclude)


def _wave(
    findings: Findings, item: object, path: str, index: int, *, defaults: Gates, context: Context
) -> Wave | None:
    name = f"wave-{index + 1}"
    size_path, size_value = path, item
    gates = defaults  # the shorthand `[1, "10%"]` gives sizes only
    if isinstance(item, dict):
        section = Section(findings, item, path, WAVE_KEYS, WAVE_LATER)
        if "name" in item:
            name = section.string("name", required=True) or name
        own = read_gates(section, context)
        gates = own.over(defaults)
        check_rate(findings, section, own.rate, gates.rate)
        size_path, size_value = section.at("size"), item.get("size")
        if size_value is None:
            findings.add(size_path, "is required", "required")
            return None
    size = parse_amount(size_value)
    if isinstance(size, str):
        findings.add(size_path, size, "wave-size")
        return None
    if not _WAVE_NAME.fullmatch(name):
        findings.add(
            f"{path}.name" if isinstance(item, dict) else path,
            f"{shown(name)}: a wave name is 1-64 letters, digits, _ . or -, starting with a "
            "letter or digit",
            "wave-name",
        )
    return gates.wave(name, size)


def read_waves(
    findings: Findings, value: object, *, defaults: Gates, context: Context
) -> tuple[Wave, ...]:
    """The `waves:` section, `defaults` (from `wave_defaults`) filling what a wave leaves
    out; absent, one wave named `all` of 100%."""
    full = (defaults.wave(ALL_NAME, Amount(100, percent=True)),)
    if value is None:
        return full
    if not isinstance(value, list):
        findings.add("waves", f"must be a list, not {kind(value)}", TYPE)
        return full
    if not value:
        findings.add("waves", "must list at least one wave (or be left out)", "no-waves")
        return full
    waves: list[Wave] = []
    names: dict[str, int] = {}
    taken = 0.0  # percentage of the targets taken by the waves so far
    full_by = ""
    for i, item in enumerate(value):
        path = f"waves[{i}]"
        wave = _wave(findings, item, path, i, defaults=defaults, context=context)
        if wave is None:
            continue
        if wave.name in names:
            findings.add(
                path, f"name {wave.name!r} is also waves[{names[wave.name]}]'s", "duplicate-wave"
            )
        names.setdefault(wave.name, i)
        if full_by:
            findings.add(
                path,
                f"wave {wave.name!r} would always be empty: the waves up to {full_by!r} "
                "already take 100% of the targets",
                "empty-wave",
            )
        if wave.size.percent:
            taken += wave.size.value
            if taken >= _FULL and not full_by:
                full_by = wave.name
        waves.append(wave)
    return tuple(waves)


def read_limits(findings: Findings, value: object) -> Limits:
    """The `limits:` section."""
    section = Section(findings, value, "limits", LIMIT_KEYS)
    defaults = Limits()
    concurrency = None
    if section.has("max_concurrency"):
        amount = parse_amount(section.data["max_concurrency"])
        if isinstance(amount, str):
            findings.add(section.at("max_concurrency"), amount, "max-concurrency")
        else:
            concurrency = amount
    quota = section.integer(
        "instance_quota",
        api.RUN_COMMAND_MAX_INSTANCES,
        accepted=f"a whole number of instances, e.g. {api.RUN_COMMAND_MAX_INSTANCES_QUOTA}",
    )
    if not api.RUN_COMMAND_MAX_INSTANCES <= quota <= api.RUN_COMMAND_MAX_INSTANCES_QUOTA:
        findings.add(
            section.at("instance_quota"),
            f"the InstanceId.N quota is between {api.RUN_COMMAND_MAX_INSTANCES} (the default) "
            f"and {api.RUN_COMMAND_MAX_INSTANCES_QUOTA}, not {quota}",
            "instance-quota",
        )
        quota = api.RUN_COMMAND_MAX_INSTANCES
    batch = section.integer(
        "batch_size",
        defaults.batch_size,
        accepted=f"a whole number of instances, e.g. {defaults.batch_size}",
    )
    if batch < 1:
        findings.add(section.at("batch_size"), f"must be at least 1, not {batch}", "batch-size")
    elif batch > quota:
        raised = (
            ""
            if section.has("instance_quota")
            else "; if the account's quota was raised, say so with instance_quota"
        )
        findings.add(
            section.at("batch_size"),
            f"is {batch}: a RunCommand takes at most {quota} instances{raised}",
            "InstanceIds.ExceedLimit",
        )
    delivery = section.number(
        "delivery_timeout",
        defaults.delivery_timeout,
        accepted=f"a number of seconds, e.g. {defaults.delivery_timeout:g}",
    )
    if delivery <= 0:
        findings.add(
            section.at("delivery_timeout"), "must be more than 0 seconds", "delivery-timeout"
        )
    return Limits(
        max_concurrency=concurrency,
        batch_size=batch,
        qps=_qps(findings, section),
        delivery_timeout=delivery,
        ignore_quota=section.boolean("ignore_quota", defaults.ignore_quota),
    )


def _qps(findings: Findings, limits: Section) -> MappingProxyType[str, float]:
    section = Section(findings, limits.data.get("qps"), limits.at("qps"), QPS_ACTIONS)
    rates: dict[str, float] = {}
    for action in QPS_ACTIONS:
        if not section.has(action):
            continue
        rate = section.number(action, 0.0, accepted="a number of requests per second, e.g. 10")
        if findings.broken(section.at(action)):
            continue
        if rate <= 0:
            findings.add(
                section.at(action), "must be a number of requests per second above 0", "qps"
            )
        else:
            rates[action] = rate
    return MappingProxyType(rates)
