"""The journal's JSON columns: plain dicts to and from the engine's frozen dataclasses.

The journal keeps a record in one JSON column, not spread over columns, when nothing
queries inside it (an instance, a skipped target, a result, a halt): the dataclasses may
grow fields without a schema migration, and a reader tolerates an older row, because a
field missing from the dict takes its dataclass default. Enums are stored by value and
datetimes as ISO 8601 with their offset, so the file reads the same in any time zone.
A halt is stored with its numbers and its sentence (`text`); it decodes without its
`GateDecision` (the gates table keeps those), so `text` is what to show people.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from orchestrator.api import InstanceStatus
from orchestrator.ecs import Instance
from orchestrator.rollout._outcome import Outcome
from orchestrator.rollout._results import Halt, InstanceResult
from orchestrator.targets import Skipped, SkipReason

if TYPE_CHECKING:
    from collections.abc import Mapping

JsonDict = dict[str, Any]


def dumps(value: object) -> str:
    """Compact JSON, ASCII only: a lone surrogate (which a JSON escape in an API answer
    can produce) is escaped instead of breaking the UTF-8 write to SQLite."""
    return json.dumps(value, separators=(",", ":"))


def encode_time(moment: datetime) -> str:
    """ISO 8601 with the offset; a naive time is taken as UTC, as the API's times are."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def decode_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _optional_time(moment: datetime | None) -> str | None:
    return None if moment is None else encode_time(moment)


def _decode_optional_time(text: str | None) -> datetime | None:
    return None if text is None else decode_time(text)


def encode_instance(instance: Instance) -> JsonDict:
    return {
        "instance_id": instance.instance_id,
        "name": instance.name,
        "status": instance.status.value,
        "zone_id": instance.zone_id,
        "region_id": instance.region_id,
        "os_type": instance.os_type,
        "os_name": instance.os_name,
        "hostname": instance.hostname,
        "instance_type": instance.instance_type,
        "resource_group_id": instance.resource_group_id,
        "creation_time": _optional_time(instance.creation_time),
        "private_ips": list(instance.private_ips),
        "tags": dict(instance.tags),
    }


def decode_instance(data: Mapping[str, Any]) -> Instance:
    return Instance(
        instance_id=data["instance_id"],
        name=data.get("name", ""),
        status=InstanceStatus(data["status"]),
        zone_id=data.get("zone_id", ""),
        region_id=data.get("region_id", ""),
        os_type=data.get("os_type", ""),
        os_name=data.get("os_name", ""),
        hostname=data.get("hostname", ""),
        instance_type=data.get("instance_type", ""),
        resource_group_id=data.get("resource_group_id", ""),
        creation_time=_decode_optional_time(data.get("creation_time")),
        private_ips=tuple(data.get("private_ips", ())),
        tags=MappingProxyType(dict(data.get("tags", {}))),
    )


def encode_skipped(skipped: Skipped) -> JsonDict:
    return {
        "instance_id": skipped.instance_id,
        "reason": skipped.reason.value,
        "detail": skipped.detail,
        "zone_id": skipped.zone_id,
    }


def decode_skipped(data: Mapping[str, Any]) -> Skipped:
    return Skipped(
        instance_id=data["instance_id"],
        reason=SkipReason(data["reason"]),
        detail=data.get("detail", ""),
        zone_id=data.get("zone_id", ""),
    )


def encode_result(result: InstanceResult) -> JsonDict:
    return {
        "instance_id": result.instance_id,
        "outcome": result.outcome.value,
        "wave": result.wave,
        "zone_id": result.zone_id,
        "invoke_id": result.invoke_id,
        "status": result.status,
        "exit_code": result.exit_code,
        "error_code": result.error_code,
        "error_info": result.error_info,
        "start_time": _optional_time(result.start_time),
        "finish_time": _optional_time(result.finish_time),
        "output": result.output,
        "output_dropped": result.output_dropped,
        "verify": None if result.verify is None else encode_result(result.verify),
    }


def decode_result(data: Mapping[str, Any]) -> InstanceResult:
    verify = data.get("verify")
    return InstanceResult(
        instance_id=data["instance_id"],
        outcome=Outcome(data["outcome"]),
        wave=data.get("wave", ""),
        zone_id=data.get("zone_id", ""),
        invoke_id=data.get("invoke_id", ""),
        status=data.get("status", ""),
        exit_code=data.get("exit_code"),
        error_code=data.get("error_code", ""),
        error_info=data.get("error_info", ""),
        start_time=_decode_optional_time(data.get("start_time")),
        finish_time=_decode_optional_time(data.get("finish_time")),
        output=data.get("output", ""),
        output_dropped=data.get("output_dropped", 0),
        verify=None if verify is None else decode_result(verify),
    )


def encode_halt(halt: Halt) -> JsonDict:
    return {
        "reason": halt.reason,
        "code": halt.code,
        "message": halt.message,
        "wave": halt.wave,
        "in_flight": halt.in_flight,
        "stop_requested": halt.stop_requested,
        "stopped": halt.stopped,
        "not_started": list(halt.not_started),
        "text": halt.describe(),
    }


def decode_halt(data: Mapping[str, Any]) -> Halt:
    return Halt(
        reason=data["reason"],
        code=data.get("code", ""),
        message=data.get("message", ""),
        wave=data.get("wave", ""),
        in_flight=data.get("in_flight", 0),
        stop_requested=data.get("stop_requested", 0),
        stopped=data.get("stopped", 0),
        not_started=tuple(data.get("not_started", ())),
    )
