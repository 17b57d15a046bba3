"""What the ECS API answers: the response types and the pure decoders of JSON bodies.

Each answer becomes a frozen, slotted dataclass named for what it is, and a paged call
a `Page` of them. The `decode_*` functions turn times to aware UTC datetimes, Base64
output to text and status strings to the enums of `orchestrator.api` (this module
is the one place where wire strings become enums). Nothing here does I/O, so every rule
is tested without a network. A body that breaks the schema raises ValueError, KeyError
or TypeError naming the field (the field rules are in `_fields`); the client reports
that as an `InvalidResponse` error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime  # noqa: TC003 - dataclass fields are resolved at run time
from types import MappingProxyType
from typing import Any, Final, Generic, TypeVar

from orchestrator import api
from orchestrator.ecs._fields import (
    count,
    decode_output,
    empty,
    enum_of,
    frozen,
    integer,
    nested,
    required,
    show,
    tags_of,
    text,
    time_of,
)

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a paged call; an empty `next_token` means it was the last."""

    items: tuple[T, ...]
    next_token: str


# --- RunCommand -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunCommandResult:
    """The IDs RunCommand answers with."""

    request_id: str
    command_id: str
    invoke_id: str


def decode_run_command(body: Mapping[str, Any]) -> RunCommandResult:
    """RunCommand's answer: `{RequestId, CommandId, InvokeId}`."""
    return RunCommandResult(
        request_id=text(body, "RequestId"),
        command_id=required(body, "CommandId"),
        invoke_id=required(body, "InvokeId"),
    )


# --- DescribeInstances --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Instance:
    """One ECS instance: what targeting needs, and what the journal, `instances` and the
    reports show of it. A run holds one per target for its whole length (100,000 at the
    largest fleets), so the decoder keeps each cheap: the text a fleet repeats (zone,
    region, OS, type, resource group, tag keys and values) is one shared string, and
    instances with the same tags and creation time share one mapping and one datetime.
    """

    instance_id: str
    name: str
    status: api.InstanceStatus
    zone_id: str
    region_id: str
    os_type: str  # `linux` / `windows`, lower case in this call
    os_name: str = ""
    hostname: str = ""
    instance_type: str = ""
    resource_group_id: str = ""
    creation_time: datetime | None = None
    private_ips: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=empty, hash=False)


def _private_ips(item: Mapping[str, Any]) -> tuple[str, ...]:
    vpc = item.get("VpcAttributes") or {}
    if not isinstance(vpc, Mapping):
        raise TypeError("VpcAttributes must be an object")
    addresses = vpc.get("PrivateIpAddress") or {}
    if not isinstance(addresses, Mapping):
        raise TypeError("VpcAttributes.PrivateIpAddress must be an object")
    raw_ips = addresses.get("IpAddress") or []
    if not isinstance(raw_ips, list) or not all(isinstance(ip, str) for ip in raw_ips):
        raise TypeError("VpcAttributes.PrivateIpAddress.IpAddress must be a list of strings")
    return tuple(raw_ips)


# Tag sets and creation times many instances have alike, each kept once. Bounded: a
# fleet of all-different values costs a table this size, never one entry per instance.
_SHARED_MAX: Final = 4096
_TAG_SETS: dict[tuple[tuple[str, str], ...], Mapping[str, str]] = {}
_CREATION_TIMES: dict[str, datetime | None] = {}


def _shared(table: dict[K, V], key: K, make: Callable[[], V]) -> V:
    """`table[key]`, made by `make` the first time; the table starts over when full."""
    try:
        return table[key]
    except KeyError:
        pass
    if len(table) >= _SHARED_MAX:
        table.clear()
    value = table[key] = make()
    return value


def _word(item: Mapping[str, Any], key: str) -> str:
    """A text field whose value many instances share (a zone, an OS, a tag key)."""
    return sys.intern(text(item, key))


def _instance_tags(item: Mapping[str, Any]) -> Mapping[str, str]:
    """`Tags.Tag[]` as a read-only mapping, one mapping for every instance with the same
    tags (as `tags_of` reads them: the last of a repeated key wins)."""
    pairs = {_word(tag, "TagKey"): _word(tag, "TagValue") for tag in nested(item, "Tags", "Tag")}
    if not pairs:
        return empty()
    return _shared(_TAG_SETS, tuple(pairs.items()), lambda: MappingProxyType(pairs))


def _creation_time(item: Mapping[str, Any]) -> datetime | None:
    stamp = text(item, "CreationTime")
    return _shared(_CREATION_TIMES, stamp, lambda: time_of(item, "CreationTime"))


def _instance(item: Mapping[str, Any]) -> Instance:
    return Instance(
        instance_id=required(item, "InstanceId"),
        name=text(item, "InstanceName"),
        status=enum_of(api.InstanceStatus, item, "Status"),
        zone_id=_word(item, "ZoneId"),
        region_id=_word(item, "RegionId"),
        os_type=_word(item, "OSType"),
        os_name=_word(item, "OSName"),
        hostname=text(item, "HostName"),
        instance_type=_word(item, "InstanceType"),
        resource_group_id=_word(item, "ResourceGroupId"),
        creation_time=_creation_time(item),
        private_ips=_private_ips(item),
        tags=_instance_tags(item),
    )


