"""Properties over API answers: whatever the endpoint sends, the outcome is a decoded value
or a typed error on one line, never another exception, and quickly.

(a) JSON-like documents, built from the wire names the decoders read so that they reach
deep into every page decoder, go through `Caller.decode`; (b) arbitrary bytes and
statuses go through the body-to-document and body-to-error paths of `_http.py`."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator import api
from orchestrator.ecs._caller import Action, Caller
from orchestrator.ecs._http import Answer, document_from_answer, error_from_response
from orchestrator.ecs._listing import decode_counted_page, decode_zones
from orchestrator.ecs._responses import (
    AccountAttributes,
    decode_account_attributes,
    decode_cloud_assistant_status_page,
    decode_invocation_results_page,
    decode_invocations_page,
    decode_run_command,
)
from orchestrator.errors import ApiError, MalformedResponse

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

# Bounded so the file runs in a few seconds; the deadline is generous for a busy 2-core
# box, and still fails an example that goes quadratic or recurses into the ground.
BOUNDED = settings(
    max_examples=60,
    deadline=timedelta(seconds=2),
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

DECODERS: dict[Action, Callable[[Mapping[str, Any]], Any]] = {
    "RunCommand": decode_run_command,
    # Read with its TotalCount (`_listing.py`), which reads the page itself first.
    "DescribeInstances": decode_counted_page,
    "DescribeCloudAssistantStatus": decode_cloud_assistant_status_page,
    "DescribeInvocations": decode_invocations_page,
    "DescribeInvocationResults": decode_invocation_results_page,
    "DescribeAccountAttributes": decode_account_attributes,
    "DescribeZones": decode_zones,
}

# Every name a decoder looks up, so that random documents take the decoders' paths.
WIRE_NAMES = [
    "RequestId", "CommandId", "InvokeId", "NextToken", "TotalCount", "Zones", "Zone",
    "LocalName", "Instances", "Instance",
    "InstanceId", "InstanceName", "Status", "ZoneId", "RegionId", "OSType", "OSName",
    "HostName", "InstanceType", "ResourceGroupId", "CreationTime", "VpcAttributes",
    "PrivateIpAddress", "IpAddress", "Tags", "Tag", "TagKey", "TagValue",
    "InstanceCloudAssistantStatusSet", "InstanceCloudAssistantStatus", "CloudAssistantStatus",
    "CloudAssistantVersion", "LastHeartbeatTime", "LastInvokedTime", "ActiveTaskCount",
    "InvocationCount", "Invocations", "Invocation", "InvocationStatus", "RepeatMode",
    "CommandName", "CommandType", "Timeout", "InvokeInstances", "InvokeInstance", "ExitCode",
    "ErrorCode", "ErrorInfo", "Output", "Dropped", "Repeats", "StartTime", "FinishTime",
    "StopTime", "UpdateTime", "InvocationResults", "InvocationResult", "InvokeRecordStatus",
    "FinishedTime", "Username", "ContainerId", "ContainerName", "AccountAttributeItems",
    "AccountAttributeItem", "AttributeName", "AttributeValues", "ValueItem", "Value",
]  # fmt: skip

# Valid records, for `_near` to break one field at a time.
INSTANCE = {"InstanceId": "i-1", "Status": "Running", "CreationTime": "2020-05-11T09:01:39Z"}
INVOCATION = {"InvokeId": "t-1", "InvocationStatus": "Success"}
INVOKE_INSTANCE = {"InstanceId": "i-1", "InvocationStatus": "Success", "ExitCode": 0}
RESULT = {
    "InvokeId": "t-1",
    "InstanceId": "i-1",
    "InvocationStatus": "Success",
    "InvokeRecordStatus": "Finished",
}

TIMES = [
    "2020-05-11T09:01:39Z",
    "2020-05-11T09:01Z",
    "2020-05-11T09:01:39",
    "9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00+01:00",
    "2020-13-40T99:99Z",
    "",
]
NUMBERS = {"ExitCode", "Dropped", "Repeats", "Timeout", "ActiveTaskCount", "InvocationCount"}
EXTREME_NUMBERS = [2**63, -(2**63) - 1, 2**63 - 1, 10**30, "9" * 25, "-1", "+7", "٣", " 1", 1.5]

PLAUSIBLE_TEXT = [
    *[str(s) for s in api.InstanceStatus],
    *[str(s) for s in api.InstanceInvocationStatus],
    *[str(s) for s in api.InvocationStatus],
    *[str(s) for s in api.InvokeRecordStatus],
    "2020-05-11T09:01:39Z",
    "2020-05-11T09:01Z",
    "9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00+01:00",
    base64.b64encode(b"ok\n").decode(),
    "not base64!",
    "true",
    "false",
    "12",
    "-3",
    "٣",
    "9" * 30,
    "i-\ud800",
    "",
]

leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(PLAUSIBLE_TEXT)
)
json_like = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(WIRE_NAMES) | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=40,
)
documents = st.dictionaries(st.sampled_from(WIRE_NAMES), json_like, max_size=6)
# An item of a list: mostly the right names with plausible or odd values.
items = st.dictionaries(st.sampled_from(WIRE_NAMES), leaves | json_like, max_size=14)


def _within(outer: str, inner: str, item: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`{outer: {inner: [item, …]}}`, the API's list shape, merged into odd neighbours."""
    shaped = st.fixed_dictionaries(
        {outer: st.fixed_dictionaries({inner: st.lists(item, max_size=3)})}
    )
    return st.tuples(shaped, items).map(lambda pair: pair[1] | pair[0])


