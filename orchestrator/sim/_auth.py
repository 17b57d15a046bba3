"""The simulator's own signature check, written apart from the client's signer on purpose:
a bug shared by both sides would be invisible.

`KeyStore` holds the key pairs the simulator accepts (from the fleet file, plus STS
credentials it issues, and may revoke, at run time). `Authenticator` verifies a
`ParsedRequest` signed with V1 (HMAC-SHA1 `Signature` parameter) or V3 (`Authorization:
ACS3-HMAC-SHA256 ...`), checks the timestamp against the wall clock and refuses reused
nonces, and refuses with the real service's codes, statuses and messages
(`SimApiError`). The algorithms are the ones in `shared/reference/wire-format.md`;
values are percent-decoded on arrival and re-encoded here, because the Tea SDK sends `+`
for a space but signs `%20`.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Final

from orchestrator import api
from orchestrator.sim._protocol import SimApiError
from orchestrator.sim._spec import KeySpec
from orchestrator.sim._wire import ParsedRequest, percent_encode

WallClock = Callable[[], datetime]

V1_METHOD: Final = "HMAC-SHA1"
V1_VERSION: Final = "1.0"
V3_ALGORITHM: Final = "ACS3-HMAC-SHA256"
_TIME_FORMATS: Final = ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ")
# V3 headers that must be signed: without them a signature could be replayed or moved.
_V3_REQUIRED_SIGNED: Final = ("host", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256")


def utc_now() -> datetime:
    """The real wall clock (the default)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Entry:
    key: KeySpec
    expires_at: datetime | None


class KeyStore:
    """The access keys the simulator accepts, by id. Never shows a secret or token."""

    def __init__(self, keys: Iterable[KeySpec], *, wall_clock: WallClock = utc_now) -> None:
        self._wall_clock = wall_clock
        self._entries = {key.access_key_id: _Entry(key, None) for key in keys}

    def __repr__(self) -> str:
        return f"KeyStore(access_key_ids={sorted(self._entries)!r})"

    def __contains__(self, access_key_id: object) -> bool:
        return access_key_id in self._entries

    def add(self, key: KeySpec, *, expires_at: datetime | None = None) -> None:
        """Accept `key` from now on (until `expires_at` on the wall clock, if given)."""
        self._entries[key.access_key_id] = _Entry(key, expires_at)

    def issue_sts(self, ttl_seconds: float) -> KeySpec:
        """Issue an STS credential valid for `ttl_seconds` of wall-clock time."""
        key = KeySpec(
            access_key_id=f"STS.{secrets.token_hex(12)}",
            access_key_secret=secrets.token_urlsafe(30),
            security_token=secrets.token_urlsafe(48),
        )
        self.add(key, expires_at=self._wall_clock() + timedelta(seconds=ttl_seconds))
        return key

    def revoke(self, access_key_id: str) -> None:
        """Revoke a temporary (STS) credential before its expiry: from now on every
        request signed with it is refused with TemporaryAccessKey.Error. Raises KeyError
        for an unknown id, ValueError for a long-term key (those are disabled, not
        revoked)."""
        entry = self._entries.get(access_key_id)
        if entry is None:
            raise KeyError(access_key_id)
        if entry.key.security_token is None:
            raise ValueError(f"{access_key_id} is not a temporary (STS) key")
        self._entries[access_key_id] = _Entry(replace(entry.key, revoked=True), entry.expires_at)

    def lookup(self, access_key_id: str) -> tuple[KeySpec, datetime | None] | None:
        """The key and its expiry (None: never), or None for an unknown id."""
        entry = self._entries.get(access_key_id)
        return None if entry is None else (entry.key, entry.expires_at)


