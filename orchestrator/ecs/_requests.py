"""What we send to the ECS API: the request types and the pure encoders of their parameters.

`RunCommandRequest` is a frozen, slotted dataclass carrying every RunCommand parameter;
the `encode_*` functions turn it, and the arguments of the other calls, into the flat
string parameters the API takes: repeat lists `Name.N`, tag lists `Tag.N.Key/.Value`,
`DescribeInstances.InstanceIds` as a JSON-array string, booleans `true`/`false`,
parameters as compact JSON. Nothing here does I/O, so every rule is tested without a
network. RegionId is not encoded here: the client adds it to every call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from orchestrator import api

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

ParameterValue = str | int | float | bool

_EMPTY: Mapping[str, str] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    return _EMPTY


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping)) if mapping else _EMPTY


# --- RunCommand -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunCommandRequest:
    """Every RunCommand parameter (api-schemas.md); None means "not sent, API default".

    `parameters` is sent as compact JSON and implies `enable_parameter=True` unless the
    caller says otherwise. Mappings are copied and frozen on construction, so a request
    cannot change after its ClientToken was chosen. Validation of the values is the
    plan checker's job; this type only carries them.
    """

    type: str
    content: str
    instance_ids: Sequence[str] = ()
    resource_tags: Mapping[str, str] = field(default_factory=_empty, hash=False)
    name: str | None = None
    description: str | None = None
    working_dir: str | None = None
    timeout: int | None = None
    enable_parameter: bool | None = None
    parameters: Mapping[str, ParameterValue] = field(default_factory=_empty, hash=False)
    repeat_mode: str | None = None
    frequency: str | None = None
    keep_command: bool | None = None
    content_encoding: str | None = None
    username: str | None = None
    windows_password_name: str | None = None
    tags: Mapping[str, str] = field(default_factory=_empty, hash=False)
    container_id: str | None = None
    container_name: str | None = None
    client_token: str | None = None
    resource_group_id: str | None = None
    launcher: str | None = None
    termination_mode: str | None = None
    oss_output_delivery: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.instance_ids, str):  # would become one ID per letter
            raise TypeError("instance_ids must be a sequence of IDs, not a string")
        object.__setattr__(self, "instance_ids", tuple(self.instance_ids))
        for name in ("resource_tags", "parameters", "tags"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))


def wire_bool(value: bool) -> str:
    """`true` / `false`: the service takes either case; lower case is the documented form."""
    return "true" if value else "false"


def compact_json(value: object) -> str:
    """JSON without spaces, non-ASCII kept as UTF-8 (as the Tea SDK sends `Parameters`)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def repeat_list(name: str, values: Sequence[str]) -> dict[str, str]:
    """`Name.1=a&Name.2=b`."""
    return {f"{name}.{index}": value for index, value in enumerate(values, start=1)}


def tag_list(name: str, tags: Mapping[str, str]) -> dict[str, str]:
    """`Name.1.Key=k&Name.1.Value=v` for each pair, in the mapping's order."""
    params: dict[str, str] = {}
    for index, (key, value) in enumerate(tags.items(), start=1):
        params[f"{name}.{index}.Key"] = key
        params[f"{name}.{index}.Value"] = value
    return params


def encode_run_command(req: RunCommandRequest) -> dict[str, str]:
    """The RunCommand parameters of `req`, RegionId excluded."""
    params = {"Type": req.type, "CommandContent": req.content}
    params |= repeat_list("InstanceId", req.instance_ids)
    params |= tag_list("ResourceTag", req.resource_tags)
    params |= tag_list("Tag", req.tags)
    enable = req.enable_parameter
    if req.parameters:
        params["Parameters"] = compact_json(dict(req.parameters))
        enable = True if enable is None else enable
    optional: dict[str, str | int | bool | None] = {
        "Name": req.name,
        "Description": req.description,
        "WorkingDir": req.working_dir,
        "Timeout": req.timeout,
        "EnableParameter": enable,
        "RepeatMode": req.repeat_mode,
        "Frequency": req.frequency,
        "KeepCommand": req.keep_command,
        "ContentEncoding": req.content_encoding,
        "Username": req.username,
        "WindowsPasswordName": req.windows_password_name,
        "ContainerId": req.container_id,
        "ContainerName": req.container_name,
        "ClientToken": req.client_token,
        "ResourceGroupId": req.resource_group_id,
        "Launcher": req.launcher,
        "TerminationMode": req.termination_mode,
        "OssOutputDelivery": req.oss_output_delivery,
    }
    for key, value in optional.items():
        if isinstance(value, bool):
            params[key] = wire_bool(value)
        elif value is not None:
            params[key] = str(value)
    return params


