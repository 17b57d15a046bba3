"""Request encoding as pure functions, then what the client sends on a loopback wire."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import anyio
import pytest
from aiohttp import web

from orchestrator.ecs import Credentials, EcsClient, RetryPolicy, RunCommandRequest
from orchestrator.ecs._requests import (
    encode_describe_account_attributes,
    encode_describe_cloud_assistant_status,
    encode_describe_instances,
    encode_describe_invocation_results,
    encode_describe_invocations,
    encode_run_command,
    encode_stop_invocation,
)
from orchestrator.errors import ServerError, TransportError

CAPTURES = Path(__file__).parents[1] / "data" / "captures"


# --- RunCommand encoding -----------------------------------------------------------------------


def test_run_command_matches_the_tea_sdk_capture() -> None:
    """The capture's RunCommand encodes to the Tea SDK's parameters (bar RegionId and bool case)."""
    captured = dict(json.loads((CAPTURES / "tea.jsonl").read_text().splitlines()[0])["query"])
    req = RunCommandRequest(
        type="RunShellScript",
        content="echo hi",
        instance_ids=["i-1", "i-2"],
        parameters={"name": "x"},
        timeout=60,
        client_token="tok-1",
        tags={"k": "v"},
    )
    expected = {k: v for k, v in captured.items() if k != "RegionId"}
    expected["EnableParameter"] = "true"  # the SDK sends Python's "True"; either case is taken
    assert encode_run_command(req) == expected


def test_run_command_every_parameter() -> None:
    """Every RunCommand field lands on its wire name, booleans lower case, None omitted."""
    req = RunCommandRequest(
        type="RunPowerShellScript",
        content="ZWNobw==",
        resource_tags={"app": "web", "env": "prod"},
        name="n",
        description="d",
        working_dir="C:\\",
        timeout=600,
        enable_parameter=False,
        repeat_mode="Period",
        frequency="rate(5m)",
        keep_command=True,
        content_encoding="Base64",
        username="admin",
        windows_password_name="pw",
        container_id="docker://" + "a" * 64,
        container_name="c",
        client_token="t",
        resource_group_id="rg-1",
        launcher="python3 -u {{ACS::ScriptFileName}}",
        termination_mode="ProcessTree",
        oss_output_delivery="oss://b/p",
    )
    assert encode_run_command(req) == {
        "Type": "RunPowerShellScript",
        "CommandContent": "ZWNobw==",
        "ResourceTag.1.Key": "app",
        "ResourceTag.1.Value": "web",
        "ResourceTag.2.Key": "env",
        "ResourceTag.2.Value": "prod",
        "Name": "n",
        "Description": "d",
        "WorkingDir": "C:\\",
        "Timeout": "600",
        "EnableParameter": "false",
        "RepeatMode": "Period",
        "Frequency": "rate(5m)",
        "KeepCommand": "true",
        "ContentEncoding": "Base64",
        "Username": "admin",
        "WindowsPasswordName": "pw",
        "ContainerId": "docker://" + "a" * 64,
        "ContainerName": "c",
        "ClientToken": "t",
        "ResourceGroupId": "rg-1",
        "Launcher": "python3 -u {{ACS::ScriptFileName}}",
        "TerminationMode": "ProcessTree",
        "OssOutputDelivery": "oss://b/p",
    }


def test_parameters_are_compact_utf8_json_and_imply_enable_parameter() -> None:
    """Parameters travel as compact JSON with UTF-8 kept, and switch EnableParameter on."""
    req = RunCommandRequest(type="RunShellScript", content="x", parameters={"a": 1, "b": "ü x"})
    params = encode_run_command(req)
    assert params["Parameters"] == '{"a":1,"b":"ü x"}'
    assert params["EnableParameter"] == "true"
    minimal = encode_run_command(RunCommandRequest(type="RunShellScript", content="x"))
    assert minimal == {"Type": "RunShellScript", "CommandContent": "x"}


def test_request_is_frozen_and_copies_its_mappings() -> None:
    """Changing the caller's dict later cannot change a request (or its ClientToken's meaning)."""
    parameters = {"a": "1"}
    ids = ["i-1"]
    req = RunCommandRequest(
        type="RunShellScript", content="x", instance_ids=ids, parameters=parameters
    )
    parameters["a"] = "2"
    ids.append("i-2")
    assert req.parameters == {"a": "1"}
    assert req.instance_ids == ("i-1",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        req.content = "y"  # type: ignore[misc]
    with pytest.raises(TypeError):
        req.parameters["a"] = "3"  # type: ignore[index]
    with pytest.raises(TypeError):
        RunCommandRequest(type="RunShellScript", content="x", instance_ids="i-1")


# --- other requests ----------------------------------------------------------------------------


def test_describe_instances_encoding() -> None:
    """InstanceIds is ONE JSON-array string; tags are Tag.N pairs; MaxResults/NextToken paging."""
    params = encode_describe_instances(
        instance_ids=["i-1", "i-2"],
        tags={"app": "web", "env": "prod"},
        zone_id="cn-hangzhou-h",
        status="Running",
        max_results=100,
        next_token="nt",
    )
    assert params == {
        "InstanceIds": '["i-1","i-2"]',
        "Tag.1.Key": "app",
        "Tag.1.Value": "web",
        "Tag.2.Key": "env",
        "Tag.2.Value": "prod",
        "ZoneId": "cn-hangzhou-h",
        "Status": "Running",
        "MaxResults": "100",
        "NextToken": "nt",
    }
    assert encode_describe_instances() == {"MaxResults": "100"}
    assert encode_describe_instances(instance_ids=[])["InstanceIds"] == "[]"


def test_describe_invocation_calls_ask_for_base64() -> None:
    """Both invocation calls request ContentEncoding=Base64 explicitly; InstanceId is one ID."""
    params = encode_describe_invocations(
        invoke_id="t-1", include_output=True, invoke_status="Running"
    )
    assert params == {
        "InvokeId": "t-1",
        "IncludeOutput": "true",
        "ContentEncoding": "Base64",
        "InvokeStatus": "Running",
        "MaxResults": "50",
    }
    results = encode_describe_invocation_results(
        instance_id="i-1", invoke_record_status="Finished", next_token="n"
    )
    assert results == {
        "InstanceId": "i-1",
        "InvokeRecordStatus": "Finished",
        "ContentEncoding": "Base64",
        "MaxResults": "50",
        "NextToken": "n",
    }


def test_repeat_lists() -> None:
    """InstanceId.N and AttributeName.N are numbered from 1."""
    assert encode_stop_invocation("t-1", ["i-1", "i-2"]) == {
        "InvokeId": "t-1",
        "InstanceId.1": "i-1",
        "InstanceId.2": "i-2",
    }
    assert encode_stop_invocation("t-1") == {"InvokeId": "t-1"}
    assert encode_describe_cloud_assistant_status(["i-1"]) == {
        "InstanceId.1": "i-1",
        "MaxResults": "50",
    }
    assert encode_describe_account_attributes(["a", "b"]) == {
        "AttributeName.1": "a",
        "AttributeName.2": "b",
    }


# --- the client on a loopback wire ----------------------------------------------------------------


Answer = Callable[[web.Request, dict[str, str]], Awaitable[web.StreamResponse]]


class Recorder:
    """A loopback server that answers with a function of the request and records queries."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.queries: list[dict[str, str]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        self.queries.append(query)
        return await self.answer(request, query)


