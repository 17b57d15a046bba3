"""The simulator's wire layer over real HTTP on 127.0.0.1, driven by the official SDKs
(Tea V3, Tea V1, legacy AcsClient) and by raw aiohttp requests for what SDKs never send.

The app runs with small handlers defined here, so these tests need nothing from the
domain. Raw requests are signed with the Tea SDK's own signing functions.
"""

from __future__ import annotations

import hashlib
import json
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import aiohttp
import anyio
import pytest
import yarl
from aiohttp import web
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_tea_openapi import exceptions as tea_exceptions
from alibabacloud_tea_openapi.models import Config
from alibabacloud_tea_openapi.utils import Utils as TeaUtils
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkecs.request.v20140526.DescribeInvocationResultsRequest import (
    DescribeInvocationResultsRequest,
)
from aliyunsdkecs.request.v20140526.RunCommandRequest import RunCommandRequest
from darabonba.exceptions import UnretryableException

from orchestrator.sim._app import create_app
from orchestrator.sim._faults import FaultKind, Faults
from orchestrator.sim._fleet import default_fleet
from orchestrator.sim._protocol import Call, SimApiError
from orchestrator.sim._server import run_forever, serve
from orchestrator.sim._spec import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    FaultSpec,
    KeySpec,
    ThrottleSpec,
)
from orchestrator.sim._stats import Stats
from orchestrator.sim._throttle import Throttle

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

pytestmark = pytest.mark.anyio

KEY = KeySpec("testid", "testsecret")
REGION = "cn-hangzhou"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
INSTANCES = {
    "TotalCount": 2,
    "PageNumber": 1,
    "PageSize": 10,
    "Instances": {
        "Instance": [
            {"InstanceId": "i-1", "Tags": {"Tag": [{"TagKey": "k", "TagValue": "v & w"}]}},
            {"InstanceId": "i-2", "Tags": {"Tag": []}},
        ]
    },
}


class HandClock:
    """Simulation time moved by hand; `sleep` records and advances at once."""

    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=self.t)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


@dataclass
class Sim:
    """A running app with test handlers, and what it saw."""

    port: int
    clock: HandClock
    faults: Faults
    throttle: Throttle
    stats: Stats
    calls: list[Call] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def acted(self, action: str) -> int:
        return sum(1 for call in self.calls if call.action == action)


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    """The wire app on a free loopback port, with recording test handlers."""
    clock = HandClock()
    state = Sim(
        port=0,
        clock=clock,
        faults=Faults(FaultSpec()),
        throttle=Throttle(ThrottleSpec(), clock),
        stats=Stats(),
    )

    async def run_command(call: Call) -> dict[str, Any]:
        state.calls.append(call)
        return {"CommandId": "c-1", "InvokeId": "t-1"}

    async def describe_instances(call: Call) -> dict[str, Any]:
        state.calls.append(call)
        return INSTANCES

    async def describe_results(call: Call) -> dict[str, Any]:
        state.calls.append(call)
        raise SimApiError("InvalidInvokeId.NotFound")

    async def stop_invocation(call: Call) -> dict[str, Any]:
        state.calls.append(call)
        raise RuntimeError("a handler bug")

    app = create_app(
        {
            "RunCommand": run_command,
            "DescribeInstances": describe_instances,
            "DescribeInvocationResults": describe_results,
            "StopInvocation": stop_invocation,
        },
        keys=[KEY],
        throttle=state.throttle,
        faults=state.faults,
        clock=clock,
        region=REGION,
        executions=lambda: {"i-1": {"t-1": 1}},
        stats=state.stats,
    )
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = runner.addresses[0][1]
    try:
        yield state
    finally:
        await runner.cleanup()


# --- clients ------------------------------------------------------------------------


def tea_client(sim: Sim, *, v1: bool = False, key: KeySpec = KEY) -> EcsClient:
    config = Config(
        access_key_id=key.access_key_id,
        access_key_secret=key.access_key_secret,
        security_token=key.security_token,
        endpoint=f"127.0.0.1:{sim.port}",
        protocol="http",
        region_id=REGION,
    )
    if v1:
        config.signature_algorithm = "v2"
    return EcsClient(config)