class _NonceMemory:
    """Nonces seen within the window; memory stays bounded because old ones expire."""

    def __init__(self, window: timedelta) -> None:
        self._window = window
        self._expiry: dict[tuple[str, str], datetime] = {}
        self._heap: list[tuple[datetime, tuple[str, str]]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    def seen(self, key: tuple[str, str], now: datetime) -> bool:
        self._expire(now)
        return key in self._expiry

    def remember(self, key: tuple[str, str], now: datetime, signed_at: datetime) -> None:
        # Kept until the signed timestamp itself is too old to be accepted, so a request
        # dated in the (allowed) future cannot be replayed once its nonce is forgotten.
        expiry = max(now, signed_at) + self._window
        self._expiry[key] = expiry
        heapq.heappush(self._heap, (expiry, key))

    def _expire(self, now: datetime) -> None:
        while self._heap and self._heap[0][0] <= now:
            expiry, key = heapq.heappop(self._heap)
            if self._expiry.get(key) == expiry:
                del self._expiry[key]


class Authenticator:
    """Verifies request signatures; `authenticate` returns the caller's access key id."""

    def __init__(
        self,
        keys: KeyStore,
        *,
        wall_clock: WallClock = utc_now,
        max_skew_seconds: float = api.TIMESTAMP_MAX_SKEW_SECONDS,
        nonce_window_seconds: float = api.NONCE_WINDOW_SECONDS,
    ) -> None:
        self.keys = keys
        self._wall_clock = wall_clock
        self._max_skew = timedelta(seconds=max_skew_seconds)
        self._nonces = _NonceMemory(timedelta(seconds=nonce_window_seconds))

    @property
    def remembered_nonces(self) -> int:
        """How many nonces are held now (for tests of the bounded memory)."""
        return len(self._nonces)

    def authenticate(self, request: ParsedRequest) -> str:
        """Verify `request`, or raise `SimApiError` with the code the real service uses."""
        authorization = request.header("authorization")
        if authorization is not None:
            return self._v3(request, authorization)
        return self._v1(request)

    # --- V1: HMAC-SHA1 over the sorted parameters -----------------------------------

    def _v1(self, request: ParsedRequest) -> str:
        params = request.params
        signature = params.get("Signature")
        if not signature:
            raise SimApiError("MissingSignature")
        access_key_id = params.get("AccessKeyId")
        if not access_key_id:
            raise SimApiError("MissingAccessKeyId")
        timestamp = params.get("Timestamp")
        if not timestamp:
            raise SimApiError("MissingTimestamp")
        nonce = params.get("SignatureNonce")
        if not nonce:
            raise SimApiError("MissingSignatureNonce")
        method = params.get("SignatureMethod")
        if method is None or params.get("SignatureVersion") != V1_VERSION:
            raise SimApiError("IncompleteSignature")
        if method != V1_METHOD:
            raise SimApiError("InvalidSignatureMethod")
        signed_at = self._check_time(timestamp)
        secret = self._secret_for(access_key_id, params.get("SecurityToken"))

        canonical = "&".join(
            f"{percent_encode(k)}={percent_encode(v)}"
            for k, v in sorted(params.items())
            if k != "Signature"
        )
        string_to_sign = f"{request.method}&{percent_encode('/')}&{percent_encode(canonical)}"
        digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
        expected = base64.b64encode(digest).decode("ascii")
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            # The legacy SDK splits this message on ':' and compares part 1 with its own
            # string to sign, so the text must be exactly this, colon included.
            raise SimApiError(
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation. "
                f"server string to sign is:{string_to_sign}",
            )
        self._check_nonce(access_key_id, nonce, signed_at)
        return access_key_id

    # --- V3: ACS3-HMAC-SHA256 over a canonical request --------------------------------

    def _v3(self, request: ParsedRequest, authorization: str) -> str:
        algorithm, _, rest = authorization.strip().partition(" ")
        if not algorithm.startswith("ACS3-"):
            raise SimApiError("IncompleteSignature")
        if algorithm != V3_ALGORITHM:
            raise SimApiError("InvalidSignatureMethod")
        fields = dict(part.strip().partition("=")[::2] for part in rest.split(",") if "=" in part)
        access_key_id = fields.get("Credential", "")
        signed_names = [n.strip().lower() for n in fields.get("SignedHeaders", "").split(";")]
        signature = fields.get("Signature", "")
        if not access_key_id or not signature or not any(signed_names):
            raise SimApiError("IncompleteSignature")
        timestamp = request.header("x-acs-date")
        if not timestamp:
            raise SimApiError("MissingTimestamp")
        nonce = request.header("x-acs-signature-nonce")
        if not nonce:
            raise SimApiError("MissingSignatureNonce")
        required = [*_V3_REQUIRED_SIGNED]
        if request.header("x-acs-security-token") is not None:
            required.append("x-acs-security-token")
        if any(name not in signed_names for name in required):
            raise SimApiError("IncompleteSignature")
        signed_at = self._check_time(timestamp)
        secret = self._secret_for(access_key_id, request.header("x-acs-security-token"))

        names = sorted(set(signed_names))
        canonical_headers = "".join(
            f"{name}:{','.join(sorted(v.strip() for v in request.headers.get(name, ())))}\n"
            for name in names
        )
        canonical_query = "&".join(
            f"{percent_encode(k)}={percent_encode(v)}"
            for k, v in sorted(dict(request.query).items())
        )
        canonical_request = "\n".join(
            (
                request.method,
                request.path or "/",
                canonical_query,
                canonical_headers,
                ";".join(names),
                hashlib.sha256(request.body).hexdigest(),
            )
        )
        string_to_sign = f"{V3_ALGORITHM}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"
        expected = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
            raise SimApiError(
                "SignatureDoesNotMatch",
                "Specified signature does not match our calculation. "
                f"server StringToSign is [{string_to_sign}]",
            )
        self._check_nonce(access_key_id, nonce, signed_at)
        return access_key_id

    # --- shared checks ---------------------------------------------------------------

    def _check_time(self, timestamp: str) -> datetime:
        signed_at = _parse_time(timestamp)
        if abs(self._wall_clock() - signed_at) > self._max_skew:
            raise SimApiError("InvalidTimeStamp.Expired")
        return signed_at

    def _secret_for(self, access_key_id: str, token: str | None) -> str:
        found = self.keys.lookup(access_key_id)
        if found is None:
            raise SimApiError("InvalidAccessKeyId.NotFound")
        key, expires_at = found
        if key.security_token is not None:
            # (unconfirmed) the codes for a missing token on an STS key; the real gateway
            # may word it otherwise, but it is an InvalidSecurityToken.* refusal.
            if not token:
                raise SimApiError("InvalidSecurityToken.Malformed")
            if not hmac.compare_digest(token.encode(), key.security_token.encode()):
                raise SimApiError("InvalidSecurityToken.MismatchWithAccessKey")
            if expires_at is not None and self._wall_clock() >= expires_at:
                raise SimApiError("InvalidSecurityToken.Expired")
            # (unconfirmed) the seed lists TemporaryAccessKey.Error without saying when;
            # a temporary key that is well formed and unexpired but revoked is our
            # reading. Checked after expiry: the token says that by itself, a revocation
            # takes a look-up.
            if key.revoked:
                raise SimApiError("TemporaryAccessKey.Error")
        return key.access_key_secret

    def _check_nonce(self, access_key_id: str, nonce: str, signed_at: datetime) -> None:
        # Remembered only once the signature is good: a forged request cannot burn a
        # legitimate client's nonce.
        now = self._wall_clock()
        if self._nonces.seen((access_key_id, nonce), now):
            raise SimApiError("SignatureNonceUsed")
        self._nonces.remember((access_key_id, nonce), now, signed_at)


def _parse_time(text: str) -> datetime:
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    # (unconfirmed) the real gateway's code for a malformed timestamp.
    raise SimApiError("InvalidTimeStamp.Format")
