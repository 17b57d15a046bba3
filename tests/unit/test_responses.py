"""Response decoding and error bodies as pure functions."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from orchestrator import api
from orchestrator.ecs._fields import parse_time
from orchestrator.ecs._http import error_from_response
from orchestrator.ecs._responses import (
    decode_account_attributes,
    decode_cloud_assistant_status_page,
    decode_instances_page,
    decode_invocation_results_page,
    decode_invocations_page,
    decode_run_command,
)
from orchestrator.errors import (
    ApiError,
    AuthError,
    Forbidden,
    IdempotencyMismatch,
    IdempotentProcessing,
    InvalidParameter,
    NotFound,
    QuotaExceeded,
    ServerError,
    Throttled,
)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --- decoding -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-05-11T09:01:39Z", datetime(2020, 5, 11, 9, 1, 39, tzinfo=UTC)),
        ("2017-12-10T04:04Z", datetime(2017, 12, 10, 4, 4, tzinfo=UTC)),
        ("", None),
        (None, None),
    ],
)
def test_parse_time(text: str | None, expected: datetime | None) -> None:
    """Both documented forms become aware UTC datetimes; empty is None."""
    parsed = parse_time(text)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is UTC


def test_decode_run_command() -> None:
    """RequestId, CommandId, InvokeId; a missing InvokeId is an error naming it."""
    result = decode_run_command({"RequestId": "r", "CommandId": "c-1", "InvokeId": "t-1"})
    assert (result.request_id, result.command_id, result.invoke_id) == ("r", "c-1", "t-1")
    with pytest.raises(ValueError, match="InvokeId"):
        decode_run_command({"RequestId": "r", "CommandId": "c-1"})


INSTANCES = {
    "RequestId": "r",
    "NextToken": "page-2",
    "Instances": {
        "Instance": [
            {
                "InstanceId": "i-1",
                "InstanceName": "web-1",
                "Status": "Running",
                "ZoneId": "cn-hangzhou-g",
                "RegionId": "cn-hangzhou",
                "OSType": "linux",
                "HostName": "web-1",
                "CreationTime": "2017-12-10T04:04Z",
                "VpcAttributes": {"PrivateIpAddress": {"IpAddress": ["172.17.0.1"]}},
                "Tags": {"Tag": [{"TagKey": "app", "TagValue": "web"}]},
            }
        ]
    },
}


def test_decode_instances_page() -> None:
    """Fields, enum status, minute-precision time, tags and the next token."""
    page = decode_instances_page(INSTANCES)
    assert page.next_token == "page-2"
    (instance,) = page.items
    assert instance.instance_id == "i-1"
    assert instance.status is api.InstanceStatus.RUNNING
    assert instance.creation_time == datetime(2017, 12, 10, 4, 4, tzinfo=UTC)
    assert instance.tags == {"app": "web"}
    assert instance.private_ips == ("172.17.0.1",)
    assert decode_instances_page({"RequestId": "r", "Instances": {"Instance": []}}).items == ()


def test_unknown_status_is_an_error_naming_the_field() -> None:
    """A status outside the enum is reported, not silently kept."""
    body = json.loads(json.dumps(INSTANCES))
    body["Instances"]["Instance"][0]["Status"] = "Exploded"
    with pytest.raises(ValueError, match="Status"):
        decode_instances_page(body)


@pytest.mark.parametrize(
    ("raw", "online"),
    [("true", True), ("false", False), (True, True), (False, False), ("True", True)],
)
def test_cloud_assistant_online_accepts_strings_and_booleans(raw: str | bool, online: bool) -> None:
    """CloudAssistantStatus may be the string "true"/"false" or a JSON boolean."""
    body = {
        "InstanceCloudAssistantStatusSet": {
            "InstanceCloudAssistantStatus": [
                {
                    "InstanceId": "i-1",
                    "CloudAssistantStatus": raw,
                    "CloudAssistantVersion": "2.2.0.106",
                    "LastHeartbeatTime": "2021-03-15T09:00:00Z",
                    "ActiveTaskCount": 1,
                    "InvocationCount": 2,
                    "OSType": "Linux",
                }
            ]
        }
    }
    (status,) = decode_cloud_assistant_status_page(body).items
    assert status.online is online
    assert status.last_heartbeat == datetime(2021, 3, 15, 9, tzinfo=UTC)
    assert (status.active_task_count, status.invocation_count) == (1, 2)


def test_cloud_assistant_unknown_value_is_an_error() -> None:
    """Anything but true/false is refused."""
    body = {
        "InstanceCloudAssistantStatusSet": {
            "InstanceCloudAssistantStatus": [{"InstanceId": "i-1", "CloudAssistantStatus": "maybe"}]
        }
    }
    with pytest.raises(ValueError, match="CloudAssistantStatus"):
        decode_cloud_assistant_status_page(body)


INVOCATIONS = {
    "RequestId": "r",
    "NextToken": "",
    "Invocations": {
        "Invocation": [
            {
                "InvokeId": "t-1",
                "CommandId": "c-1",
                "CommandType": "RunShellScript",
                "InvocationStatus": "Failed",
                "InvokeStatus": "Finished",
                "RepeatMode": "Once",
                "Timeout": 60,
                "CreationTime": "2020-05-11T09:01:39Z",
                "InvokeInstances": {
                    "InvokeInstance": [
                        {
                            "InstanceId": "i-1",
                            "InvocationStatus": "Failed",
                            "InstanceInvokeStatus": "Finished",
                            "ExitCode": 1,
                            "ErrorCode": "ExitCodeNonzero",
                            "ErrorInfo": "the command execution exit code is not zero.",
                            "Output": b64("15:30:01\n"),
                            "Dropped": 0,
                            "Repeats": 1,
                            "CreationTime": "2020-05-11T09:01:39Z",
                            "StartTime": "2020-05-11T09:01:40Z",
                            "FinishTime": "2020-05-11T09:01:41Z",
                            "UpdateTime": "2020-05-11T09:01:41Z",
                            "StopTime": "",
                        },
                        {"InstanceId": "i-2", "InvocationStatus": "Running", "Output": ""},
                    ]
                },
            }
        ]
    },
}


def test_decode_invocations_page() -> None:
    """Overall and per-instance enums, FinishTime, "" StopTime → None, Base64 output decoded."""
    page = decode_invocations_page(INVOCATIONS)
    assert page.next_token == ""
    (invocation,) = page.items
    assert invocation.status is api.InvocationStatus.FAILED
    assert invocation.timeout == 60
    done, running = invocation.instances
    assert done.status is api.InstanceInvocationStatus.FAILED
    assert done.exit_code == 1
    assert done.output == "15:30:01\n"
    assert done.finish_time == datetime(2020, 5, 11, 9, 1, 41, tzinfo=UTC)
    assert done.stop_time is None
    assert running.status is api.InstanceInvocationStatus.RUNNING
    assert running.exit_code is None
    assert running.output == ""


def test_output_that_is_not_utf8_is_replaced_not_fatal() -> None:
    """Bytes that are not UTF-8 decode with U+FFFD; text that is not Base64 is an error."""
    body = json.loads(json.dumps(INVOCATIONS))
    item = body["Invocations"]["Invocation"][0]["InvokeInstances"]["InvokeInstance"][0]
    item["Output"] = base64.b64encode(b"ok \xff\xfe").decode()
    assert decode_invocations_page(body).items[0].instances[0].output == "ok \ufffd\ufffd"
    item["Output"] = "not base64!"
    with pytest.raises(ValueError, match="Output"):
        decode_invocations_page(body)


def _with_garbage_in_the_finished_record() -> dict[str, Any]:
    """INVOCATIONS with every field of i-1 but its id and status broken."""
    body: dict[str, Any] = json.loads(json.dumps(INVOCATIONS))
    item = body["Invocations"]["Invocation"][0]["InvokeInstances"]["InvokeInstance"][0]
    item.update(
        ExitCode="one",
        Output="not base64!",
        StartTime="yesterday",
        FinishTime="2020-13-45T99:99:99Z",
        Dropped=-3,
        ErrorInfo=["not", "text"],
    )
    return body


def test_a_record_not_needed_is_not_decoded_past_its_status() -> None:
    """With `needed`, a record the tracker has settled (here i-1, Failed) is not decoded
    past its id and status: garbage in its other fields is not seen, and it is left out;
    the records still needed (i-2) come through whole."""
    asked: list[tuple[str, str, api.InstanceInvocationStatus]] = []

    def needed(invoke_id: str, instance_id: str, status: api.InstanceInvocationStatus) -> bool:
        asked.append((invoke_id, instance_id, status))
        return instance_id != "i-1"

    page = decode_invocations_page(_with_garbage_in_the_finished_record(), needed)
    (invocation,) = page.items
    assert [i.instance_id for i in invocation.instances] == ["i-2"]
    assert invocation.instances[0].status is api.InstanceInvocationStatus.RUNNING
    assert asked == [
        ("t-1", "i-1", api.InstanceInvocationStatus.FAILED),
        ("t-1", "i-2", api.InstanceInvocationStatus.RUNNING),
    ]


def test_the_same_garbage_in_a_needed_record_is_refused() -> None:
    """A record the tracker still needs is decoded whole, and refused as ever (without
    `needed`, every record is); a broken status is refused in any record."""
    body = _with_garbage_in_the_finished_record()
    with pytest.raises(TypeError, match="ExitCode"):
        decode_invocations_page(body, lambda _invoke, _instance, _status: True)
    with pytest.raises(TypeError, match="ExitCode"):
        decode_invocations_page(body)
    item = body["Invocations"]["Invocation"][0]["InvokeInstances"]["InvokeInstance"][0]
    item["InvocationStatus"] = "Sleeping"
    with pytest.raises(ValueError, match="InvocationStatus"):
        decode_invocations_page(body, lambda _invoke, _instance, _status: False)


def test_decode_invocation_results_page_reads_paging_inside_invocation() -> None:
    """Records and NextToken sit inside `Invocation`; the finish time is `FinishedTime`."""
    body = {
        "RequestId": "r",
        "Invocation": {
            "NextToken": "more",
            "InvocationResults": {
                "InvocationResult": [
                    {
                        "InvokeId": "t-1",
                        "CommandId": "c-1",
                        "InstanceId": "i-1",
                        "InvocationStatus": "Success",
                        "InvokeRecordStatus": "Finished",
                        "ExitCode": 0,
                        "ErrorCode": "",
                        "Output": b64("héllo"),
                        "Dropped": 3,
                        "Repeats": 1,
                        "StartTime": "2020-05-11T09:01:40Z",
                        "FinishedTime": "2020-05-11T09:01:41Z",
                        "StopTime": "",
                        "Username": "root",
                    }
                ]
            },
        },
    }
    page = decode_invocation_results_page(body)
    assert page.next_token == "more"
    (result,) = page.items
    assert result.status is api.InstanceInvocationStatus.SUCCESS
    assert result.record_status is api.InvokeRecordStatus.FINISHED
    assert result.output == "héllo"
    assert result.dropped == 3
    assert result.finish_time == datetime(2020, 5, 11, 9, 1, 41, tzinfo=UTC)
    assert decode_invocation_results_page({"RequestId": "r"}).items == ()


def test_decode_account_attributes_and_quotas() -> None:
    """Name → first value; the two Cloud Assistant quotas as ints, None when absent."""
    body = {
        "AccountAttributeItems": {
            "AccountAttributeItem": [
                {
                    "AttributeName": "max-axt-invocation-daily",
                    "AttributeValues": {"ValueItem": [{"Value": "10000", "Count": 1}]},
                },
                {
                    "AttributeName": "instance-network-type",
                    "AttributeValues": {"ValueItem": [{"Value": "vpc"}]},
                },
            ]
        }
    }
    attributes = decode_account_attributes(body)
    assert attributes.values == {
        "max-axt-invocation-daily": "10000",
        "instance-network-type": "vpc",
    }
    assert attributes.daily_invocation_quota == 10000
    assert attributes.command_quota is None


# --- error bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "cls"),
    [
        ("Throttling.User", 400, Throttled),
        ("InternalError.Dispatch", 500, ServerError),
        ("ServiceUnavailable", 503, ServerError),
        ("IdempotentProcessing", 403, IdempotentProcessing),
        ("SignatureDoesNotMatch", 400, AuthError),
        ("InvalidAccessKeyId.NotFound", 404, AuthError),
        ("Invocation.ExceedQuota", 403, QuotaExceeded),
        ("IdempotentParameterMismatch", 403, IdempotencyMismatch),
        ("InvalidInstance.NotFound", 404, NotFound),
        ("Operation.Forbidden", 403, Forbidden),
        ("MissingParam.InstanceId", 400, InvalidParameter),
        ("Some.NewCode", 400, InvalidParameter),
    ],
)
def test_error_body_becomes_the_right_class(code: str, status: int, cls: type[ApiError]) -> None:
    """The error class follows api.kind_of; code, message, request id, status, action kept."""
    body = json.dumps({"RequestId": "r-9", "Code": code, "Message": "m"}).encode()
    error = error_from_response(status, "Whatever", body, action="RunCommand")
    assert type(error) is cls
    assert (error.code, error.message, error.request_id, error.http_status, error.action) == (
        code,
        "m",
        "r-9",
        status,
        "RunCommand",
    )


@pytest.mark.parametrize(
    ("status", "reason", "cls", "code"),
    [
        (502, "Bad Gateway", ServerError, "InternalError"),
        (429, "Too Many Requests", Throttled, "Throttling"),
        (404, "Not Found", NotFound, "NotFound"),
    ],
)
def test_error_without_json_body_is_classed_by_status(
    status: int, reason: str, cls: type[ApiError], code: str
) -> None:
    """A proxy's HTML error page is classed by its status."""
    error = error_from_response(status, reason, b"<html>oops</html>", action="X")
    assert type(error) is cls
    assert error.code == code