def core_call(sim: Sim, request: Any, *, secret: str = KEY.access_key_secret) -> dict[str, Any]:
    client = AcsClient(KEY.access_key_id, secret, REGION, port=sim.port, auto_retry=False)
    request.set_endpoint("127.0.0.1")
    request.set_protocol_type("http")
    result: dict[str, Any] = json.loads(client.do_action_with_exception(request))
    return result


def now_stamp(delta: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def signed_v1(
    action: str,
    params: dict[str, str],
    *,
    method: str = "POST",
    fmt: str | None = "JSON",
    timestamp: str | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """V1 parameters signed by the Tea SDK's own RPC signer."""
    full = {
        "Action": action,
        "Version": "2014-05-26",
        "AccessKeyId": KEY.access_key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": nonce or uuid.uuid4().hex,
        "Timestamp": timestamp or now_stamp(),
        **params,
    }
    if fmt is not None:
        full["Format"] = fmt
    full["Signature"] = TeaUtils.get_rpcsignature(full, method, KEY.access_key_secret)
    return full


async def raw(
    sim: Sim,
    params: dict[str, str],
    *,
    method: str = "POST",
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    client_timeout: aiohttp.ClientTimeout | None = None,
) -> tuple[int, str, bytes]:
    """Send a request with exactly this query (RFC 3986-encoded) and optional form body."""
    url = yarl.URL(f"{sim.url}/?{urlencode(params, quote_via=quote)}", encoded=True)
    async with (
        aiohttp.ClientSession(timeout=client_timeout or aiohttp.ClientTimeout(total=10)) as session,
        session.request(method, url, data=form, headers=headers) as response,
    ):
        return response.status, response.headers["Content-Type"], await response.read()


async def raw_run_command(sim: Sim, **kwargs: Any) -> tuple[int, str, bytes]:
    params = signed_v1("RunCommand", {"InstanceId.1": "i-1", "CommandContent": "echo hi"})
    return await raw(sim, params, **kwargs)


# --- the official SDKs --------------------------------------------------------------

RUN_OWN_PARAMS = {
    "RegionId": REGION,
    "InstanceId.1": "i-1",
    "InstanceId.2": "i-2",
    "Type": "RunShellScript",
    "CommandContent": "echo hi",
    "EnableParameter": "True",
    "Parameters": '{"name":"x"}',
    "ClientToken": "tok-1",
}


@pytest.mark.sdk
@pytest.mark.parametrize("v1", [False, True], ids=["tea-v3", "tea-v1"])
async def test_tea_run_command_reaches_the_handler(sim: Sim, v1: bool) -> None:
    """Tea (V3 and V1) RunCommand is verified, answered in JSON, and its own params arrive."""
    request = ecs_models.RunCommandRequest(
        region_id=REGION,
        instance_id=["i-1", "i-2"],
        type="RunShellScript",
        command_content="echo hi",
        enable_parameter=True,
        parameters={"name": "x"},
        client_token="tok-1",
    )
    client = tea_client(sim, v1=v1)
    response = await anyio.to_thread.run_sync(client.run_command, request)
    assert response.status_code == 200
    assert response.body.invoke_id == "t-1"
    assert response.body.request_id == response.headers["x-acs-request-id"]
    assert response.body.request_id == response.body.request_id.upper()
    [call] = sim.calls
    assert (call.action, call.access_key_id) == ("RunCommand", "testid")
    assert dict(call.params) == RUN_OWN_PARAMS


@pytest.mark.sdk
async def test_legacy_sdk_run_command_reaches_the_handler(sim: Sim) -> None:
    """The legacy AcsClient's RunCommand (V1, %20 spaces, Format=JSON) is verified."""
    request = RunCommandRequest()
    request.set_InstanceIds(["i-1", "i-2"])
    request.set_Type("RunShellScript")
    request.set_CommandContent("echo hi")
    request.set_ClientToken("tok-1")
    body = await anyio.to_thread.run_sync(core_call, sim, request)
    assert body["InvokeId"] == "t-1"
    [call] = sim.calls
    assert call.params["CommandContent"] == "echo hi"
    assert call.params["InstanceId.2"] == "i-2"
    assert not {"Action", "Format", "Signature", "Timestamp", "AccessKeyId"} & set(call.params)


@pytest.mark.sdk
async def test_tea_parses_nested_lists(sim: Sim) -> None:
    """A `{"Instances": {"Instance": [...]}}` body reaches the Tea model intact."""
    client = tea_client(sim)
    request = ecs_models.DescribeInstancesRequest(region_id=REGION, page_size=10)
    response = await anyio.to_thread.run_sync(client.describe_instances, request)
    instances = response.body.instances.instance
    assert [i.instance_id for i in instances] == ["i-1", "i-2"]
    assert instances[0].tags.tag[0].tag_value == "v & w"


@pytest.mark.sdk
async def test_tea_sees_every_error_field(sim: Sim) -> None:
    """A handler's SimApiError reaches Tea with status, code, RequestId, HostId, Recommend."""
    client = tea_client(sim)
    request = ecs_models.DescribeInvocationResultsRequest(region_id=REGION, invoke_id="t-9")
    with pytest.raises(tea_exceptions.ClientException) as caught:
        await anyio.to_thread.run_sync(client.describe_invocation_results, request)
    error = caught.value
    assert (error.status_code, error.code) == (404, "InvalidInvokeId.NotFound")
    data = error.data
    assert data["Message"] == "The specified invoke ID does not exist."
    assert data["HostId"] == f"ecs.{REGION}.aliyuncs.com"
    assert data["RequestId"] == error.request_id
    assert str(uuid.UUID(data["RequestId"])).upper() == data["RequestId"]
    assert data["Recommend"] == (
        "https://api.aliyun.com/troubleshoot?q=InvalidInvokeId.NotFound&product=Ecs"
        f"&requestId={data['RequestId']}"
    )


@pytest.mark.sdk
async def test_legacy_sdk_sees_error_code_status_and_request_id(sim: Sim) -> None:
    """The legacy SDK's ServerException carries the code, raw message, status and id."""
    request = DescribeInvocationResultsRequest()
    request.set_InvokeId("t-9")
    with pytest.raises(ServerException) as caught:
        await anyio.to_thread.run_sync(core_call, sim, request)
    error = caught.value
    assert error.get_error_code() == "InvalidInvokeId.NotFound"
    assert error.get_http_status() == 404
    assert error.get_error_msg() == "The specified invoke ID does not exist."
    assert error.get_request_id()


@pytest.mark.sdk
async def test_handler_crash_is_500_internal_error(sim: Sim) -> None:
    """A handler bug answers 500 InternalError, which Tea raises as ServerException."""
    client = tea_client(sim)
    request = ecs_models.StopInvocationRequest(region_id=REGION, invoke_id="t-1")
    with pytest.raises(tea_exceptions.ServerException) as caught:
        await anyio.to_thread.run_sync(client.stop_invocation, request)
    assert (caught.value.status_code, caught.value.code) == (500, "InternalError")
    assert "a handler bug" not in json.dumps(caught.value.data)


@pytest.mark.sdk
async def test_legacy_sdk_wrong_secret_is_recognised_by_the_sdk(sim: Sim) -> None:
    """With a wrong secret the legacy SDK finds its own string to sign in our message and
    rewrites the code to InvalidAccessKeySecret: the V1 string to sign matches exactly."""
    request = RunCommandRequest()
    request.set_InstanceIds(["i-1"])
    request.set_CommandContent("echo a b*~")
    with pytest.raises(ServerException) as caught:
        await anyio.to_thread.run_sync(lambda: core_call(sim, request, secret="wrong"))
    assert caught.value.get_error_code() == "InvalidAccessKeySecret"
    assert caught.value.get_http_status() == 400
    assert sim.calls == []


@pytest.mark.sdk
@pytest.mark.parametrize("v1", [False, True], ids=["tea-v3", "tea-v1"])
async def test_tea_wrong_secret_is_signature_does_not_match(sim: Sim, v1: bool) -> None:
    """Tea with a wrong secret gets 400 SignatureDoesNotMatch and nothing runs."""
    client = tea_client(sim, v1=v1, key=KeySpec("testid", "wrong"))
    request = ecs_models.RunCommandRequest(region_id=REGION, instance_id=["i-1"])
    with pytest.raises(tea_exceptions.ClientException) as caught:
        await anyio.to_thread.run_sync(client.run_command, request)
    assert (caught.value.status_code, caught.value.code) == (400, "SignatureDoesNotMatch")
    expected = "server StringToSign is [" if not v1 else "server string to sign is:"
    assert expected in caught.value.data["Message"]
    assert sim.calls == []


@pytest.mark.sdk
async def test_tea_unknown_key_is_404(sim: Sim) -> None:
    """An access key id the simulator does not know is 404 InvalidAccessKeyId.NotFound."""
    client = tea_client(sim, key=KeySpec("nobody", "x"))
    request = ecs_models.DescribeInstancesRequest(region_id=REGION)
    with pytest.raises(tea_exceptions.ClientException) as caught:
        await anyio.to_thread.run_sync(client.describe_instances, request)
    assert (caught.value.status_code, caught.value.code) == (404, "InvalidAccessKeyId.NotFound")


@pytest.mark.sdk
async def test_tea_sends_a_24kb_command_in_the_url(sim: Sim) -> None:
    """A 24 KB Base64 CommandContent travels in the URL and is accepted."""
    content = "QUJD" * (24 * 1024 // 4)
    request = ecs_models.RunCommandRequest(
        region_id=REGION, instance_id=["i-1"], command_content=content, content_encoding="Base64"
    )
    response = await anyio.to_thread.run_sync(tea_client(sim).run_command, request)
    assert response.body.invoke_id == "t-1"
    assert sim.calls[0].params["CommandContent"] == content


# --- raw requests: formats, methods, bodies -----------------------------------------


async def test_format_xml_answers_xml(sim: Sim) -> None:
    """Format=XML gets `<?xml ...?><ActionResponse>` with lists as repeated elements."""
    status, content_type, body = await raw(sim, signed_v1("DescribeInstances", {}, fmt="XML"))
    assert (status, content_type) == (200, "text/xml;charset=utf-8")
    text = body.decode()
    assert text.startswith(
        '<?xml version="1.0" encoding="UTF-8"?><DescribeInstancesResponse><RequestId>'
    )
    assert "<Instances><Instance><InstanceId>i-1</InstanceId>" in text
    assert "</Instance><Instance><InstanceId>i-2</InstanceId>" in text
    root = ET.fromstring(body)  # noqa: S314 - our own test output
    assert root.tag == "DescribeInstancesResponse"
    assert root.findtext("Instances/Instance/Tags/Tag/TagValue") == "v & w"
    assert root.findtext("TotalCount") == "2"


@pytest.mark.parametrize(
    ("fmt", "accept", "xml"),
    [
        (None, None, True),
        (None, "application/json", False),
        ("json", None, False),
        ("JSON", "*/*", False),
        ("XML", "application/json", True),
    ],
)
async def test_format_is_chosen_like_the_real_service(
    sim: Sim, fmt: str | None, accept: str | None, xml: bool
) -> None:
    """XML for Format=XML or no Format and no JSON Accept; JSON otherwise."""
    headers = {"Accept": accept} if accept else {"Accept": "text/plain"}
    status, content_type, body = await raw(
        sim, signed_v1("DescribeInstances", {}, fmt=fmt), headers=headers
    )
    assert status == 200
    if xml:
        assert content_type == "text/xml;charset=utf-8"
        assert body.startswith(b"<?xml")
    else:
        assert content_type == "application/json;charset=utf-8"
        assert json.loads(body)["TotalCount"] == 2


async def test_xml_error_body_has_every_field_in_order(sim: Sim) -> None:
    """An XML error is `<Error>` with RequestId, HostId, Code, Message, Recommend."""
    params = signed_v1("DescribeInvocationResults", {"InvokeId": "t-9"}, fmt="XML")
    status, content_type, body = await raw(sim, params)
    assert (status, content_type) == (404, "text/xml;charset=utf-8")
    root = ET.fromstring(body)  # noqa: S314
    assert root.tag == "Error"
    assert [child.tag for child in root] == ["RequestId", "HostId", "Code", "Message", "Recommend"]
    assert root.findtext("Code") == "InvalidInvokeId.NotFound"
    assert root.findtext("HostId") == "ecs.cn-hangzhou.aliyuncs.com"


async def test_get_and_form_body_are_accepted(sim: Sim) -> None:
    """A signed GET, and a POST with its parameters in a urlencoded body, both act."""
    status, _, _ = await raw(
        sim, signed_v1("RunCommand", {"InstanceId.1": "i-1"}, method="GET"), method="GET"
    )
    assert status == 200
    form = signed_v1("RunCommand", {"InstanceId.1": "i-2", "CommandContent": "a b+c"})
    status, _, body = await raw(sim, {}, form=form)
    assert status == 200, body
    assert [c.params["InstanceId.1"] for c in sim.calls] == ["i-1", "i-2"]
    assert sim.calls[1].params["CommandContent"] == "a b+c"


async def test_a_40kb_url_is_accepted(sim: Sim) -> None:
    """A request line of about 40 KB is read, verified and acted upon."""
    params = signed_v1("RunCommand", {"InstanceId.1": "i-1", "CommandContent": "x" * 40_000})
    assert len(urlencode(params)) > 40_000
    status, _, _ = await raw(sim, params)
    assert status == 200
    assert len(sim.calls[0].params["CommandContent"]) == 40_000


async def test_unknown_action_and_bad_version(sim: Sim) -> None:
    """An unknown action is 404 InvalidAction.NotFound; another Version is 400 InvalidVersion."""
    status, _, body = await raw(sim, signed_v1("CreateInstance", {}))
    assert (status, json.loads(body)["Code"]) == (404, "InvalidAction.NotFound")
    params = signed_v1("DescribeInstances", {"Version": "2016-03-14"})
    status, _, body = await raw(sim, params)
    assert (status, json.loads(body)["Code"]) == (400, "InvalidVersion")
    assert sim.calls == []


# --- raw requests: auth refusals ----------------------------------------------------


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        (lambda: signed_v1("DescribeInstances", {}, timestamp=now_stamp(timedelta(minutes=-20))),
         400, "InvalidTimeStamp.Expired"),
        (lambda: {k: v for k, v in signed_v1("DescribeInstances", {}).items() if k != "Signature"},
         400, "MissingSignature"),
        (lambda: {**signed_v1("DescribeInstances", {}), "AccessKeyId": "nobody"},
         404, "InvalidAccessKeyId.NotFound"),
        (lambda: {**signed_v1("DescribeInstances", {}), "PageSize": "99"},
         400, "SignatureDoesNotMatch"),
    ],
    ids=["stale-timestamp", "no-signature", "unknown-key", "tampered"],
)  # fmt: skip
async def test_auth_refusals_over_http(
    sim: Sim, make: Callable[[], dict[str, str]], status: int, code: str
) -> None:
    """Each refusal answers its status and code, and nothing is acted upon."""
    got_status, _, body = await raw(sim, make())
    assert (got_status, json.loads(body)["Code"]) == (status, code)
    assert sim.calls == []
    assert sim.stats.count("DescribeInstances", code) == 1


async def test_reused_nonce_is_refused_over_http(sim: Sim) -> None:
    """Sending the same signed request twice: the second is 400 SignatureNonceUsed."""
    params = signed_v1("RunCommand", {"InstanceId.1": "i-1"})
    first, _, _ = await raw(sim, params)
    second, _, body = await raw(sim, params)
    assert (first, second) == (200, 400)
    assert json.loads(body)["Code"] == "SignatureNonceUsed"
    assert sim.acted("RunCommand") == 1


# --- throttling -----------------------------------------------------------------------


async def test_throttling_after_the_burst_then_refill(sim: Sim) -> None:
    """qps=1, burst=2: the third call at once is 400 Throttling; one second later it passes."""
    sim.throttle.set(ThrottleSpec(qps=1, burst=2))
    statuses = [(await raw(sim, signed_v1("DescribeInstances", {})))[0] for _ in range(3)]
    assert statuses == [200, 200, 400]
    status, _, body = await raw(sim, signed_v1("DescribeInstances", {}))
    assert (status, json.loads(body)["Code"]) == (400, "Throttling")
    other, _, _ = await raw(sim, signed_v1("RunCommand", {"InstanceId.1": "i-1"}))
    assert other == 200  # buckets are per action
    sim.clock.t += 1.0
    assert (await raw(sim, signed_v1("DescribeInstances", {})))[0] == 200
    assert (await raw(sim, signed_v1("DescribeInstances", {})))[0] == 400


@pytest.mark.sdk
async def test_tea_sees_throttling(sim: Sim) -> None:
    """The Tea SDK raises ClientException 400 Throttling once the bucket is empty."""
    sim.throttle.set(ThrottleSpec(per_action={"DescribeInstances": 1.0}))  # type: ignore[arg-type]
    client = tea_client(sim)
    request = ecs_models.DescribeInstancesRequest(region_id=REGION)
    await anyio.to_thread.run_sync(client.describe_instances, request)
    with pytest.raises(tea_exceptions.ClientException) as caught:
        await anyio.to_thread.run_sync(client.describe_instances, request)
    assert (caught.value.status_code, caught.value.code) == (400, "Throttling")


# --- faults -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        (FaultKind.INTERNAL_ERROR, 500, "InternalError"),
        (FaultKind.UNAVAILABLE, 503, "ServiceUnavailable"),
    ],
)
async def test_5xx_faults_answer_without_acting(
    sim: Sim, kind: FaultKind, status: int, code: str
) -> None:
    """A scripted 5xx answers with its code and the action is NOT carried out."""
    sim.faults.fail_next(kind, action="RunCommand")
    got, _, body = await raw_run_command(sim)
    assert (got, json.loads(body)["Code"]) == (status, code)
    assert sim.acted("RunCommand") == 0
    assert sim.faults.counts[kind] == 1
    assert (await raw_run_command(sim))[0] == 200


