"""The simulator's signature check against the captured SDK requests, and every refusal.

Fresh requests are signed by the official Tea SDK's own signing functions
(`alibabacloud_tea_openapi.utils.Utils`), never by orchestrator's signer.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote, urlencode

import pytest
from alibabacloud_tea_openapi.utils import Utils as TeaUtils

from orchestrator import api
from orchestrator.sim._auth import Authenticator, KeyStore
from orchestrator.sim._protocol import SimApiError
from orchestrator.sim._spec import KeySpec
from orchestrator.sim._wire import ParsedRequest, parse_parts

CAPTURES = Path(__file__).parents[1] / "data" / "captures"
TEST_KEY = KeySpec("testid", "testsecret")
T0 = datetime(2026, 11, 22, 18, 11, 34, tzinfo=UTC)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _captures() -> list[dict[str, object]]:
    lines = []
    for path in sorted(CAPTURES.glob("*.jsonl")):
        for number, line in enumerate(path.read_text().splitlines()):
            record = json.loads(line)
            record["id"] = f"{path.stem}:{number}"
            lines.append(record)
    return lines


CAPTURED = _captures()


class WallClock:
    """A wall clock moved by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _from_capture(record: dict[str, object], **changes: object) -> ParsedRequest:
    raw_path = str(record["raw_path"])
    path, _, query = raw_path.partition("?")
    headers = [tuple(pair) for pair in record["headers"]]  # type: ignore[attr-defined]
    return parse_parts(
        method=str(record["method"]),
        path=path,
        raw_query=str(changes.get("raw_query", query)),
        headers=changes.get("headers", headers),  # type: ignore[arg-type]
        body=str(record["body"]).encode(),
    )


def _v1(
    params: dict[str, str],
    *,
    key: KeySpec = TEST_KEY,
    when: datetime = T0,
    method: str = "POST",
    drop: tuple[str, ...] = (),
    **extra: str,
) -> ParsedRequest:
    """A V1 request signed by the Tea SDK's own RPC signer."""
    full = {
        "Action": "DescribeInstances",
        "Version": "2014-05-26",
        "Format": "JSON",
        "AccessKeyId": key.access_key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": uuid.uuid4().hex,
        "Timestamp": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        **params,
        **extra,
    }
    full["Signature"] = TeaUtils.get_rpcsignature(full, method, key.access_key_secret)
    for name in drop:
        full.pop(name)
    return parse_parts(
        method=method, path="/", raw_query=urlencode(full), headers=[("host", "127.0.0.1")]
    )


def _v3(
    query: dict[str, str],
    *,
    key: KeySpec = TEST_KEY,
    when: datetime = T0,
    token: str | None = None,
) -> ParsedRequest:
    """A V3 request signed by the Tea SDK's own ACS3-HMAC-SHA256 signer."""
    headers = {
        "host": "127.0.0.1:8080",
        "x-acs-version": "2014-05-26",
        "x-acs-action": "DescribeInstances",
        "x-acs-date": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": uuid.uuid4().hex,
        "accept": "application/json",
        "x-acs-content-sha256": EMPTY_SHA256,
    }
    if token is not None:
        headers["x-acs-accesskey-id"] = key.access_key_id
        headers["x-acs-security-token"] = token
    request = SimpleNamespace(pathname="/", method="POST", query=query, headers=headers)
    headers["Authorization"] = TeaUtils.get_authorization(
        request, "ACS3-HMAC-SHA256", EMPTY_SHA256, key.access_key_id, key.access_key_secret
    )
    return parse_parts(
        method="POST",
        path="/",
        raw_query=urlencode(query, quote_via=quote),
        headers=list(headers.items()),
    )


def _auth(*keys: KeySpec, now: datetime = T0) -> tuple[Authenticator, WallClock]:
    clock = WallClock(now)
    return Authenticator(KeyStore(keys or (TEST_KEY,), wall_clock=clock), wall_clock=clock), clock


def _refused(authenticator: Authenticator, request: ParsedRequest) -> SimApiError:
    with pytest.raises(SimApiError) as caught:
        authenticator.authenticate(request)
    return caught.value


@pytest.mark.parametrize("record", CAPTURED, ids=[str(r["id"]) for r in CAPTURED])
def test_every_capture_verifies(record: dict[str, object]) -> None:
    """Each request the official SDKs sent verifies with testid/testsecret at its own time."""
    authenticator, _ = _auth(now=datetime.fromtimestamp(float(str(record["ts"])), UTC))
    assert authenticator.authenticate(_from_capture(record)) == "testid"


def test_capture_with_a_changed_parameter_is_refused() -> None:
    """Changing one signed value after signing breaks a V1 and a V3 signature."""
    for name in ("core:0", "tea:0"):
        record = next(r for r in CAPTURED if r["id"] == name)
        tampered = str(record["raw_path"]).partition("?")[2].replace("i-2", "i-3")
        authenticator, _ = _auth(now=datetime.fromtimestamp(float(str(record["ts"])), UTC))
        error = _refused(authenticator, _from_capture(record, raw_query=tampered))
        assert (error.code, error.http_status) == ("SignatureDoesNotMatch", 400)


