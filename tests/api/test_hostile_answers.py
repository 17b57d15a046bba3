"""Our client against an endpoint that misbehaves on the wire: it drips, lies, cuts
answers short, floods, nests JSON past any stack, sends HTML. Each ends in a typed error
on one line that names the action and the HTTP status; nothing else escapes."""

from __future__ import annotations

import gzip
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from orchestrator import errors
from orchestrator.ecs import Credentials, EcsClient, RetryPolicy, RunCommandRequest
from orchestrator.ecs._http import DEFAULT_MAX_ANSWER_BYTES
from tests.api.hostile import (
    Answer,
    Seen,
    chunked_answer,
    declared_answer,
    deep_json,
    drip_answer,
    html_answer,
    json_answer,
    lying_answer,
    raw_answer,
    serve_hostile,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

pytestmark = pytest.mark.anyio

# Short enough to keep the suite fast, long enough for a loopback answer on a busy box.
DEADLINE = 0.3
QUICK = RetryPolicy(attempts=3, base_delay=0.01, throttle_base_delay=0.01, max_delay=0.01)

INSTANCE = {"InstanceId": "i-1", "Status": "Running", "OSType": "linux"}
RESULT = {
    "InvokeId": "t-1",
    "InstanceId": "i-1",
    "InvocationStatus": "Success",
    "InvokeRecordStatus": "Finished",
}


def _instances(**fields: Any) -> dict[str, Any]:
    return {"RequestId": "r-1", "Instances": {"Instance": [INSTANCE | fields]}}


def _results(**fields: Any) -> dict[str, Any]:
    return {
        "RequestId": "r-2",
        "Invocation": {"InvocationResults": {"InvocationResult": [RESULT | fields]}},
    }


async def _client(url: str, session: aiohttp.ClientSession, **kwargs: Any) -> EcsClient:
    return EcsClient(
        url,
        session,
        Credentials.of("testid", "testsecret"),
        region_id="cn-hangzhou",
        **{"retry": RetryPolicy.none(), "request_timeout": DEADLINE, **kwargs},
    )


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _always(answer: Answer) -> Callable[[Seen], Answer]:
    return lambda _request: answer


def _one_line(error: BaseException, action: str, status: int | None) -> str:
    text = str(error)
    assert "\n" not in text
    assert "\r" not in text
    assert len(text) < 1000
    assert action in text
    if status is not None:
        assert f"HTTP {status}" in text
    return text


# --- the deadline of every attempt ---------------------------------------------------------


async def test_a_dripping_answer_is_given_up_at_the_deadline_and_retried_with_the_same_token(
    http: aiohttp.ClientSession,
):
    """One byte per 50 ms never finishes inside the deadline: each attempt ends there,
    RunCommand is sent again with the same ClientToken, and the call ends TransportError."""
    body = b'{"RequestId": "r", "CommandId": "c-1", "InvokeId": "t-1"}' + b" " * 200
    async with serve_hostile(_always(drip_answer(body, pause=0.05))) as server:
        client = await _client(server.url, http, retry=QUICK)
        request = RunCommandRequest(
            type="RunShellScript", content="true", instance_ids=["i-1"], client_token="tok-7"
        )
        with pytest.raises(errors.TransportError) as caught:
            await client.run_command(request)
    assert server.actions() == ["RunCommand"] * QUICK.attempts
    assert {seen.query.get("ClientToken") for seen in server.seen} == {"tok-7"}
    text = _one_line(caught.value, "RunCommand", None)
    assert "deadline" in text


async def test_a_dripping_answer_without_a_token_is_given_up_once(http: aiohttp.ClientSession):
    """Without a ClientToken nothing is re-sent, but the attempt still ends."""
    async with serve_hostile(_always(drip_answer(b"{}" + b" " * 200, pause=0.05))) as server:
        client = await _client(server.url, http, retry=QUICK)
        request = RunCommandRequest(type="RunShellScript", content="true", instance_ids=["i-1"])
        with pytest.raises(errors.TransportError):
            await client.run_command(request)
    assert server.actions() == ["RunCommand"]


# --- hostile answers -----------------------------------------------------------------------


async def _instances_error(answer: Answer, http: aiohttp.ClientSession, **kwargs: Any):
    async with serve_hostile(_always(answer)) as server:
        client = await _client(server.url, http, **kwargs)
        with pytest.raises(errors.OrchestratorError) as caught:
            _ = [i async for i in client.describe_instances()]
    return caught.value


MALFORMED_200 = {
    "html page": html_answer(),
    "cut json": raw_answer(b'{"RequestId": "r", "Instances": {"Instance": [{"Ins'),
    "deep json": raw_answer(deep_json(100_000)),
    "deep object": raw_answer(b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
    "invalid utf-8": raw_answer(b'{"RequestId": "\xff\xfe\xfd"}'),
    "a json array": json_answer([1, 2, 3]),
    "a string where an object goes": json_answer({"Instances": "x"}),
    "a list where an object goes": json_answer({"Instances": [INSTANCE]}),
    "objects where strings go": json_answer(_instances(InstanceId={"a": 1})),
    "a number list of ips": json_answer(_instances(VpcAttributes=[1, 2])),
    "ips nested deep": raw_answer(
        b'{"Instances": {"Instance": [{"InstanceId": "i-1", "Status": "Running", '
        b'"VpcAttributes": {"PrivateIpAddress": {"IpAddress": ' + deep_json(990) + b"}}}]}}"
    ),
    "a time past year 9999": json_answer(_instances(CreationTime="9999-12-31T23:59:59-12:00")),
    "far more items than a page": json_answer({"Instances": {"Instance": [INSTANCE] * 5000}}),
    "a lone surrogate": raw_answer(b'{"Instances": {"Instance": [{"InstanceId": "i-\\ud800"}]}}'),
}


@pytest.mark.parametrize("kind", MALFORMED_200)
async def test_a_malformed_200_is_an_invalid_response(kind: str, http: aiohttp.ClientSession):
    error = await _instances_error(MALFORMED_200[kind], http)
    assert isinstance(error, errors.MalformedResponse), repr(error)
    assert error.code == "InvalidResponse"
    assert error.http_status == 200
    _one_line(error, "DescribeInstances", 200)


@pytest.mark.parametrize(
    "answer",
    [
        html_answer("502 Bad Gateway"),
        raw_answer(deep_json(100_000), status="500 Internal Server Error"),
        raw_answer(b"\xff\xfe not json", status="503 Service Unavailable"),
    ],
    ids=["html 502", "deep json 500", "garbage 503"],
)
async def test_a_broken_5xx_is_a_server_error_by_its_status(
    answer: Answer, http: aiohttp.ClientSession
):
    error = await _instances_error(answer, http)
    assert isinstance(error, errors.ServerError)
    assert error.code == "InternalError"
    _one_line(error, "DescribeInstances", int(answer.status.split()[0]))


async def test_an_error_message_with_newlines_is_kept_on_one_line(http: aiohttp.ClientSession):
    """The service's Message is shown, but never over several lines or at any length."""
    body = {"Code": "Bad\nCode", "Message": "line one\nline two\r\n" + "x" * 100_000}
    error = await _instances_error(json_answer(body, status="400 Bad Request"), http)
    assert isinstance(error, errors.InvalidParameter)
    text = _one_line(error, "DescribeInstances", 400)
    assert "line one line two" in text


async def test_a_body_shorter_than_its_content_length_is_a_transport_error(
    http: aiohttp.ClientSession,
):
    error = await _instances_error(lying_answer(b'{"RequestId": "r"}', claimed=10_000), http)
    assert isinstance(error, errors.TransportError)
    _one_line(error, "DescribeInstances", 200)


async def test_a_huge_chunked_answer_is_refused_past_the_cap(http: aiohttp.ClientSession):
    """No length up front: the body is read chunk by chunk and refused past the cap."""
    piece = b" " * 65_536
    count = DEFAULT_MAX_ANSWER_BYTES // len(piece) + 8
    error = await _instances_error(chunked_answer(piece, count), http)
    assert isinstance(error, errors.MalformedResponse)
    assert error.code == "ResponseTooLarge"
    _one_line(error, "DescribeInstances", 200)


async def test_a_content_length_above_the_cap_is_refused_before_reading(
    http: aiohttp.ClientSession,
):
    """The server announces a terabyte and sends almost nothing: refused at once, with
    no wait for the deadline."""
    error = await _instances_error(declared_answer(10**12), http, request_timeout=None)
    assert isinstance(error, errors.MalformedResponse)
    assert error.code == "ResponseTooLarge"
    _one_line(error, "DescribeInstances", 200)


async def test_a_compressed_answer_is_capped_once_inflated(http: aiohttp.ClientSession):
    """A small gzip body that inflates past the cap (a decompression bomb) is refused
    on its inflated size: the cap counts what would be parsed, not what came in."""
    inflated = b'{"RequestId": "' + b"a" * (2 * DEFAULT_MAX_ANSWER_BYTES) + b'"}'
    body = gzip.compress(inflated, compresslevel=6)
    headers = (
        ("Content-Type", "application/json"),
        ("Content-Encoding", "gzip"),
        ("Content-Length", str(len(body))),
    )
    error = await _instances_error(Answer("200 OK", headers, [body]), http)
    assert isinstance(error, errors.MalformedResponse)
    assert error.code == "ResponseTooLarge"


async def test_the_cap_is_configurable(http: aiohttp.ClientSession):
    error = await _instances_error(json_answer(_instances()), http, max_answer_bytes=64)
    assert isinstance(error, errors.MalformedResponse)
    assert error.code == "ResponseTooLarge"


async def test_an_oversize_5xx_is_classed_by_its_status(http: aiohttp.ClientSession):
    piece = b"<p>" + b"x" * 65_533
    answer = chunked_answer(piece, DEFAULT_MAX_ANSWER_BYTES // len(piece) + 8)
    error = await _instances_error(Answer("502 Bad Gateway", answer.headers, answer.body), http)
    assert isinstance(error, errors.ServerError)
    assert error.code == "InternalError"
    _one_line(error, "DescribeInstances", 502)


async def test_an_oversize_answer_is_retried_like_a_server_fault(http: aiohttp.ClientSession):
    """An answer too large to read may be a proxy's fault, and a RunCommand whose answer
    was refused may have run: it is retried (same token), never taken for a refusal."""
    async with serve_hostile(_always(declared_answer(10**12))) as server:
        client = await _client(server.url, http, retry=QUICK)
        request = RunCommandRequest(
            type="RunShellScript", content="true", instance_ids=["i-1"], client_token="tok-8"
        )
        with pytest.raises(errors.MalformedResponse) as caught:
            await client.run_command(request)
    assert caught.value.retryable
    assert server.actions() == ["RunCommand"] * QUICK.attempts


@pytest.mark.parametrize(
    "fields",
    [
        {"ExitCode": 10**30},
        {"Dropped": "9" * 40},
        {"ExitCode": "٣"},
        {"Output": "not base64!"},
        {"Output": ["x"]},
        {"StartTime": "0001-01-01T00:00:00+01:00"},
        {"InvocationStatus": {"k": "v"}},
    ],
    ids=str,
)
async def test_invocation_results_out_of_range_are_invalid(
    fields: dict[str, Any], http: aiohttp.ClientSession
):
    """Numbers the journal could not store, times outside datetime's range, output that
    is not Base64: the page is refused, nothing half-decoded goes on."""
    async with serve_hostile(_always(json_answer(_results(**fields)))) as server:
        client = await _client(server.url, http)
        with pytest.raises(errors.MalformedResponse) as caught:
            _ = [r async for r in client.describe_invocation_results(invoke_id="t-1")]
    _one_line(caught.value, "DescribeInvocationResults", 200)


async def test_a_page_of_numbers_as_strings_is_still_read(http: aiohttp.ClientSession):
    """The API's own looseness (numbers as strings) is not hostile: it decodes."""
    answer = json_answer(_results(ExitCode="3", Dropped="0", Repeats=1))
    async with serve_hostile(_always(answer)) as server:
        client = await _client(server.url, http)
        results = [r async for r in client.describe_invocation_results(invoke_id="t-1")]
    assert [(r.exit_code, r.dropped, r.repeats) for r in results] == [(3, 0, 1)]