async def test_drop_acts_then_closes_without_an_answer(sim: Sim) -> None:
    """A dropped answer: the client sees the server disconnect, yet the action ran."""
    sim.faults.fail_next(FaultKind.DROP)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await raw_run_command(sim)
    assert sim.acted("RunCommand") == 1
    assert sim.faults.counts["drop"] == 1
    assert sim.stats.count("RunCommand", "drop") == 1


async def test_reset_acts_then_resets_the_connection(sim: Sim) -> None:
    """A reset answer: the client sees ECONNRESET (ClientOSError), yet the action ran."""
    sim.faults.fail_next(FaultKind.RESET, action="RunCommand")
    with pytest.raises(aiohttp.ClientOSError) as caught:
        await raw_run_command(sim)
    assert "reset" in str(caught.value).lower()
    assert sim.acted("RunCommand") == 1
    assert sim.faults.counts["reset"] == 1


async def test_stall_acts_then_holds_the_answer_past_the_read_timeout(sim: Sim) -> None:
    """A stalled answer: the client's read timeout fires, yet the action ran."""
    sim.faults.fail_next(FaultKind.STALL, stall_seconds=30)
    with pytest.raises(TimeoutError):
        await raw_run_command(sim, client_timeout=aiohttp.ClientTimeout(sock_read=0.3))
    assert sim.acted("RunCommand") == 1
    assert sim.faults.counts["stall"] == 1


