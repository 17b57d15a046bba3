"""What the ECS API answers: the response types and the pure decoders of JSON bodies.

Each answer becomes a frozen, slotted dataclass named for what it is, and a paged call
a `Page` of them. The `decode_*` functions turn times to aware UTC datetimes, Base64
output to text and status strings to the enums of `orchestrator.ecs.codes` (this module
is the one place where wire strings become enums). Nothing here does I/O, so every rule
is tested without a network. A body that breaks the schema raises ValueError, KeyError
or TypeError naming the field; the client reports that as an `InvalidResponse` error.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from orchestrator.ecs import codes

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)

# Kept apart from the same two helpers in _requests, so neither side imports the other.
_EMPTY: Mapping[str, str] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    return _EMPTY


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping)) if mapping else _EMPTY


# --- decoding helpers ---------------------------------------------------------------------


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"{key} must be a string, got {type(value).__name__}")


def _required(body: Mapping[str, Any], key: str) -> str:
    value = _text(body, key)
    if not value:
        raise ValueError(f"{key} is missing from the response")
    return value


def _int(body: Mapping[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"{key} must be an integer, got {value!r}")
    return int(value)


def _count(body: Mapping[str, Any], key: str) -> int:
    value = _int(body, key)
    return 0 if value is None else value


def parse_time(value: str | None) -> datetime | None:
    """`yyyy-MM-ddTHH:mm:ssZ` or `yyyy-MM-ddTHH:mmZ` as an aware UTC datetime; "" is None."""
    if not value:
        return None
    moment = datetime.fromisoformat(value)  # 3.11 reads both forms and the Z suffix
    if moment.tzinfo is None:  # the API documents UTC; a bare time is read as UTC
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _time(body: Mapping[str, Any], key: str) -> datetime | None:
    try:
        return parse_time(_text(body, key))
    except ValueError:
        raise ValueError(f"{key} is not a time: {body.get(key)!r}") from None


def _enum(kind: type[E], body: Mapping[str, Any], key: str) -> E:
    value = _text(body, key)
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{key} has an unknown value {value!r}") from None


def _nested(body: Mapping[str, Any], outer: str, inner: str) -> list[Mapping[str, Any]]:
    """`body[outer][inner]` as a list of objects; absent or empty containers are []."""
    container = body.get(outer) or {}
    if not isinstance(container, Mapping):
        raise TypeError(f"{outer} must be an object")
    items = container.get(inner) or []
    if not isinstance(items, list) or not all(isinstance(item, Mapping) for item in items):
        raise TypeError(f"{outer}.{inner} must be a list of objects")
    return items


def _tags(body: Mapping[str, Any]) -> Mapping[str, str]:
    return _frozen(
        {_text(tag, "TagKey"): _text(tag, "TagValue") for tag in _nested(body, "Tags", "Tag")}
    )


def decode_output(value: str) -> str:
    """Base64 output to text; bytes that are not UTF-8 become U+FFFD, never an error."""
    return base64.b64decode(value, validate=True).decode("utf-8", errors="replace")


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
        request_id=_text(body, "RequestId"),
        command_id=_required(body, "CommandId"),
        invoke_id=_required(body, "InvokeId"),
    )


# --- DescribeInstances --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Instance:
    """One ECS instance, the fields targeting needs."""

    instance_id: str
    name: str
    status: codes.InstanceStatus
    zone_id: str
    region_id: str
    os_type: str  # `linux` / `windows`, lower case in this call
    os_name: str = ""
    hostname: str = ""
    instance_type: str = ""
    resource_group_id: str = ""
    creation_time: datetime | None = None
    private_ips: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=_empty, hash=False)


def _instance(item: Mapping[str, Any]) -> Instance:
    vpc = item.get("VpcAttributes") or {}
    raw_ips = (vpc.get("PrivateIpAddress") or {}).get("IpAddress") or []
    return Instance(
        instance_id=_required(item, "InstanceId"),
        name=_text(item, "InstanceName"),
        status=_enum(codes.InstanceStatus, item, "Status"),
        zone_id=_text(item, "ZoneId"),
        region_id=_text(item, "RegionId"),
        os_type=_text(item, "OSType"),
        os_name=_text(item, "OSName"),
        hostname=_text(item, "HostName"),
        instance_type=_text(item, "InstanceType"),
        resource_group_id=_text(item, "ResourceGroupId"),
        creation_time=_time(item, "CreationTime"),
        private_ips=tuple(str(ip) for ip in raw_ips),
        tags=_tags(item),
    )


def decode_instances_page(body: Mapping[str, Any]) -> Page[Instance]:
    """A DescribeInstances page: `Instances.Instance[]`, top-level `NextToken`."""
    items = tuple(_instance(item) for item in _nested(body, "Instances", "Instance"))
    return Page(items, _text(body, "NextToken"))


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
    raise ValueError(f"CloudAssistantStatus has an unknown value {value!r}")


def _assistant_status(item: Mapping[str, Any]) -> CloudAssistantStatus:
    return CloudAssistantStatus(
        instance_id=_required(item, "InstanceId"),
        online=_online(item),
        version=_text(item, "CloudAssistantVersion"),
        last_heartbeat=_time(item, "LastHeartbeatTime"),
        last_invoked=_time(item, "LastInvokedTime"),
        os_type=_text(item, "OSType"),
        active_task_count=_count(item, "ActiveTaskCount"),
        invocation_count=_count(item, "InvocationCount"),
    )


def decode_cloud_assistant_status_page(body: Mapping[str, Any]) -> Page[CloudAssistantStatus]:
    """`InstanceCloudAssistantStatusSet.InstanceCloudAssistantStatus[]`, top-level paging."""
    items = _nested(body, "InstanceCloudAssistantStatusSet", "InstanceCloudAssistantStatus")
    return Page(tuple(_assistant_status(item) for item in items), _text(body, "NextToken"))


# --- DescribeInvocations ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InvocationInstance:
    """One instance of an invocation (`InvokeInstances.InvokeInstance[]`)."""

    instance_id: str
    status: codes.InstanceInvocationStatus
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
    status: codes.InvocationStatus
    repeat_mode: str = ""
    command_name: str = ""
    command_type: str = ""
    timeout: int | None = None
    creation_time: datetime | None = None
    instances: tuple[InvocationInstance, ...] = ()
    tags: Mapping[str, str] = field(default_factory=_empty, hash=False)  # `Tags.Tag[]`


def _output(item: Mapping[str, Any]) -> str:
    raw = _text(item, "Output")
    try:
        return decode_output(raw)
    except ValueError:
        raise ValueError("Output is not Base64") from None


def _invocation_instance(item: Mapping[str, Any]) -> InvocationInstance:
    return InvocationInstance(
        instance_id=_required(item, "InstanceId"),
        status=_enum(codes.InstanceInvocationStatus, item, "InvocationStatus"),
        exit_code=_int(item, "ExitCode"),
        error_code=_text(item, "ErrorCode"),
        error_info=_text(item, "ErrorInfo"),
        output=_output(item),
        dropped=_count(item, "Dropped"),
        repeats=_count(item, "Repeats"),
        creation_time=_time(item, "CreationTime"),
        start_time=_time(item, "StartTime"),
        finish_time=_time(item, "FinishTime"),
        stop_time=_time(item, "StopTime"),
        update_time=_time(item, "UpdateTime"),
    )


def _invocation(item: Mapping[str, Any]) -> Invocation:
    return Invocation(
        invoke_id=_required(item, "InvokeId"),
        command_id=_text(item, "CommandId"),
        status=_enum(codes.InvocationStatus, item, "InvocationStatus"),
        repeat_mode=_text(item, "RepeatMode"),
        command_name=_text(item, "CommandName"),
        command_type=_text(item, "CommandType"),
        timeout=_int(item, "Timeout"),
        creation_time=_time(item, "CreationTime"),
        instances=tuple(
            _invocation_instance(i) for i in _nested(item, "InvokeInstances", "InvokeInstance")
        ),
        tags=_tags(item),
    )


def decode_invocations_page(body: Mapping[str, Any]) -> Page[Invocation]:
    """`Invocations.Invocation[]`, top-level paging."""
    items = tuple(_invocation(item) for item in _nested(body, "Invocations", "Invocation"))
    return Page(items, _text(body, "NextToken"))


# --- DescribeInvocationResults -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InvocationResult:
    """One execution record (`Invocation.InvocationResults.InvocationResult[]`)."""

    invoke_id: str
    instance_id: str
    status: codes.InstanceInvocationStatus  # `InvocationStatus`, the per-instance state
    record_status: codes.InvokeRecordStatus  # `InvokeRecordStatus`
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
        invoke_id=_required(item, "InvokeId"),
        instance_id=_required(item, "InstanceId"),
        status=_enum(codes.InstanceInvocationStatus, item, "InvocationStatus"),
        record_status=_enum(codes.InvokeRecordStatus, item, "InvokeRecordStatus"),
        command_id=_text(item, "CommandId"),
        exit_code=_int(item, "ExitCode"),
        error_code=_text(item, "ErrorCode"),
        error_info=_text(item, "ErrorInfo"),
        output=_output(item),
        dropped=_count(item, "Dropped"),
        repeats=_count(item, "Repeats"),
        start_time=_time(item, "StartTime"),
        finish_time=_time(item, "FinishedTime"),
        stop_time=_time(item, "StopTime"),
        username=_text(item, "Username"),
        container_id=_text(item, "ContainerId"),
        container_name=_text(item, "ContainerName"),
    )


def decode_invocation_results_page(body: Mapping[str, Any]) -> Page[InvocationResult]:
    """Records and paging, both INSIDE the top-level `Invocation` object."""
    invocation = body.get("Invocation") or {}
    if not isinstance(invocation, Mapping):
        raise TypeError("Invocation must be an object")
    items = _nested(invocation, "InvocationResults", "InvocationResult")
    return Page(tuple(_invocation_result(i) for i in items), _text(invocation, "NextToken"))


# --- DescribeAccountAttributes --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountAttributes:
    """Attribute name → its (first) value, a string as the API gives it."""

    values: Mapping[str, str] = field(default_factory=_empty, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", _frozen(self.values))

    def quota(self, name: str) -> int | None:
        """`name`'s value as an int; None when absent or not a number."""
        value = self.values.get(name, "")
        return int(value) if value.isdigit() else None

    @property
    def command_quota(self) -> int | None:
        """`max-axt-command-count`: commands that may be kept in the region."""
        return self.quota(codes.ATTRIBUTE_COMMAND_QUOTA)

    @property
    def daily_invocation_quota(self) -> int | None:
        """`max-axt-invocation-daily`: invocations allowed per day in the region."""
        return self.quota(codes.ATTRIBUTE_INVOCATION_QUOTA)


def decode_account_attributes(body: Mapping[str, Any]) -> AccountAttributes:
    """`AccountAttributeItems.AccountAttributeItem[]` → name → first `ValueItem.Value`."""
    values: dict[str, str] = {}
    for item in _nested(body, "AccountAttributeItems", "AccountAttributeItem"):
        value_items = _nested(item, "AttributeValues", "ValueItem")
        values[_required(item, "AttributeName")] = (
            _text(value_items[0], "Value") if value_items else ""
        )
    return AccountAttributes(values)
