"""The simulated STS: AssumeRole (signed like any RPC call, by a key or a role session
the role trusts) and AssumeRoleWithOIDC (unsigned; the OIDC token is the proof), both
issuing temporary credentials into the same `KeyStore` the ECS side checks, so an
issued credential is refused with InvalidSecurityToken.Expired once its (configurable,
wall-clock) life is over.

The wire is what the official `alibabacloud-credentials` library sends and reads
(its provider/ram_role_arn.py and oidc.py): Version 2015-04-01, `RoleArn`,
`RoleSessionName`, `DurationSeconds`, and an answer with `Credentials.{AccessKeyId,
AccessKeySecret, SecurityToken, Expiration}` and `AssumedRoleUser`. The error codes
are the real STS's as far as its documentation shows them; those marked (unconfirmed)
are our reading.

OIDC tokens are JWTs checked against the fleet's provider: HS256 under the provider's
key (real providers sign with RS256 and publish a JWKS; an HMAC keeps the simulator free
of a crypto dependency while still refusing a forged, expired or foreign token).
`oidc_token` mints one, as the CI's identity provider would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from orchestrator.sim._protocol import Call, Handler, SimApiError

if TYPE_CHECKING:
    from orchestrator.sim._auth import KeyStore, WallClock
    from orchestrator.sim._sts_fleet import OidcProviderSpec, RoleSpec, StsSpec

# Actions that carry no signature: the OIDC token is the caller's proof.
UNSIGNED_ACTIONS: Final = frozenset({"AssumeRoleWithOIDC"})
_MIN_DURATION: Final = 900  # STS's documented DurationSeconds range
_MAX_DURATION: Final = 43_200
_SESSION_NAME: Final = re.compile(r"^[\w.@-]{2,64}$")
_EXPIRATION_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"


def role_arn(account_id: str, name: str) -> str:
    """The ARN of role `name` in the account."""
    return f"acs:ram::{account_id}:role/{name}"


def oidc_provider_arn(account_id: str, name: str) -> str:
    """The ARN of OIDC provider `name` in the account."""
    return f"acs:ram::{account_id}:oidc-provider/{name}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def oidc_token(
    provider: OidcProviderSpec, *, subject: str, now: datetime, lifetime: float = 600.0
) -> str:
    """A JWT the simulated STS accepts from `provider` until `lifetime` seconds after `now`."""
    header = {"alg": "HS256", "typ": "JWT"}
    claims: dict[str, Any] = {
        "iss": provider.issuer,
        "sub": subject,
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp() + lifetime),
    }
    if provider.audience is not None:
        claims["aud"] = provider.audience
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    mac = hmac.new(provider.key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(mac)}"


@dataclass(frozen=True, slots=True)
class Issued:
    """What one assume issued (the answer's `Credentials` object)."""

    role: str
    answer: dict[str, str]


class StsService:
    """Issues role credentials into `keys`; remembers which role each one belongs to."""

    def __init__(
        self, spec: StsSpec, *, account_id: str, keys: KeyStore, wall_clock: WallClock
    ) -> None:
        self._spec = spec
        self._account_id = account_id
        self._keys = keys
        self._wall_clock = wall_clock
        self._role_of: dict[str, str] = {}  # issued access key id -> role name
        self.issued: list[Issued] = []  # everything handed out (tests hunt its secrets)

    @property
    def handlers(self) -> dict[str, Handler]:
        """The STS actions, for the app's action table."""
        return {"AssumeRole": self._assume_role, "AssumeRoleWithOIDC": self._assume_with_oidc}

    def issue(self, role_name: str, duration: float | None = None) -> Issued:
        """Fresh credentials of `role_name`, valid for `duration` seconds but never
        longer than the fleet's `credential_ttl`."""
        ttl = min(duration or self._spec.credential_ttl, self._spec.credential_ttl)
        # Read before issuing: the expiry told is never later than the one enforced.
        expires_at = self._wall_clock() + timedelta(seconds=ttl)
        key = self._keys.issue_sts(ttl)
        self._role_of[key.access_key_id] = role_name
        issued = Issued(
            role_name,
            {
                "AccessKeyId": key.access_key_id,
                "AccessKeySecret": key.access_key_secret,
                "SecurityToken": key.security_token or "",
                # Seconds only, as STS writes it: truncated, so never later than the truth.
                "Expiration": expires_at.strftime(_EXPIRATION_FORMAT),
            },
        )
        self.issued.append(issued)
        return issued

    # --- AssumeRole --------------------------------------------------------------------

    async def _assume_role(self, call: Call) -> dict[str, Any]:
        role, session, duration = self._request(call.params)
        caller_role = self._role_of.get(call.access_key_id)
        trusted = (
            caller_role in role.trusted_roles
            if caller_role is not None
            else call.access_key_id in role.trusted_keys
        )
        if not trusted:
            raise SimApiError(
                "NoPermission",
                "You are not authorized to do this action. You should be authorized by RAM.",
                403,
            )
        return self._answer(self.issue(role.name, duration), session)

    # --- AssumeRoleWithOIDC ------------------------------------------------------------

    async def _assume_with_oidc(self, call: Call) -> dict[str, Any]:
        params = call.params
        for name in ("OIDCProviderArn", "OIDCToken"):
            if not params.get(name):
                raise SimApiError(f"Missing{name}", f"{name} is mandatory for this action.", 400)
        role, session, duration = self._request(params)
        arn = params["OIDCProviderArn"]
        provider = next(
            (
                self._spec.provider(name)
                for name in role.oidc_providers
                if oidc_provider_arn(self._account_id, name) == arn
            ),
            None,
        )
        if provider is None:
            # (unconfirmed) the code for a provider the role does not trust or that
            # does not exist; the real STS may tell the two apart.
            raise SimApiError(
                "EntityNotExist.OIDCProvider", f"The OIDC provider {arn} is not trusted.", 404
            )
        claims = self._verify(params["OIDCToken"], provider)
        body = self._answer(self.issue(role.name, duration), session)
        body["OIDCTokenInfo"] = {
            "Subject": str(claims.get("sub", "")),
            "Issuer": provider.issuer,
            "ClientIds": str(claims.get("aud", "")),
        }
        return body

    def _verify(self, token: str, provider: OidcProviderSpec) -> dict[str, Any]:
        # (unconfirmed) the codes: STS documents AuthenticationFail.OIDCToken.* without
        # listing every reason; the message never repeats the token.
        def refuse(reason: str, code: str = "AuthenticationFail.OIDCToken.Invalid") -> SimApiError:
            return SimApiError(code, f"The OIDC token is not valid: {reason}.", 400)

        parts = token.split(".")
        if len(parts) != 3:  # noqa: PLR2004 - header.claims.signature
            raise refuse("not a JWT")
        try:
            header = json.loads(_unb64url(parts[0]))
            claims = json.loads(_unb64url(parts[1]))
            signature = _unb64url(parts[2])
        except (ValueError, UnicodeDecodeError):
            raise refuse("not a JWT") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise refuse("not a JWT")
        if header.get("alg") != "HS256":
            raise refuse("unsupported algorithm")
        expected = hmac.new(
            provider.key.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256
        ).digest()
        if not hmac.compare_digest(expected, signature):
            raise refuse("bad signature")
        if claims.get("iss") != provider.issuer:
            raise refuse("issuer mismatch", "AuthenticationFail.OIDCToken.IssuerNotMatch")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if provider.audience is not None and provider.audience not in audiences:
            raise refuse("audience mismatch")
        expiry = claims.get("exp")
        if not isinstance(expiry, int | float) or expiry <= self._wall_clock().timestamp():
            raise refuse("expired", "AuthenticationFail.OIDCToken.Expired")
        return claims

    # --- shared -------------------------------------------------------------------------

    def _request(self, params: Any) -> tuple[RoleSpec, str, float | None]:
        arn = params.get("RoleArn") or ""
        if not arn:
            raise SimApiError("MissingRoleArn", "RoleArn is mandatory for this action.", 400)
        session = params.get("RoleSessionName") or ""
        if not _SESSION_NAME.match(session):
            raise SimApiError(
                "InvalidParameter.RoleSessionName",
                "The parameter RoleSessionName is wrongly formed.",
                400,
            )
        duration: float | None = None
        if params.get("DurationSeconds"):
            try:
                duration = int(params["DurationSeconds"])
            except ValueError:
                duration = -1
            if not _MIN_DURATION <= duration <= _MAX_DURATION:
                raise SimApiError(
                    "InvalidParameter.DurationSeconds",
                    f"The DurationSeconds must be in {_MIN_DURATION}..{_MAX_DURATION}.",
                    400,
                )
        prefix = role_arn(self._account_id, "")
        name = arn[len(prefix) :] if arn.lower().startswith(prefix.lower()) else ""
        role = self._spec.role(name) if name else None
        if role is None:
            raise SimApiError("EntityNotExist.Role", f"The role not exists: {arn}.", 404)
        return role, session, duration

    def _answer(self, issued: Issued, session: str) -> dict[str, Any]:
        arn = role_arn(self._account_id, issued.role)
        return {
            "AssumedRoleUser": {
                "Arn": f"{arn}/{session}",
                "AssumedRoleId": f"3{secrets.randbelow(10**17):017d}:{session}",
            },
            "Credentials": issued.answer,
        }