@pytest.mark.sdk
async def test_tea_sees_a_dropped_answer_as_a_transport_failure(sim: Sim) -> None:
    """Through the Tea SDK a dropped RunCommand raises, although the command was accepted."""
    sim.faults.fail_next(FaultKind.DROP, action="RunCommand")
    request = ecs_models.RunCommandRequest(region_id=REGION, instance_id=["i-1"])
    with pytest.raises(UnretryableException) as caught:
        await anyio.to_thread.run_sync(tea_client(sim).run_command, request)
    assert "without response" in str(caught.value)
    assert sim.acted("RunCommand") == 1


async def test_seeded_faults_latency_and_action_filter(sim: Sim) -> None:
    """Seeded faults hit only the named actions, add latency on the simulation clock, and
    repeat exactly with the same seed."""
    spec = FaultSpec(seed=7, latency=2.5, error_rate=0.5, actions=frozenset({"RunCommand"}))
    sim.faults.set(spec)
    statuses = [(await raw_run_command(sim))[0] for _ in range(12)]
    assert (await raw(sim, signed_v1("DescribeInstances", {})))[0] == 200
    assert sim.clock.slept == [2.5] * 12
    assert set(statuses) <= {200, 500, 503}
    assert 0 < statuses.count(200) < 12
    assert sim.acted("RunCommand") == statuses.count(200)
    replay = Faults(spec)
    expected = [replay.decide("RunCommand").error_code for _ in range(12)]
    codes_seen = {500: "InternalError", 503: "ServiceUnavailable", 200: None}
    assert [codes_seen[s] for s in statuses] == expected