def decode_instances_page(body: Mapping[str, Any]) -> Page[Instance]:
    """A DescribeInstances page: `Instances.Instance[]`, top-level `NextToken`."""
    items = tuple(_instance(item) for item in nested(body, "Instances", "Instance"))
    return Page(items, text(body, "NextToken"))


# --- DescribeCloudAssistantStatus -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CloudAssistantStatus:
    """The Cloud Assistant agent of one instance: online = a heartbeat in the last 2 min."""

    instance_id: str
    online: bool
    version: str = ""
    last_heartbeat: datetime | None = None
    last_invoked: datetime | None = None
    os_type: str = ""  # `Linux` / `Windows` / `FreeBSD`, capitalised in this call
    active_task_count: int = 0
    invocation_count: int = 0


def _online(item: Mapping[str, Any]) -> bool:
    # SDK and DOC21 give the string "true"; the 2024 DOC example a JSON boolean.
    value = item.get("CloudAssistantStatus")
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise ValueError(f"CloudAssistantStatus has an unknown value {show(value)}")


def _assistant_status(item: Mapping[str, Any]) -> CloudAssistantStatus:
    return CloudAssistantStatus(
        instance_id=required(item, "InstanceId"),
        online=_online(item),
        version=text(item, "CloudAssistantVersion"),
        last_heartbeat=time_of(item, "LastHeartbeatTime"),
        last_invoked=time_of(item, "LastInvokedTime"),
        os_type=text(item, "OSType"),
        active_task_count=count(item, "ActiveTaskCount"),
        invocation_count=count(item, "InvocationCount"),
    )


def decode_cloud_assistant_status_page(body: Mapping[str, Any]) -> Page[CloudAssistantStatus]:
    """`InstanceCloudAssistantStatusSet.InstanceCloudAssistantStatus[]`, top-level paging."""
    items = nested(body, "InstanceCloudAssistantStatusSet", "InstanceCloudAssistantStatus")
    return Page(tuple(_assistant_status(item) for item in items), text(body, "NextToken"))


# --- DescribeInvocations ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InvocationInstance:
    """One instance of an invocation (`InvokeInstances.InvokeInstance[]`)."""

    instance_id: str
    status: api.InstanceInvocationStatus
    exit_code: int | None = None
    error_code: str = ""
    error_info: str = ""
    output: str = ""  # decoded from Base64; "" unless IncludeOutput was asked for
    dropped: int = 0  # bytes of output cut off beyond 24 KB
    repeats: int = 0
    creation_time: datetime | None = None
    start_time: datetime | None = None
    finish_time: datetime | None = None  # `FinishTime` in this call
    stop_time: datetime | None = None
    update_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Invocation:
    """One invocation (task) with its overall status and its instances."""

    invoke_id: str
    command_id: str
    status: api.InvocationStatus
    repeat_mode: str = ""
    command_name: str = ""
    command_type: str = ""
    timeout: int | None = None
    creation_time: datetime | None = None
    instances: tuple[InvocationInstance, ...] = ()
    tags: Mapping[str, str] = field(default_factory=empty, hash=False)  # `Tags.Tag[]`


def _output(item: Mapping[str, Any]) -> str:
    raw = text(item, "Output")
    try:
        return decode_output(raw)
    except ValueError:
        raise ValueError("Output is not Base64") from None


def _invocation_instance(item: Mapping[str, Any]) -> InvocationInstance:
    return InvocationInstance(
        instance_id=required(item, "InstanceId"),
        status=enum_of(api.InstanceInvocationStatus, item, "InvocationStatus"),
        exit_code=integer(item, "ExitCode"),
        error_code=text(item, "ErrorCode"),
        error_info=text(item, "ErrorInfo"),
        output=_output(item),
        dropped=count(item, "Dropped"),
        repeats=count(item, "Repeats"),
        creation_time=time_of(item, "CreationTime"),
        start_time=time_of(item, "StartTime"),
        finish_time=time_of(item, "FinishTime"),
        stop_time=time_of(item, "StopTime"),
        update_time=time_of(item, "UpdateTime"),
    )


RecordNeeded = Callable[[str, str, api.InstanceInvocationStatus], bool]
"""(invoke_id, instance_id, status) of one `InvokeInstance` → decode the whole record?"""


def _invocation_instances(
    item: Mapping[str, Any], invoke_id: str, needed: RecordNeeded | None
) -> tuple[InvocationInstance, ...]:
    records = nested(item, "InvokeInstances", "InvokeInstance")
    if needed is None:
        return tuple(_invocation_instance(record) for record in records)
    # What identifies a record and its status are read (and checked) for every record;
    # the other eleven fields (five times, Base64 output) only for the records the caller
    # needs, so a settled record listed again costs two lookups. A malformed field of a
    # record nobody reads is not seen, by design: nothing of it is used.
    kept: list[InvocationInstance] = []
    for record in records:
        status = enum_of(api.InstanceInvocationStatus, record, "InvocationStatus")
        if needed(invoke_id, required(record, "InstanceId"), status):
            kept.append(_invocation_instance(record))
    return tuple(kept)


