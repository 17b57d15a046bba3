"""The signer against every captured official-SDK request, and on a real loopback wire."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from orchestrator.ecs._http import HttpSender
from orchestrator.ecs._signing import (
    EMPTY_BODY_SHA256,
    canonical_query,
    format_timestamp,
    percent_encode,
    sign_v1,
    sign_v3,
    v1_signature,
    v1_string_to_sign,
    v3_signature,
)

CAPTURES = Path(__file__).parents[1] / "data" / "captures"
SECRET = "testsecret"
MOMENT = datetime(2026, 11, 22, 18, 11, 34, tzinfo=UTC)


def _load() -> list[tuple[str, dict[str, Any]]]:
    records = []
    for path in sorted(CAPTURES.glob("*.jsonl")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            record = json.loads(line)
            records.append((f"{path.stem}:{number}:{record['action']}", record))
    return records


RECORDS = _load()
V1_RECORDS = [(name, r) for name, r in RECORDS if name.startswith(("core", "tea_v1"))]
V3_RECORDS = [(name, r) for name, r in RECORDS if not name.startswith(("core", "tea_v1"))]


def _authorization(headers: dict[str, str]) -> tuple[str, list[str], str]:
    """(credential, signed header names, signature) of an ACS3 Authorization header."""
    algorithm, _, rest = headers["Authorization"].partition(" ")
    assert algorithm == "ACS3-HMAC-SHA256"
    fields = dict(part.split("=", 1) for part in rest.split(","))
    return fields["Credential"], fields["SignedHeaders"].split(";"), fields["Signature"]


def test_every_capture_is_checked() -> None:
    """All 15 captures are covered: 8 V1 (core*, tea_v1*) and 7 V3 (tea, tea_error, tea_extra)."""
    assert len(V1_RECORDS) == 8
    assert len(V3_RECORDS) == 7
    assert all("Signature" in dict(r["query"]) for _, r in V1_RECORDS)
    assert all("Authorization" in dict(r["headers"]) for _, r in V3_RECORDS)


@pytest.mark.parametrize(("name", "record"), V1_RECORDS, ids=[n for n, _ in V1_RECORDS])
def test_v1_signature_matches_capture(name: str, record: dict[str, Any]) -> None:
    """HMAC-SHA1 over the captured query reproduces the SDK's Signature."""
    params = dict(record["query"])
    assert params["AccessKeyId"] == "testid"
    assert v1_signature(record["method"], params, SECRET) == params["Signature"]


@pytest.mark.parametrize(("name", "record"), V3_RECORDS, ids=[n for n, _ in V3_RECORDS])
def test_v3_signature_matches_capture(name: str, record: dict[str, Any]) -> None:
    """ACS3-HMAC-SHA256 over the captured query and headers reproduces the SDK's signature."""
    headers = dict(record["headers"])
    credential, signed, signature = _authorization(headers)
    assert credential == "testid"
    computed = v3_signature(
        method=record["method"],
        path=record["path"],
        params=dict(record["query"]),
        headers=headers,
        signed_headers=signed,
        access_key_secret=SECRET,
    )
    assert computed == signature


@pytest.mark.parametrize(("name", "record"), V3_RECORDS, ids=[n for n, _ in V3_RECORDS])
def test_sign_v3_rebuilds_the_captured_authorization(name: str, record: dict[str, Any]) -> None:
    """Given the SDK's extra headers, sign_v3 yields the captured Authorization byte for byte."""
    headers = dict(record["headers"])
    built = sign_v3(
        action=headers["x-acs-action"],
        version=headers["x-acs-version"],
        host=headers["host"],
        params=dict(record["query"]),
        access_key_id="testid",
        access_key_secret=SECRET,
        security_token=None,
        timestamp=datetime.strptime(headers["x-acs-date"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=UTC
        ),
        nonce=headers["x-acs-signature-nonce"],
        extra_headers={
            "user-agent": headers["user-agent"],
            "x-acs-credentials-provider": headers["x-acs-credentials-provider"],
        },
    )
    assert built["Authorization"] == headers["Authorization"]
    assert built["x-acs-content-sha256"] == headers["x-acs-content-sha256"]


def test_v1_matches_the_published_documentation_example() -> None:
    """The RPC signing doc's DescribeRegions example signs to OLeaidS1JvxuMvnyHOwuJ+uX5qY=."""
    params = {
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "Format": "XML",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0",
        "Timestamp": "2016-02-23T12:46:24Z",
        "Version": "2014-05-26",
    }
    assert v1_string_to_sign("GET", params).startswith("GET&%2F&AccessKeyId%3Dtestid%26Action")
    assert "Timestamp%3D2016-02-23T12%253A46%253A24Z" in v1_string_to_sign("GET", params)
    assert v1_signature("GET", params, SECRET) == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("echo hi", "echo%20hi"),
        ("a*b", "a%2Ab"),
        ("~x-_.y", "~x-_.y"),
        ("a+b", "a%2Bb"),
        ("/", "%2F"),
        ("é", "%C3%A9"),
        ('{"a":1}', "%7B%22a%22%3A1%7D"),
        ("", ""),
    ],
)
def test_percent_encode(raw: str, encoded: str) -> None:
    """RFC 3986 with UTF-8: space %20, * %2A, ~ kept, + and / escaped."""
    assert percent_encode(raw) == encoded


def test_canonical_query_sorts_and_encodes() -> None:
    """Names sort by code point and both sides are encoded."""
    assert canonical_query({"b": "x y", "A": "*", "a": ""}) == "A=%2A&a=&b=x%20y"