# --- the Describe* requests, StopInvocation, DescribeAccountAttributes -------------------


def _paging(max_results: int, next_token: str | None) -> dict[str, str]:
    params = {"MaxResults": str(max_results)}
    if next_token:
        params["NextToken"] = next_token
    return params


def encode_describe_instances(
    *,
    instance_ids: Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
    zone_id: str | None = None,
    status: str | None = None,
    max_results: int = api.DESCRIBE_INSTANCES_MAX_RESULTS,
    next_token: str | None = None,
) -> dict[str, str]:
    """One DescribeInstances page; `InstanceIds` is a JSON-array string, tags are AND-ed."""
    params = _paging(max_results, next_token)
    if instance_ids is not None:
        params["InstanceIds"] = compact_json(list(instance_ids))
    params |= tag_list("Tag", tags or {})
    if zone_id:
        params["ZoneId"] = zone_id
    if status:
        params["Status"] = status
    return params


def encode_describe_cloud_assistant_status(
    instance_ids: Sequence[str],
    *,
    max_results: int = api.ASSISTANT_STATUS_MAX_RESULTS,
    next_token: str | None = None,
) -> dict[str, str]:
    """One DescribeCloudAssistantStatus call for `InstanceId.N`."""
    return repeat_list("InstanceId", instance_ids) | _paging(max_results, next_token)


def encode_describe_invocations(
    *,
    invoke_id: str | None = None,
    instance_id: str | None = None,
    include_output: bool = False,
    invoke_status: str | None = None,
    max_results: int = api.INVOCATIONS_MAX_RESULTS,
    next_token: str | None = None,
) -> dict[str, str]:
    """One DescribeInvocations page; Base64 output asked for explicitly, never assumed."""
    params = _paging(max_results, next_token)
    params |= {"IncludeOutput": wire_bool(include_output), "ContentEncoding": "Base64"}
    if invoke_id:
        params["InvokeId"] = invoke_id
    if instance_id:
        params["InstanceId"] = instance_id
    if invoke_status:
        params["InvokeStatus"] = invoke_status
    return params


def encode_describe_invocation_results(
    *,
    invoke_id: str | None = None,
    instance_id: str | None = None,
    invoke_record_status: str | None = None,
    max_results: int = api.INVOCATIONS_MAX_RESULTS,
    next_token: str | None = None,
) -> dict[str, str]:
    """One DescribeInvocationResults page, Base64 output."""
    params = _paging(max_results, next_token) | {"ContentEncoding": "Base64"}
    if invoke_id:
        params["InvokeId"] = invoke_id
    if instance_id:
        params["InstanceId"] = instance_id
    if invoke_record_status:
        params["InvokeRecordStatus"] = invoke_record_status
    return params


def encode_stop_invocation(invoke_id: str, instance_ids: Sequence[str] = ()) -> dict[str, str]:
    """StopInvocation of `invoke_id`, on `instance_ids` (all of them when empty)."""
    return {"InvokeId": invoke_id} | repeat_list("InstanceId", instance_ids)


def encode_describe_account_attributes(names: Sequence[str]) -> dict[str, str]:
    """DescribeAccountAttributes for `AttributeName.N` (all attributes when empty)."""
    return repeat_list("AttributeName", names)