def test_v1_mismatch_message_carries_the_string_to_sign_after_a_colon() -> None:
    """The V1 refusal ends `server string to sign is:<StringToSign>`, as the legacy SDK parses."""
    authenticator, _ = _auth(KeySpec("testid", "other-secret"))
    error = _refused(authenticator, _v1({"RegionId": "cn-hangzhou"}))
    prefix = "Specified signature is not matched with our calculation. server string to sign is:"
    assert error.message.startswith(prefix)
    string_to_sign = error.message.split(":")[1]
    assert string_to_sign.startswith("POST&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeInstances")
    assert "other-secret" not in error.message


def test_v3_mismatch_message_carries_the_string_to_sign_in_brackets() -> None:
    """The V3 refusal quotes the server's StringToSign in square brackets."""
    authenticator, _ = _auth(KeySpec("testid", "other-secret"))
    error = _refused(authenticator, _v3({"RegionId": "cn-hangzhou"}))
    assert error.code == "SignatureDoesNotMatch"
    assert error.message.startswith(
        "Specified signature does not match our calculation. server StringToSign is "
        "[ACS3-HMAC-SHA256\n"
    )
    assert error.message.endswith("]")


def test_fresh_v1_and_v3_requests_verify() -> None:
    """Requests signed now by the SDK's signers, with spaces and UTF-8, verify."""
    authenticator, _ = _auth()
    params = {"CommandContent": "echo a b * ~ é", "RegionId": "cn-hangzhou"}
    assert authenticator.authenticate(_v1(params)) == "testid"
    assert authenticator.authenticate(_v3(params)) == "testid"


def test_get_is_signed_with_its_own_method() -> None:
    """The V1 string to sign starts with the request's HTTP method."""
    authenticator, _ = _auth()
    assert authenticator.authenticate(_v1({}, method="GET")) == "testid"


def test_unknown_key_is_404() -> None:
    """An access key id the simulator does not hold is 404 InvalidAccessKeyId.NotFound."""
    authenticator, _ = _auth(KeySpec("someone-else", "x"))
    for request in (_v1({}), _v3({})):
        error = _refused(authenticator, request)
        assert (error.code, error.http_status) == ("InvalidAccessKeyId.NotFound", 404)


@pytest.mark.parametrize(
    ("drop", "code"),
    [
        ("Signature", "MissingSignature"),
        ("AccessKeyId", "MissingAccessKeyId"),
        ("Timestamp", "MissingTimestamp"),
        ("SignatureNonce", "MissingSignatureNonce"),
        ("SignatureMethod", "IncompleteSignature"),
    ],
)
def test_missing_v1_parts_are_refused(drop: str, code: str) -> None:
    """A V1 request without one of its signing parameters is refused with that part's code."""
    authenticator, _ = _auth()
    error = _refused(authenticator, _v1({}, drop=(drop,)))
    assert (error.code, error.http_status) == (code, api.ERRORS[code].http_status)


def test_unsupported_signature_method_is_refused() -> None:
    """SignatureMethod other than HMAC-SHA1 is InvalidSignatureMethod."""
    authenticator, _ = _auth()
    error = _refused(authenticator, _v1({}, SignatureMethod="HMAC-SHA256"))
    assert error.code == "InvalidSignatureMethod"


def test_malformed_timestamp_is_refused() -> None:
    """A Timestamp that is not ISO 8601 UTC is InvalidTimeStamp.Format."""
    authenticator, _ = _auth()
    error = _refused(authenticator, _v1({}, Timestamp="22/11/2026 18:11"))
    assert (error.code, error.http_status) == ("InvalidTimeStamp.Format", 400)


def test_v3_authorization_without_signature_is_incomplete() -> None:
    """An ACS3 Authorization header missing its Signature is IncompleteSignature."""
    authenticator, _ = _auth()
    request = _v3({})
    headers = [
        (k, v.split(",Signature=")[0] if k == "authorization" else v)
        for k, values in request.headers.items()
        for v in values
    ]
    error = _refused(
        authenticator, parse_parts(method="POST", path="/", raw_query="", headers=headers)
    )
    assert (error.code, error.http_status) == ("IncompleteSignature", 400)


def test_v3_without_date_or_nonce_is_refused() -> None:
    """A V3 request without x-acs-date / x-acs-signature-nonce is MissingTimestamp / -Nonce."""
    authenticator, _ = _auth()
    for header, code in (
        ("x-acs-date", "MissingTimestamp"),
        ("x-acs-signature-nonce", "MissingSignatureNonce"),
    ):
        request = _v3({})
        headers = [(k, v) for k, vs in request.headers.items() for v in vs if k != header]
        error = _refused(
            authenticator, parse_parts(method="POST", path="/", raw_query="", headers=headers)
        )
        assert error.code == code