async def _start(recorder: Recorder) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/", recorder.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def _client(session: aiohttp.ClientSession, url: str) -> EcsClient:
    return EcsClient(
        url,
        session,
        Credentials.of("testid", "testsecret"),
        region_id="cn-hangzhou",
        retry=RetryPolicy.none(),
    )


@pytest.mark.anyio
async def test_describe_instances_chunks_ids_and_follows_next_token() -> None:
    """150 IDs go as 100 + 50 in JSON-array strings; each chunk follows NextToken to the end."""

    async def answer(request: web.Request, query: dict[str, str]) -> web.StreamResponse:
        ids = json.loads(query["InstanceIds"])
        half = len(ids) // 2
        chosen = ids[:half] if "NextToken" not in query else ids[half:]
        instances = [{"InstanceId": i, "Status": "Running"} for i in chosen]
        token = "" if "NextToken" in query else "second"
        return web.json_response(
            {"RequestId": "r", "NextToken": token, "Instances": {"Instance": instances}}
        )

    recorder = Recorder(answer)
    runner, url = await _start(recorder)
    ids = [f"i-{n:03d}" for n in range(150)]
    try:
        async with aiohttp.ClientSession() as session:
            found = [
                i.instance_id
                async for i in _client(session, url).describe_instances(
                    instance_ids=ids, tags={"app": "web"}
                )
            ]
    finally:
        await runner.cleanup()
    assert found == ids
    assert [len(json.loads(q["InstanceIds"])) for q in recorder.queries] == [100, 100, 50, 50]
    assert all(q["Tag.1.Key"] == "app" and q["RegionId"] == "cn-hangzhou" for q in recorder.queries)