# --- introspection ------------------------------------------------------------------


async def test_introspection_endpoints(sim: Sim) -> None:
    """/_sim/health, /_sim/stats and /_sim/executions answer unsigned on loopback."""
    await raw_run_command(sim)
    await raw(sim, signed_v1("DescribeInstances", {}, timestamp=now_stamp(timedelta(hours=1))))
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{sim.url}/_sim/health") as response:
            assert (await response.json())["status"] == "ok"
        async with session.get(f"{sim.url}/_sim/stats") as response:
            stats = await response.json()
        async with session.get(f"{sim.url}/_sim/executions") as response:
            executions = await response.json()
    assert stats["requests"] == {
        "RunCommand": {"ok": 1},
        "DescribeInstances": {"InvalidTimeStamp.Expired": 1},
    }
    assert stats["faults"]["drop"] == 0
    assert executions == {"i-1": {"t-1": 1}}


# --- serve(): the wire app composed with the domain ---------------------------------


@pytest.mark.sdk
@pytest.mark.parametrize("v1", [False, True], ids=["tea-v3", "tea-v1"])
async def test_serve_composes_the_domain_and_accepts_sts(v1: bool) -> None:
    """serve() binds a free port, answers the SDK with the default key and with an issued
    STS credential, and keeps the secret out of its repr."""
    async with serve(default_fleet()) as running:
        assert running.port > 0
        assert running.url == f"http://127.0.0.1:{running.port}"
        assert running.access_key_secret not in repr(running)
        sts = running.issue_sts(600)
        for key in (KeySpec(running.access_key_id, running.access_key_secret), sts):
            config = Config(
                access_key_id=key.access_key_id,
                access_key_secret=key.access_key_secret,
                security_token=key.security_token,
                endpoint=running.url.removeprefix("http://"),
                protocol="http",
            )
            if v1:
                config.signature_algorithm = "v2"
            request = ecs_models.DescribeInstancesRequest(region_id=running.region, page_size=10)
            response = await anyio.to_thread.run_sync(EcsClient(config).describe_instances, request)
            assert response.body.instances.instance
        assert running.stats.count("DescribeInstances", "ok") == 2


async def test_run_forever_prints_where_and_which_key() -> None:
    """run_forever prints the URL, the key id and the public default secret, until cancelled."""
    lines: list[str] = []
    printed = anyio.Event()

    def collect(line: str) -> None:
        lines.append(line)
        if len(lines) == 3:
            printed.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: run_forever(default_fleet(), print_fn=collect))
        with anyio.fail_after(10):
            await printed.wait()
        url = next(word for word in lines[0].split() if word.startswith("http://"))
        async with aiohttp.ClientSession() as session, session.get(f"{url}/_sim/health") as resp:
            assert resp.status == 200
        tg.cancel_scope.cancel()
    assert DEFAULT_ACCESS_KEY_ID in lines[1]
    assert DEFAULT_ACCESS_KEY_SECRET in lines[2]
