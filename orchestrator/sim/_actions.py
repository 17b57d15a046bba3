"""The read-only action handlers: the five Describe calls, shaped as api-schemas.md says.

Each handler takes the account (`Account`: `Simulation` is one) and a `Call` and
returns the body without RequestId. Both paging styles are served: MaxResults +
NextToken (an opaque token) and PageNumber + PageSize; TotalCount is always the true
count. Statuses are derived at the moment of the call from the simulation clock.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol

from orchestrator import api
from orchestrator.sim._agent import SESSION_MANAGER_MIN_VERSION, version_tuple
from orchestrator.sim._index import InstanceQuery
from orchestrator.sim._invocations import (
    Invocation,
    Record,
    RecordView,
    legacy_instance_status,
    legacy_invoke_status,
    record_status,
)
from orchestrator.sim._params import (
    Page,
    api_time,
    encode_text,
    flag,
    instance_time,
    page_of,
    plain_text,
    repeated,
    tag_filters,
    tag_list,
    tags_match,
)
from orchestrator.sim._protocol import Call, SimApiError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from orchestrator.clock import Clock
    from orchestrator.sim._fleet import FleetSpec, InstanceSpec
    from orchestrator.sim._index import FleetIndex


class Account(Protocol):
    """What the read-only handlers see of the simulated account (`Simulation` is one):
    they read its state and never change it, so they need no more than this."""

    @property
    def clock(self) -> Clock: ...
    @property
    def fleet(self) -> FleetSpec: ...
    @property
    def instances(self) -> Mapping[str, InstanceSpec]: ...
    @property
    def instance_index(self) -> FleetIndex: ...
    @property
    def invocations(self) -> Mapping[str, Invocation]: ...
    def invocations_of(self, instance_id: str) -> list[Invocation]: ...
    def check_region(self, params: Mapping[str, str]) -> None: ...


# Attribute names DescribeAccountAttributes documents (SDK); we answer the ones we model.
_DOCUMENTED_ATTRIBUTES: Final = frozenset(
    {
        "max-security-groups", "max-elastic-network-interfaces", "instance-network-type",
        "max-postpaid-instance-vcpu-count", "max-spot-instance-vcpu-count",
        "used-postpaid-instance-vcpu-count", "used-spot-instance-vcpu-count",
        "max-dedicated-hosts", "supported-postpaid-instance-types", "real-name-authentication",
        "max-cloud-assistant-activation-count", "max-axt-command-count",
        "max-axt-invocation-daily",
    }
)  # fmt: skip


async def describe_instances(sim: Account, call: Call) -> dict[str, Any]:
    params = call.params
    sim.check_region(params)
    ids = _instance_ids_json(params["InstanceIds"]) if "InstanceIds" in params else None
    status = params.get("Status")
    if status and status not in api.INSTANCE_STATUSES:
        raise SimApiError("InvalidStatus.NotFound")
    query = InstanceQuery(
        instance_ids=tuple(ids) if ids is not None else None,
        status=status or "",
        zone=params.get("ZoneId", ""),
        instance_type=params.get("InstanceType", ""),
        name=params.get("InstanceName", ""),
        tags=tuple(sorted(tag_filters(params), key=lambda pair: (pair[0], pair[1] or ""))),
    )
    page = page_of(params, maximum=api.DESCRIBE_INSTANCES_MAX_RESULTS, clamp=True)
    # The index keeps the query's result, so each page is a slice, not a scan.
    found = sim.instance_index.find(query)
    shown = found[page.offset : page.offset + page.size]
    return {
        **page.fields(len(found)),
        "Instances": {"Instance": [_instance(sim, inst) for inst in shown]},
    }


def _instance_ids_json(raw: str) -> list[str]:
    # The error code for a malformed or too long InstanceIds is unconfirmed.
    try:
        ids = json.loads(raw) if raw.strip() else []
    except json.JSONDecodeError:
        raise SimApiError("InvalidParameter.InstanceIds") from None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise SimApiError("InvalidParameter.InstanceIds")
    if len(ids) > api.DESCRIBE_INSTANCES_MAX_IDS:
        raise SimApiError("InvalidParameter.InstanceIds")
    return ids


def _instance(sim: Account, inst: InstanceSpec) -> dict[str, Any]:
    return {
        "InstanceId": inst.instance_id,
        "InstanceName": inst.name,
        "HostName": f"iZ{inst.instance_id[2:]}Z",
        "Status": inst.status,
        "ZoneId": inst.zone,
        "RegionId": sim.fleet.region,
        "OSType": inst.os,
        "OSName": inst.os_name,
        "InstanceType": inst.instance_type,
        "CreationTime": instance_time(inst.created),
        "StartTime": instance_time(inst.created),
        "ResourceGroupId": "",
        "Tags": tag_list(inst.tags),
    }


# --- DescribeCloudAssistantStatus ------------------------------------------------------


async def describe_agents(sim: Account, call: Call) -> dict[str, Any]:
    params = call.params
    sim.check_region(params)
    ids = repeated(params, "InstanceId")
    if len(ids) > api.ASSISTANT_STATUS_MAX_IDS:
        raise SimApiError("InstanceIds.ExceedLimit")
    if ids:
        unknown = [i for i in ids if i not in sim.instances]
        if unknown:
            raise SimApiError("InvalidInstance.NotFound")
        items = [sim.instances[i] for i in dict.fromkeys(ids)]
    else:
        items = list(sim.instances.values())
    os_type = params.get("OSType", "").lower()
    found = [inst for inst in items if not os_type or inst.os == os_type]
    if ids:  # with InstanceId, MaxResults and PageSize are ignored (DOC, SDK3)
        page = Page(0, max(len(found), 1), by_token=False)
    else:
        page = page_of(params, maximum=api.ASSISTANT_STATUS_MAX_RESULTS)
    now = sim.clock.now()
    return {
        **page.fields(len(found)),
        "InstanceCloudAssistantStatusSet": {
            "InstanceCloudAssistantStatus": [_agent(sim, inst, now) for inst in page.slice(found)]
        },
    }


def _agent(sim: Account, inst: InstanceSpec, now: datetime) -> dict[str, Any]:
    installed = inst.agent != "not_installed"
    # Heartbeats come about every minute: an online agent's is < 60 s old (seeded).
    lag = int(hashlib.blake2b(inst.instance_id.encode(), digest_size=2).hexdigest(), 16) % 60
    heartbeat = now - timedelta(seconds=lag if inst.agent == "online" else 3600 + lag)
    active = finished = 0
    last_invoked: datetime | None = None
    for inv in sim.invocations_of(inst.instance_id):
        view = inv.view(inv.records[inst.instance_id], now)
        if view.status.terminal:
            finished += 1
        else:
            active += 1
        last_invoked = view.start or last_invoked
    session = version_tuple(inst.agent_version) >= SESSION_MANAGER_MIN_VERSION[inst.os]
    return {
        "InstanceId": inst.instance_id,
        "CloudAssistantStatus": "true" if inst.agent == "online" else "false",
        "CloudAssistantVersion": inst.agent_version,
        "LastHeartbeatTime": api_time(heartbeat) if installed else "",
        "LastInvokedTime": api_time(last_invoked),
        "ActiveTaskCount": active,
        "InvocationCount": finished,
        "OSType": inst.os.capitalize(),
        "SupportSessionManager": installed and session,
    }


# --- DescribeInvocations ---------------------------------------------------------------


def _candidates(sim: Account, params: Mapping[str, str]) -> list[Invocation]:
    """Invocations named by InvokeId / InstanceId / CommandId / Tag.N, newest first."""
    invoke_id, instance_id = params.get("InvokeId"), params.get("InstanceId")
    if invoke_id:
        found = [sim.invocations[invoke_id]] if invoke_id in sim.invocations else []
    elif instance_id:
        found = list(sim.invocations_of(instance_id))
    else:
        found = list(sim.invocations.values())
    if instance_id:
        found = [inv for inv in found if instance_id in inv.records]
    if params.get("CommandId"):
        found = [inv for inv in found if inv.command_id == params["CommandId"]]
    wanted_tags = tag_filters(params)
    if wanted_tags:
        found = [inv for inv in found if tags_match(inv.spec.tags, wanted_tags)]
    found.reverse()
    return found


async def describe_invocations(sim: Account, call: Call) -> dict[str, Any]:
    params = call.params
    sim.check_region(params)
    include_output = flag(params, "IncludeOutput")
    instance_id = params.get("InstanceId", "")
    if include_output and not (params.get("InvokeId") or instance_id):
        raise SimApiError("InvalidParameter.IncludeOutput")
    plain = plain_text(params)
    page = page_of(params, maximum=api.INVOCATIONS_MAX_RESULTS)
    now = sim.clock.now()
    found = _candidates(sim, params)
    for name, attr in (("CommandName", "name"), ("CommandType", "type")):
        if params.get(name):
            found = [inv for inv in found if getattr(inv.spec, attr) == params[name]]
    if params.get("RepeatMode"):
        found = [inv for inv in found if inv.spec.repeat_mode == params["RepeatMode"]]
    wanted = params.get("InvokeStatus")
    if wanted:
        found = [inv for inv in found if _status_matches(inv, now, wanted)]
    return {
        **page.fields(len(found)),
        "Invocations": {
            "Invocation": [
                _invocation(inv, now, instance_id, include_output=include_output, plain=plain)
                for inv in page.slice(found)
            ]
        },
    }


def _status_matches(inv: Invocation, now: datetime, wanted: str) -> bool:
    status = inv.status(now)
    return wanted in {status.value, legacy_invoke_status(status)}


def _invocation(
    inv: Invocation, now: datetime, instance_id: str, *, include_output: bool, plain: bool
) -> dict[str, Any]:
    spec = inv.spec
    views = inv.views(now)
    status = inv.status(now)
    # With InstanceId, only that instance's record is listed (unconfirmed).
    shown = [v for v in views if v.instance_id == instance_id] if instance_id else views
    return {
        "InvokeId": inv.invoke_id,
        "CommandId": inv.command_id,
        "CommandName": spec.name,
        "CommandDescription": spec.description,
        "CommandType": spec.type,
        "CommandContent": encode_text(spec.content, plain=plain),
        "InvocationStatus": status.value,
        "InvokeStatus": legacy_invoke_status(status),
        "RepeatMode": spec.repeat_mode,
        "Timed": inv.periodic,
        "Frequency": inv.frequency_text,
        "Parameters": json.dumps(dict(spec.parameters), separators=(",", ":")),
        "Timeout": spec.timeout,
        "Username": _username(spec.type, spec.username),
        "WorkingDir": spec.working_dir or "",
        "ContainerId": spec.container_id or "",
        "ContainerName": spec.container_name or "",
        "Launcher": spec.launcher or "",
        "TerminationMode": spec.termination_mode or "",
        "OssOutputDelivery": spec.oss_output_delivery or "",
        "CreationTime": api_time(inv.created),
        "Tags": tag_list(spec.tags),
        "InvokeInstances": {
            "InvokeInstance": [
                _invoke_instance(v, inv.periodic, include_output=include_output, plain=plain)
                for v in shown
            ]
        },
    }


def _username(command_type: str, username: str | None) -> str:
    if username:
        return username
    return "System" if command_type in api.WINDOWS_COMMAND_TYPES else "root"


def _invoke_instance(
    view: RecordView, periodic: bool, *, include_output: bool, plain: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "InstanceId": view.instance_id,
        "InvocationStatus": view.status.value,
        "InstanceInvokeStatus": legacy_instance_status(view.status),
        "ExitCode": view.exit_code,
        "ErrorCode": view.error_code,
        "ErrorInfo": view.error_info,
        "Dropped": view.dropped,
        "Repeats": view.repeats,
        "Timed": periodic,
        "CreationTime": api_time(view.created),
        "StartTime": api_time(view.start),
        "FinishTime": api_time(view.finish),
        "StopTime": api_time(view.stop),
        "UpdateTime": api_time(view.update),
    }
    if include_output:
        body["Output"] = encode_text(view.output, plain=plain)
    return body


# --- DescribeInvocationResults ---------------------------------------------------------


async def describe_results(sim: Account, call: Call) -> dict[str, Any]:
    params = call.params
    sim.check_region(params)
    plain = plain_text(params)
    page = page_of(params, maximum=api.INVOCATIONS_MAX_RESULTS)
    now = sim.clock.now()
    instance_id = params.get("InstanceId", "")
    history = flag(params, "IncludeHistory") and bool(params.get("InvokeId"))
    invocations = _candidates(sim, params)

    def rows() -> Iterator[tuple[Invocation, Record]]:
        for inv in invocations:
            if instance_id:
                yield inv, inv.records[instance_id]
            else:
                yield from ((inv, record) for record in inv.records.values())

    def views(
        pairs: Iterable[tuple[Invocation, Record]],
    ) -> Iterator[tuple[Invocation, RecordView]]:
        for inv, record in pairs:
            if history and inv.periodic:
                yield from ((inv, v) for v in inv.history(record, now))
            else:
                yield inv, inv.view(record, now)

    wanted = params.get("InvokeRecordStatus")
    if wanted or history:
        found = [
            (inv, v)
            for inv, v in views(rows())
            if not wanted or wanted in {record_status(v), v.status.value}
        ]
        total, shown = len(found), page.slice(found)
    else:  # cheap path: count without deriving, derive only the page
        total = sum(1 if instance_id else len(inv.records) for inv in invocations)
        shown = list(views(page.slice(rows())))
    return {
        "Invocation": {
            **page.fields(total),
            "InvocationResults": {
                "InvocationResult": [_result(inv, v, plain=plain) for inv, v in shown]
            },
        }
    }


def _result(inv: Invocation, view: RecordView, *, plain: bool) -> dict[str, Any]:
    spec = inv.spec
    return {
        "InvokeId": inv.invoke_id,
        "CommandId": inv.command_id,
        "InstanceId": view.instance_id,
        "InvocationStatus": view.status.value,
        "InvokeRecordStatus": record_status(view),
        "ExitCode": view.exit_code,
        "ErrorCode": view.error_code,
        "ErrorInfo": view.error_info,
        "Output": encode_text(view.output, plain=plain),
        "Dropped": view.dropped,
        "Repeats": view.repeats,
        "StartTime": api_time(view.start),
        "FinishedTime": api_time(view.finish),
        "StopTime": api_time(view.stop),
        "Username": _username(spec.type, spec.username),
        "ContainerId": spec.container_id or "",
        "ContainerName": spec.container_name or "",
        "Launcher": spec.launcher or "",
        "TerminationMode": spec.termination_mode or "",
        "OssOutputDelivery": spec.oss_output_delivery or "",
        "Tags": tag_list(spec.tags),
    }


# --- DescribeAccountAttributes ---------------------------------------------------------


async def describe_account(sim: Account, call: Call) -> dict[str, Any]:
    params = call.params
    sim.check_region(params)
    names = repeated(params, "AttributeName")
    if len(names) > api.ACCOUNT_ATTRIBUTE_NAMES_MAX:
        raise SimApiError(
            "InvalidParameter.AttributeName", "At most 8 AttributeName.N may be given.", 400
        )
    for name in names:
        if name not in _DOCUMENTED_ATTRIBUTES:
            raise SimApiError("InvalidAttributeName.NotFound")
    quotas = sim.fleet.quotas
    known = {
        api.ATTRIBUTE_COMMAND_QUOTA: str(quotas.commands),
        api.ATTRIBUTE_INVOCATION_QUOTA: str(quotas.invocations_daily),
        "instance-network-type": "vpc",
        "max-security-groups": "100",
        "real-name-authentication": "yes",
    }
    # Documented names we do not model are left out of the answer.
    chosen = [n for n in names if n in known] if names else list(known)
    return {
        "AccountAttributeItems": {
            "AccountAttributeItem": [
                {
                    "AttributeName": name,
                    "AttributeValues": {
                        "ValueItem": [{"Value": known[name], "Count": 1, "ZoneId": ""}]
                    },
                }
                for name in chosen
            ]
        }
    }
