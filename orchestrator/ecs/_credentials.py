"""Find the access key to sign with, and keep its secret out of every text.

`resolve_credentials` walks a provider chain (design.md, "Credentials"): explicit keys,
then the `ALIBABA_CLOUD_*` environment variables, then the aliyun CLI profile file
(`~/.aliyun/config.json`). Only long-lived keys (`AK`) and STS tokens (`StsToken`) are
supported; every other profile mode is refused by name rather than half-supported.
Secrets are wrapped in `Secret`, whose repr and str are `***`: a `Credentials` can be
logged, printed or put in an exception without leaking anything.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from orchestrator.errors import CredentialsError

if TYPE_CHECKING:
    from collections.abc import Mapping

ENV_ACCESS_KEY_ID: Final = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ENV_ACCESS_KEY_SECRET: Final = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"  # noqa: S105 (a name)
ENV_SECURITY_TOKEN: Final = "ALIBABA_CLOUD_SECURITY_TOKEN"  # noqa: S105 (a name)
ENV_PROFILE: Final = "ALIBABA_CLOUD_PROFILE"
SUPPORTED_MODES: Final = ("AK", "StsToken")


class Secret:
    """A string that does not show itself: repr and str are `***`; `reveal()` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself; call it only where the value is consumed (the signer)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickling would write the secret into whatever holds the pickle.
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True, slots=True)
class Credentials:
    """An access key (and STS token) to sign requests with; its repr shows only the ID."""

    access_key_id: str
    access_key_secret: Secret
    security_token: Secret | None = None

    def __post_init__(self) -> None:
        if not self.access_key_id:
            raise CredentialsError("access key ID is empty")
        if not self.access_key_secret.reveal():
            raise CredentialsError(f"access key secret of {self.access_key_id} is empty")

    @classmethod
    def of(
        cls, access_key_id: str, access_key_secret: str, security_token: str | None = None
    ) -> Credentials:
        """Credentials from plain strings (tests, or keys read by the caller)."""
        return cls(
            access_key_id,
            Secret(access_key_secret),
            Secret(security_token) if security_token else None,
        )


@dataclass(frozen=True, slots=True)
class ResolvedCredentials:
    """What the chain found: the credentials, the profile's region if any, and the source.

    `region_id` comes only from a CLI profile's `region_id` (the profile the file would
    use, even when the keys came from the environment, as the aliyun CLI does); it is a
    default for the caller's region, never an override of one the caller gives. `source` says where
    the keys came from (`explicit`, `environment`, `profile NAME in PATH`), for logs.
    """

    credentials: Credentials
    region_id: str | None
    source: str


def resolve_credentials(
    *,
    access_key_id: str | None = None,
    access_key_secret: str | None = None,
    security_token: str | None = None,
    environ: Mapping[str, str],
    profile_path: Path | None = None,
    profile: str | None = None,
) -> ResolvedCredentials:
    """Explicit keys, else the environment, else the aliyun CLI profile file.

    A source that is half given (an ID without a secret) is an error naming what is
    missing, not a reason to fall through to the next source: the caller meant it.
    Empty strings count as not given (an exported but empty variable).
    """
    if access_key_id or access_key_secret or security_token:
        creds = _pair(
            access_key_id,
            access_key_secret,
            security_token,
            names=("access_key_id", "access_key_secret"),
        )
        return ResolvedCredentials(creds, None, "explicit")
    env_id = environ.get(ENV_ACCESS_KEY_ID)
    env_secret = environ.get(ENV_ACCESS_KEY_SECRET)
    env_token = environ.get(ENV_SECURITY_TOKEN)
    explicit_path = profile_path is not None
    path = profile_path if profile_path is not None else Path.home() / ".aliyun" / "config.json"
    wanted = profile or environ.get(ENV_PROFILE) or None
    if env_id or env_secret or env_token:
        creds = _pair(
            env_id,
            env_secret,
            env_token,
            names=(ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET),
        )
        # The aliyun CLI takes the region from the profile even when the keys come from
        # the environment; a profile file it cannot read costs the region, not the keys.
        return ResolvedCredentials(creds, _profile_region(path, wanted), "environment")
    if not path.is_file():
        if explicit_path or wanted:
            raise CredentialsError(f"aliyun CLI profile file {path} does not exist")
        raise CredentialsError(
            f"no credentials: set {ENV_ACCESS_KEY_ID} and {ENV_ACCESS_KEY_SECRET} (and "
            f"{ENV_SECURITY_TOKEN} for STS), or name an aliyun CLI profile with --profile "
            f"({path} not found: `aliyun configure` writes it); --sim runs on the simulator"
        )
    return _from_profile_file(path, wanted)