def test_format_timestamp_converts_to_utc_and_refuses_naive() -> None:
    """An aware time is written in UTC; a naive one is an error, not a guess."""
    east = datetime(2026, 1, 1, 8, 0, 5, tzinfo=timezone(timedelta(hours=8)))
    assert format_timestamp(east) == "2026-01-01T00:00:05Z"
    with pytest.raises(ValueError):
        format_timestamp(datetime(2026, 1, 1))  # noqa: DTZ001


def _v1(token: str | None = None) -> dict[str, str]:
    return sign_v1(
        action="RunCommand",
        version="2014-05-26",
        params={"CommandContent": "echo hi", "RegionId": "cn-hangzhou"},
        access_key_id="testid",
        access_key_secret=SECRET,
        security_token=token,
        timestamp=MOMENT,
        nonce="n-1",
    )


def test_sign_v1_adds_every_common_parameter() -> None:
    """Action, Version, Format=JSON, key, method, version, nonce, timestamp, and a valid MAC."""
    signed = _v1()
    assert signed == signed | {
        "Action": "RunCommand",
        "Version": "2014-05-26",
        "Format": "JSON",
        "AccessKeyId": "testid",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": "n-1",
        "Timestamp": "2026-11-22T18:11:34Z",
        "CommandContent": "echo hi",
    }
    assert "SecurityToken" not in signed
    assert signed["Signature"] == v1_signature("POST", signed, SECRET)


def test_sign_v1_signs_the_security_token() -> None:
    """An STS token travels as SecurityToken and is covered by the signature."""
    with_token = _v1("tok")
    assert with_token["SecurityToken"] == "tok"
    assert with_token["Signature"] != _v1("other")["Signature"]


def test_sign_v3_headers_and_security_token() -> None:
    """sign_v3 returns every x-acs-* header, signs them all, and adds the STS token header."""
    headers = sign_v3(
        action="DescribeInstances",
        version="2014-05-26",
        host="ecs.cn-hangzhou.aliyuncs.com",
        params={"RegionId": "cn-hangzhou"},
        access_key_id="testid",
        access_key_secret=SECRET,
        security_token="sts",
        timestamp=MOMENT,
        nonce="n-2",
    )
    assert headers["x-acs-action"] == "DescribeInstances"
    assert headers["x-acs-date"] == "2026-11-22T18:11:34Z"
    assert headers["x-acs-signature-nonce"] == "n-2"
    assert headers["x-acs-content-sha256"] == EMPTY_BODY_SHA256
    assert headers["x-acs-security-token"] == "sts"
    assert headers["accept"] == "application/json"
    _, signed, signature = _authorization(headers)
    assert signed == sorted(name for name in headers if name != "Authorization")
    assert "host" in signed
    assert "x-acs-security-token" in signed
    assert signature == v3_signature(
        method="POST",
        path="/",
        params={"RegionId": "cn-hangzhou"},
        headers=headers,
        signed_headers=signed,
        access_key_secret=SECRET,
    )


# --- on the wire: what arrives is what was signed ------------------------------------------

AWKWARD = {
    "CommandContent": "echo 'a b' * ~ + / % é 中",
    "Parameters": '{"a":"x y","b":"ü"}',
    "RegionId": "cn-hangzhou",
    "Empty": "",
}


async def _capture(handler_box: list[web.Request]) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        handler_box.append(request)
        return web.json_response({"RequestId": "r"})

    app = web.Application()
    app.router.add_post("/", handle)
    return app


@pytest.mark.anyio
async def test_v3_request_verifies_on_the_wire() -> None:
    """A server recomputing V3 from the request it received gets the client's signature."""
    seen: list[web.Request] = []
    runner = web.AppRunner(await _capture(seen))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as session:
            sender = HttpSender(session, f"http://127.0.0.1:{port}")
            headers = sign_v3(
                action="RunCommand",
                version="2014-05-26",
                host=sender.host,
                params=AWKWARD,
                access_key_id="testid",
                access_key_secret=SECRET,
                security_token=None,
                timestamp=MOMENT,
                nonce="n-3",
            )
            await sender.send("RunCommand", AWKWARD, headers)
    finally:
        await runner.cleanup()
    request = seen[0]
    received = {name.lower(): value for name, value in request.headers.items()}
    assert received["host"] == f"127.0.0.1:{port}"
    assert dict(request.query) == AWKWARD
    assert request.content_length in {0, None}
    _, signed, signature = _authorization(dict(request.headers))
    assert signature == v3_signature(
        method=request.method,
        path=request.path,
        params=dict(request.query),
        headers=received,
        signed_headers=signed,
        access_key_secret=SECRET,
    )


@pytest.mark.anyio
async def test_v1_request_verifies_on_the_wire() -> None:
    """A server recomputing V1 from the query it received gets the client's Signature."""
    seen: list[web.Request] = []
    runner = web.AppRunner(await _capture(seen))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        query = sign_v1(
            action="RunCommand",
            version="2014-05-26",
            params=AWKWARD,
            access_key_id="testid",
            access_key_secret=SECRET,
            security_token="sts",
            timestamp=MOMENT,
            nonce="n-4",
        )
        async with aiohttp.ClientSession() as session:
            sender = HttpSender(session, f"http://127.0.0.1:{port}")
            await sender.send("RunCommand", query, {})
    finally:
        await runner.cleanup()
    received = dict(seen[0].query)
    assert received == query
    assert v1_signature("POST", received, SECRET) == received["Signature"]