def test_v3_must_sign_host_and_date() -> None:
    """A V3 signature that leaves host out of SignedHeaders is IncompleteSignature."""
    authenticator, _ = _auth()
    record = next(r for r in CAPTURED if r["id"] == "tea:0")
    headers = [
        (k, v.replace("SignedHeaders=accept;host;", "SignedHeaders=accept;"))
        for k, v in record["headers"]  # type: ignore[attr-defined]
    ]
    authenticator, _ = _auth(now=datetime.fromtimestamp(float(str(record["ts"])), UTC))
    error = _refused(authenticator, _from_capture(record, headers=headers))
    assert error.code == "IncompleteSignature"


def test_unsupported_v3_algorithm_is_refused() -> None:
    """ACS3 with an algorithm the simulator does not implement is InvalidSignatureMethod."""
    authenticator, _ = _auth()
    request = _v3({})
    headers = [
        (k, v.replace("ACS3-HMAC-SHA256", "ACS3-HMAC-SM3"))
        for k, vs in request.headers.items()
        for v in vs
    ]
    error = _refused(
        authenticator, parse_parts(method="POST", path="/", raw_query="", headers=headers)
    )
    assert error.code == "InvalidSignatureMethod"


def test_timestamp_more_than_15_minutes_off_is_expired() -> None:
    """Skew beyond 15 minutes either way is 400 InvalidTimeStamp.Expired; 14 minutes is fine."""
    authenticator, clock = _auth()
    assert authenticator.authenticate(_v1({}, when=T0 - timedelta(minutes=14))) == "testid"
    assert authenticator.authenticate(_v3({}, when=T0 + timedelta(minutes=14))) == "testid"
    for when in (T0 - timedelta(minutes=16), T0 + timedelta(minutes=16)):
        for request in (_v1({}, when=when), _v3({}, when=when)):
            error = _refused(authenticator, request)
            assert (error.code, error.http_status) == ("InvalidTimeStamp.Expired", 400)
    assert clock.now == T0


def test_reused_nonce_is_refused_and_forgotten_after_the_window() -> None:
    """The same signed request twice is SignatureNonceUsed; memory drains after 15 minutes."""
    authenticator, clock = _auth()
    v1, v3 = _v1({}), _v3({})
    authenticator.authenticate(v1)
    authenticator.authenticate(v3)
    for request in (v1, v3):
        error = _refused(authenticator, request)
        assert (error.code, error.http_status) == ("SignatureNonceUsed", 400)
    assert authenticator.remembered_nonces == 2
    clock.now = T0 + timedelta(minutes=31)
    authenticator.authenticate(_v1({}, when=clock.now))
    assert authenticator.remembered_nonces == 1


def test_a_refused_signature_does_not_burn_the_nonce() -> None:
    """A forged request with someone's nonce does not make their real request a replay."""
    authenticator, _ = _auth()
    good = _v1({"RegionId": "cn-hangzhou"})
    forged_query = "&".join(
        f"{k}={quote(v, safe='')}" if k != "RegionId" else "RegionId=cn-beijing"
        for k, v in good.query
    )
    forged = parse_parts(method="POST", path="/", raw_query=forged_query, headers=[])
    assert _refused(authenticator, forged).code == "SignatureDoesNotMatch"
    assert authenticator.authenticate(good) == "testid"


def test_sts_credentials_need_their_token_and_expire() -> None:
    """An issued STS key works with its token, and is refused without it, with another
    token, or after its TTL."""
    authenticator, clock = _auth()
    sts = authenticator.keys.issue_sts(600)
    assert sts.access_key_id.startswith("STS.")
    token = sts.security_token
    assert token
    assert authenticator.authenticate(_v1({}, key=sts, SecurityToken=token)) == sts.access_key_id
    assert authenticator.authenticate(_v3({}, key=sts, token=token)) == sts.access_key_id
    cases = [
        (_v1({}, key=sts), "InvalidSecurityToken.Malformed"),
        (_v1({}, key=sts, SecurityToken="forged"), "InvalidSecurityToken.MismatchWithAccessKey"),
        (_v3({}, key=sts, token="forged"), "InvalidSecurityToken.MismatchWithAccessKey"),
    ]
    for request, code in cases:
        assert _refused(authenticator, request).code == code
    clock.now = T0 + timedelta(seconds=601)
    expired = _v1({}, key=sts, when=clock.now, SecurityToken=token)
    error = _refused(authenticator, expired)
    assert (error.code, error.http_status) == ("InvalidSecurityToken.Expired", 400)


def test_no_secret_or_token_in_reprs() -> None:
    """Key stores and issued keys show ids only."""
    store = KeyStore([TEST_KEY])
    sts = store.issue_sts(60)
    text = repr(store) + repr(sts)
    assert "testid" in text
    assert sts.access_key_id in text
    assert "testsecret" not in text
    assert sts.access_key_secret not in text
    assert str(sts.security_token) not in text