async def _status_chunks(ids: list[str], status_ids: int = 100) -> list[int]:
    """InstanceId.N of each DescribeCloudAssistantStatus call made for `ids`, largest first
    (the calls run concurrently, so they may arrive in any order)."""

    async def answer(request: web.Request, query: dict[str, str]) -> web.StreamResponse:
        asked = [v for k, v in query.items() if k.startswith("InstanceId.")]
        items = [{"InstanceId": i, "CloudAssistantStatus": "true"} for i in asked]
        return web.json_response(
            {
                "RequestId": "r",
                "InstanceCloudAssistantStatusSet": {"InstanceCloudAssistantStatus": items},
            }
        )

    recorder = Recorder(answer)
    runner, url = await _start(recorder)
    try:
        async with aiohttp.ClientSession() as session:
            client = EcsClient(
                url,
                session,
                Credentials.of("testid", "testsecret"),
                region_id="cn-hangzhou",
                retry=RetryPolicy.none(),
                assistant_status_ids=status_ids,
            )
            statuses = await client.describe_cloud_assistant_status(ids)
    finally:
        await runner.cleanup()
    assert [s.instance_id for s in statuses] == ids  # in the order asked, whatever the calls'
    return sorted(
        (sum(k.startswith("InstanceId.") for k in q) for q in recorder.queries), reverse=True
    )


@pytest.mark.anyio
async def test_cloud_assistant_status_is_chunked_by_100() -> None:
    """250 IDs are asked in calls of 100, 100 and 50 InstanceId.N (DOC 2024-12)."""
    assert await _status_chunks([f"i-{n}" for n in range(250)]) == [100, 100, 50]


@pytest.mark.anyio
async def test_cloud_assistant_status_takes_50_for_an_older_endpoint() -> None:
    """With assistant_status_ids=50 (DOC21's limit), 120 IDs go as 50, 50 and 20."""
    ids = [f"i-{n}" for n in range(120)]
    assert await _status_chunks(ids, status_ids=50) == [50, 50, 20]


@pytest.mark.anyio
@pytest.mark.parametrize("wrong", [0, 101])
async def test_assistant_status_ids_outside_1_to_100_is_refused(wrong: int) -> None:
    """The API takes at most 100 InstanceId.N: another setting is a mistake, said at once."""
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="assistant_status_ids must be between 1 and 100"):
            EcsClient(
                "http://127.0.0.1:1",
                session,
                Credentials.of("testid", "testsecret"),
                region_id="cn-hangzhou",
                assistant_status_ids=wrong,
            )


@pytest.mark.anyio
async def test_dropped_connection_is_a_transport_error_without_the_query() -> None:
    """A connection closed mid-answer becomes TransportError whose text holds no signature."""

    async def answer(request: web.Request, query: dict[str, str]) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    recorder = Recorder(answer)
    runner, url = await _start(recorder)
    try:
        async with aiohttp.ClientSession() as session:
            client = EcsClient(
                url,
                session,
                Credentials.of("testid", "testsecret"),
                region_id="cn-hangzhou",
                signature_version="v1",
                retry=RetryPolicy.none(),
            )
            with pytest.raises(TransportError) as excinfo:
                await client.stop_invocation("t-1")
    finally:
        await runner.cleanup()
    signature = recorder.queries[0]["Signature"]
    assert signature not in str(excinfo.value)
    assert "Signature" not in str(excinfo.value)
    assert excinfo.value.__cause__ is not None


@pytest.mark.anyio
async def test_non_json_success_is_an_invalid_response() -> None:
    """A 200 whose body is not a JSON object is a ServerError InvalidResponse."""

    async def answer(request: web.Request, query: dict[str, str]) -> web.StreamResponse:
        return web.Response(text="<xml/>")

    runner, url = await _start(Recorder(answer))
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(ServerError) as excinfo:
                await _client(session, url).stop_invocation("t-1")
    finally:
        await runner.cleanup()
    assert excinfo.value.code == "InvalidResponse"


@pytest.mark.anyio
async def test_repr_shows_endpoint_region_and_key_id_only() -> None:
    """repr(client) names endpoint, region and key ID, never the secret."""
    async with aiohttp.ClientSession() as session:
        client = EcsClient(
            "https://ecs.cn-hangzhou.aliyuncs.com",
            session,
            Credentials.of("LTAI-x", "sekrit-value"),
            region_id="cn-hangzhou",
        )
        text = repr(client)
    assert "https://ecs.cn-hangzhou.aliyuncs.com" in text
    assert "cn-hangzhou" in text
    assert "LTAI-x" in text
    assert "sekrit-value" not in text


@pytest.mark.anyio
async def test_request_timeout_is_a_transport_error() -> None:
    """A server that never answers trips the client's request_timeout as a TransportError."""
    release = anyio.Event()

    async def answer(request: web.Request, query: dict[str, str]) -> web.StreamResponse:
        await release.wait()
        return web.json_response({"RequestId": "r"})

    runner, url = await _start(Recorder(answer))
    try:
        async with aiohttp.ClientSession() as session:
            client = EcsClient(
                url,
                session,
                Credentials.of("testid", "testsecret"),
                region_id="cn-hangzhou",
                retry=RetryPolicy.none(),
                request_timeout=0.05,
            )
            with pytest.raises(TransportError) as excinfo:
                await client.stop_invocation("t-1")
    finally:
        release.set()
        await runner.cleanup()
    assert "TimeoutError" in str(excinfo.value)
    assert "StopInvocation" in str(excinfo.value)