def _profile_region(path: Path, wanted: str | None) -> str | None:
    """The region of the profile the file would use, if it can be read and has one."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing, unreadable, not JSON, not UTF-8
        return None
    if not isinstance(document, dict) or not isinstance(document.get("profiles"), list):
        return None
    name = wanted or document.get("current") or "default"
    entry = next(
        (p for p in document["profiles"] if isinstance(p, dict) and p.get("name") == name), None
    )
    return (_text(entry, "region_id") or None) if entry is not None else None


def _pair(
    key_id: str | None,
    secret: str | None,
    token: str | None,
    *,
    names: tuple[str, str],
) -> Credentials:
    id_name, secret_name = names  # what the caller calls them, for the error text
    if not key_id:
        raise CredentialsError(f"{id_name} is missing (the other credential values are set)")
    if not secret:
        raise CredentialsError(f"{secret_name} is missing for access key ID {key_id}")
    return Credentials.of(key_id, secret, token or None)


def _from_profile_file(path: Path, wanted: str | None) -> ResolvedCredentials:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CredentialsError(f"cannot read {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        # `from None`: a JSONDecodeError keeps the whole document, secrets included.
        raise CredentialsError(f"{path} is not valid JSON") from None
    if not isinstance(document, dict):
        raise CredentialsError(f"{path} is not an aliyun CLI config (no top-level object)")
    profiles = document.get("profiles")
    if not isinstance(profiles, list):
        raise CredentialsError(f"{path} has no `profiles` list")
    name = wanted or document.get("current") or "default"
    entry = next((p for p in profiles if isinstance(p, dict) and p.get("name") == name), None)
    if entry is None:
        known = ", ".join(str(p.get("name")) for p in profiles if isinstance(p, dict))
        raise CredentialsError(f"profile {name!r} not found in {path} (profiles: {known or '-'})")
    # The aliyun CLI treats a profile without a mode as AK (unconfirmed for very old files).
    mode = entry.get("mode") or "AK"
    where = f"profile {name!r} in {path}"
    if mode not in SUPPORTED_MODES:
        raise CredentialsError(
            f"{where} uses mode {mode!r}, which orchestrator does not support; "
            f"use a profile with mode AK or StsToken, or set {ENV_ACCESS_KEY_ID} and "
            f"{ENV_ACCESS_KEY_SECRET}"
        )
    key_id = _text(entry, "access_key_id")
    secret = _text(entry, "access_key_secret")
    token = _text(entry, "sts_token")
    if not key_id:
        raise CredentialsError(f"{where} has no access_key_id")
    if not secret:
        raise CredentialsError(f"{where} has no access_key_secret")
    if mode == "StsToken" and not token:
        raise CredentialsError(f"{where} uses mode StsToken but has no sts_token")
    creds = Credentials.of(key_id, secret, token if mode == "StsToken" else None)
    return ResolvedCredentials(creds, _text(entry, "region_id") or None, where)


def _text(entry: Mapping[str, Any], key: str) -> str:
    value = entry.get(key)
    return value if isinstance(value, str) else ""