def _near(valid: dict[str, Any]) -> st.SearchStrategy[Any]:
    """`valid` with a few fields replaced or added: past the required fields, into the rest."""
    odd = st.lists(st.sampled_from(WIRE_NAMES).flatmap(_field), max_size=3).map(dict)
    return items | odd.map(lambda changes: valid | changes)


def _field(key: str) -> st.SearchStrategy[tuple[str, Any]]:
    """(key, value), the value often one that this kind of field gets wrong."""
    if key.endswith("Time"):
        special: st.SearchStrategy[Any] = st.sampled_from(TIMES)
    elif key in NUMBERS:
        special = st.sampled_from(EXTREME_NUMBERS)
    else:
        special = st.sampled_from(PLAUSIBLE_TEXT)
    return st.tuples(st.just(key), special | leaves | json_like)


invoke_instances = st.tuples(
    _within("InvokeInstances", "InvokeInstance", _near(INVOKE_INSTANCE)),
    _near(INVOCATION),
).map(lambda pair: pair[1] | pair[0])
instances = st.tuples(_within("PrivateIpAddress", "IpAddress", leaves), _near(INSTANCE)).map(
    lambda pair: pair[1] | {"VpcAttributes": pair[0]}
)
SHAPED: dict[str, st.SearchStrategy[Any]] = {
    "RunCommand": _near({"CommandId": "c-1", "InvokeId": "t-1"}),
    "DescribeInstances": _within("Instances", "Instance", instances),
    "DescribeCloudAssistantStatus": _within(
        "InstanceCloudAssistantStatusSet",
        "InstanceCloudAssistantStatus",
        _near({"InstanceId": "i-1", "CloudAssistantStatus": "true"}),
    ),
    "DescribeInvocations": _within("Invocations", "Invocation", invoke_instances),
    "DescribeInvocationResults": _within(
        "InvocationResults", "InvocationResult", _near(RESULT)
    ).map(lambda invocation: {"RequestId": "r", "Invocation": invocation}),
    "DescribeZones": _within("Zones", "Zone", _near({"ZoneId": "cn-hangzhou-h"})),
    "DescribeAccountAttributes": _within(
        "AccountAttributeItems",
        "AccountAttributeItem",
        _within("AttributeValues", "ValueItem", _near({"AttributeName": "a"})).map(
            lambda item: {"AttributeName": "max-axt-command-count"} | item
        ),
    ),
}


def _outcome(call: Callable[[], object]) -> object:
    """What `call` returns, or the MalformedResponse it raises (any other error fails)."""
    try:
        return call()
    except MalformedResponse as error:
        return error


def _assert_one_line(error: ApiError, action: str) -> None:
    text = str(error)
    assert "\n" not in text
    assert action in text
    assert len(text) < 2000


@pytest.mark.parametrize("action", DECODERS)
@BOUNDED
@given(data=st.data())
def test_a_document_decodes_or_is_a_malformed_response(action: Action, data: st.DataObject):
    document = data.draw(SHAPED[action] | documents)
    decoded = _outcome(lambda: Caller.decode(action, Answer(200, document), DECODERS[action]))
    if isinstance(decoded, MalformedResponse):
        _assert_one_line(decoded, action)
        assert decoded.http_status == 200
        return
    if isinstance(decoded, AccountAttributes):
        _ = (decoded.command_quota, decoded.daily_invocation_quota)
    repr(decoded)  # every decoded value can be shown: no lone surrogate, no deep value
    str(decoded).encode("utf-8")


def _deep(depth: int, opener: bytes, closer: bytes) -> bytes:
    return opener * depth + closer * depth


bodies = (
    st.binary(max_size=200)
    | json_like.map(lambda value: json.dumps(value).encode("utf-8", errors="surrogatepass"))
    | documents.map(lambda value: json.dumps(value).encode("utf-8", errors="surrogatepass"))
    | st.builds(_deep, st.integers(0, 20_000), st.just(b"["), st.just(b"]"))
    | st.builds(_deep, st.integers(0, 20_000), st.just(b'{"Code":'), st.just(b"}"))
    | st.sampled_from([b"<html>\n<h1>502</h1></html>", b'{"Code": "X", "Message": "a\nb"}'])
)
statuses = st.integers(min_value=100, max_value=599)


@BOUNDED
@given(status=statuses, reason=st.text(max_size=30), body=bodies)
def test_an_error_answer_is_always_an_api_error(status: int, reason: str, body: bytes):
    error = error_from_response(status, reason, body, action="DescribeInstances")
    assert isinstance(error, ApiError)
    assert error.http_status == status
    _assert_one_line(error, "DescribeInstances")


@BOUNDED
@given(status=st.integers(min_value=200, max_value=299), body=bodies)
def test_a_2xx_answer_is_a_dict_or_a_malformed_response(status: int, body: bytes):
    document = _outcome(lambda: document_from_answer(status, body, action="RunCommand"))
    if isinstance(document, MalformedResponse):
        _assert_one_line(document, "RunCommand")
        assert f"HTTP {status}" in str(document)
    else:
        assert isinstance(document, dict)