def _invocation(item: Mapping[str, Any], needed: RecordNeeded | None = None) -> Invocation:
    invoke_id = required(item, "InvokeId")
    return Invocation(
        invoke_id=invoke_id,
        command_id=text(item, "CommandId"),
        status=enum_of(api.InvocationStatus, item, "InvocationStatus"),
        repeat_mode=text(item, "RepeatMode"),
        command_name=text(item, "CommandName"),
        command_type=text(item, "CommandType"),
        timeout=integer(item, "Timeout"),
        creation_time=time_of(item, "CreationTime"),
        instances=_invocation_instances(item, invoke_id, needed),
        tags=tags_of(item),
    )


def decode_invocations_page(
    body: Mapping[str, Any], needed: RecordNeeded | None = None
) -> Page[Invocation]:
    """`Invocations.Invocation[]`, top-level paging.

    With `needed`, each invocation's `instances` holds only the records it accepts (the
    tracker's: those whose status it has not seen yet), the others left undecoded."""
    items = tuple(_invocation(item, needed) for item in nested(body, "Invocations", "Invocation"))
    return Page(items, text(body, "NextToken"))


# --- DescribeInvocationResults -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InvocationResult:
    """One execution record (`Invocation.InvocationResults.InvocationResult[]`)."""

    invoke_id: str
    instance_id: str
    status: api.InstanceInvocationStatus  # `InvocationStatus`, the per-instance state
    record_status: api.InvokeRecordStatus  # `InvokeRecordStatus`
    command_id: str = ""
    exit_code: int | None = None
    error_code: str = ""
    error_info: str = ""
    output: str = ""
    dropped: int = 0
    repeats: int = 0
    start_time: datetime | None = None
    finish_time: datetime | None = None  # `FinishedTime` in this call (not FinishTime)
    stop_time: datetime | None = None
    username: str = ""
    container_id: str = ""
    container_name: str = ""


def _invocation_result(item: Mapping[str, Any]) -> InvocationResult:
    return InvocationResult(
        invoke_id=required(item, "InvokeId"),
        instance_id=required(item, "InstanceId"),
        status=enum_of(api.InstanceInvocationStatus, item, "InvocationStatus"),
        record_status=enum_of(api.InvokeRecordStatus, item, "InvokeRecordStatus"),
        command_id=text(item, "CommandId"),
        exit_code=integer(item, "ExitCode"),
        error_code=text(item, "ErrorCode"),
        error_info=text(item, "ErrorInfo"),
        output=_output(item),
        dropped=count(item, "Dropped"),
        repeats=count(item, "Repeats"),
        start_time=time_of(item, "StartTime"),
        finish_time=time_of(item, "FinishedTime"),
        stop_time=time_of(item, "StopTime"),
        username=text(item, "Username"),
        container_id=text(item, "ContainerId"),
        container_name=text(item, "ContainerName"),
    )


def decode_invocation_results_page(body: Mapping[str, Any]) -> Page[InvocationResult]:
    """Records and paging, both INSIDE the top-level `Invocation` object."""
    invocation = body.get("Invocation") or {}
    if not isinstance(invocation, Mapping):
        raise TypeError("Invocation must be an object")
    items = nested(invocation, "InvocationResults", "InvocationResult")
    return Page(tuple(_invocation_result(i) for i in items), text(invocation, "NextToken"))


# --- DescribeAccountAttributes --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountAttributes:
    """Attribute name → its (first) value, a string as the API gives it."""

    values: Mapping[str, str] = field(default_factory=empty, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", frozen(self.values))

    def quota(self, name: str) -> int | None:
        """`name`'s value as an int; None when absent or not a number."""
        value = self.values.get(name, "")
        return int(value) if value.isascii() and value.isdigit() else None

    @property
    def command_quota(self) -> int | None:
        """`max-axt-command-count`: commands that may be kept in the region."""
        return self.quota(api.ATTRIBUTE_COMMAND_QUOTA)

    @property
    def daily_invocation_quota(self) -> int | None:
        """`max-axt-invocation-daily`: invocations allowed per day in the region."""
        return self.quota(api.ATTRIBUTE_INVOCATION_QUOTA)


def decode_account_attributes(body: Mapping[str, Any]) -> AccountAttributes:
    """`AccountAttributeItems.AccountAttributeItem[]` → name → first `ValueItem.Value`."""
    values: dict[str, str] = {}
    for item in nested(body, "AccountAttributeItems", "AccountAttributeItem"):
        value_items = nested(item, "AttributeValues", "ValueItem")
        values[required(item, "AttributeName")] = (
            text(value_items[0], "Value") if value_items else ""
        )
    return AccountAttributes(values)
