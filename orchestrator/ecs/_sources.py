"""Where credentials come from, as data: the sources the chain can name (`Source`), and
the aliyun CLI profile file read into one.

A source says how to obtain credentials, not the credentials themselves (except the
static ones): a role to assume (`AssumeRoleSource`, from an access key or from another
source: RamRoleArn and ChainableRamRoleArn), an OIDC token file to exchange
(`OidcSource`), the instance metadata service (`MetadataSource`) or a credentials URI
(`UriSource`). `_providers.build_provider` turns one into something that fetches and
refreshes. The profile modes and field names are the aliyun CLI's and the official
credentials library's (its provider/cli_profile.py); a mode they have and we do not
(CloudSSO, OAuth, External, ...) is refused by name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from orchestrator.ecs._credentials import Credentials
from orchestrator.errors import CredentialsError

if TYPE_CHECKING:
    from collections.abc import Mapping

SUPPORTED_MODES: Final = (
    "AK", "StsToken", "RamRoleArn", "ChainableRamRoleArn", "EcsRamRole", "OIDC",
)  # fmt: skip
# The official library's defaults: an hour's session; the session name is ours.
DEFAULT_DURATION_SECONDS: Final = 3600
DEFAULT_SESSION_NAME: Final = "orchestrator"
_MIN_DURATION: Final = 900  # what STS accepts at the least


@dataclass(frozen=True, slots=True)
class StaticSource:
    """Credentials given as they are (AK, StsToken, the environment's keys)."""

    credentials: Credentials


@dataclass(frozen=True, slots=True)
class AssumeRoleSource:
    """AssumeRole `role_arn`, signing with what `base` gives (RamRoleArn: an access key;
    ChainableRamRoleArn: another profile's credentials)."""

    base: Source
    role_arn: str
    session_name: str = DEFAULT_SESSION_NAME
    duration_seconds: int = DEFAULT_DURATION_SECONDS
    external_id: str | None = None
    policy: str | None = None
    sts_region: str | None = None


@dataclass(frozen=True, slots=True)
class OidcSource:
    """AssumeRoleWithOIDC `role_arn` with the token in `token_file` (read at every
    refresh: the CI or the cluster rotates it)."""

    role_arn: str
    provider_arn: str
    token_file: Path
    session_name: str = DEFAULT_SESSION_NAME
    duration_seconds: int = DEFAULT_DURATION_SECONDS
    policy: str | None = None
    sts_region: str | None = None


@dataclass(frozen=True, slots=True)
class MetadataSource:
    """The RAM role of the ECS instance we run on (None: the one the service names)."""

    role_name: str | None = None


@dataclass(frozen=True, slots=True)
class UriSource:
    """A credentials URI (its query may hold a token: never shown)."""

    url: str = field(repr=False)


Source = StaticSource | AssumeRoleSource | OidcSource | MetadataSource | UriSource


def describe(source: Source) -> str:
    """What a source is, for logs and errors: never a secret, never a URI's query."""
    match source:
        case StaticSource(credentials=creds):
            return f"access key {creds.access_key_id}"
        case AssumeRoleSource(role_arn=arn, base=base):
            return f"role {arn} (assumed with {describe(base)})"
        case OidcSource(role_arn=arn, token_file=path):
            return f"role {arn} (OIDC token {path})"
        case MetadataSource(role_name=name):
            return f"instance RAM role {name or '(named by the metadata service)'}"
        case UriSource(url=url):
            return f"credentials URI {url.split('?', 1)[0]}"


def read_profiles(path: Path) -> tuple[str, list[dict[str, Any]]]:
    """(`current`, the `profiles` list) of an aliyun CLI config file; errors never
    quote the file (it holds secrets)."""
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
    current = document.get("current")
    entries = [p for p in profiles if isinstance(p, dict)]
    return (current if isinstance(current, str) else ""), entries


def profile_source(path: Path, wanted: str | None) -> tuple[Source, str | None, str]:
    """(source, region, where) of profile `wanted` (else `current`, else `default`)."""
    current, profiles = read_profiles(path)
    name = wanted or current or "default"
    entry = _entry(profiles, name, path)
    source = _source_of(profiles, entry, path, seen=())
    return source, _text(entry, "region_id") or None, f"profile {name!r} in {path}"


def _entry(profiles: list[dict[str, Any]], name: str, path: Path) -> dict[str, Any]:
    entry = next((p for p in profiles if p.get("name") == name), None)
    if entry is None:
        known = ", ".join(str(p.get("name")) for p in profiles)
        raise CredentialsError(f"profile {name!r} not found in {path} (profiles: {known or '-'})")
    return entry


def _source_of(
    profiles: list[dict[str, Any]], entry: Mapping[str, Any], path: Path, *, seen: tuple[str, ...]
) -> Source:
    name = str(entry.get("name"))
    where = f"profile {name!r} in {path}"
    # The aliyun CLI treats a profile without a mode as AK (unconfirmed for very old files).
    mode = entry.get("mode") or "AK"
    if mode not in SUPPORTED_MODES:
        raise CredentialsError(
            f"{where} uses mode {mode!r}, which orchestrator does not support; "
            f"use one of {', '.join(SUPPORTED_MODES)}, or set ALIBABA_CLOUD_ACCESS_KEY_ID "
            "and ALIBABA_CLOUD_ACCESS_KEY_SECRET"
        )

    def need(key: str) -> str:
        value = _text(entry, key)
        if not value:
            raise CredentialsError(f"{where} uses mode {mode} but has no {key}")
        return value

    if mode in {"AK", "StsToken", "RamRoleArn"}:
        key_id, secret = need("access_key_id"), need("access_key_secret")
        token = need("sts_token") if mode == "StsToken" else None
        static = StaticSource(Credentials.of(key_id, secret, token))
        if mode != "RamRoleArn":
            return static
        return _assume(entry, static, need("ram_role_arn"), where)
    if mode == "ChainableRamRoleArn":
        parent = need("source_profile")
        if parent in (*seen, name):
            raise CredentialsError(f"{where}: source_profile {parent!r} makes a cycle")
        base = _source_of(profiles, _entry(profiles, parent, path), path, seen=(*seen, name))
        return _assume(entry, base, need("ram_role_arn"), where)
    if mode == "EcsRamRole":
        return MetadataSource(_text(entry, "ram_role_name") or None)
    return OidcSource(
        role_arn=need("ram_role_arn"),
        provider_arn=need("oidc_provider_arn"),
        token_file=Path(need("oidc_token_file")).expanduser(),
        session_name=_text(entry, "role_session_name") or DEFAULT_SESSION_NAME,
        duration_seconds=_duration(entry, where),
        policy=_text(entry, "policy") or None,
        sts_region=_text(entry, "sts_region") or None,
    )


def _assume(entry: Mapping[str, Any], base: Source, arn: str, where: str) -> AssumeRoleSource:
    return AssumeRoleSource(
        base=base,
        role_arn=arn,
        session_name=_text(entry, "ram_session_name") or DEFAULT_SESSION_NAME,
        duration_seconds=_duration(entry, where),
        external_id=_text(entry, "external_id") or None,
        policy=_text(entry, "policy") or None,
        sts_region=_text(entry, "sts_region") or None,
    )


def _duration(entry: Mapping[str, Any], where: str) -> int:
    value = entry.get("expired_seconds")
    if value in (None, "", 0):
        return DEFAULT_DURATION_SECONDS
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        seconds = -1
    if seconds < _MIN_DURATION:
        raise CredentialsError(f"{where}: expired_seconds must be a number >= {_MIN_DURATION}")
    return seconds


def _text(entry: Mapping[str, Any], key: str) -> str:
    value = entry.get(key)
    return value if isinstance(value, str) else ""
