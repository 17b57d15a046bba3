"""The credential chain: which source a run takes its credentials from.

In the order of the aliyun CLI and the official credentials library
(provider/default.py), with an explicit choice first:

1. explicit keys (the library's callers);
2. an explicit profile: `--profile` or `ALIBABA_CLOUD_PROFILE` (the profile file, in
   any supported mode), chosen over the environment's keys because it was named;
3. the environment's keys: `ALIBABA_CLOUD_ACCESS_KEY_ID`, `..._SECRET` and, for STS,
   `ALIBABA_CLOUD_SECURITY_TOKEN` (the region still comes from the profile file);
4. OIDC from the environment: `ALIBABA_CLOUD_ROLE_ARN`, `ALIBABA_CLOUD_OIDC_PROVIDER_ARN`,
   `ALIBABA_CLOUD_OIDC_TOKEN_FILE` (all three, as GitHub Actions, GitLab or ACK RRSA set
   them; `ALIBABA_CLOUD_ROLE_SESSION_NAME` optional);
5. the profile file's current profile (`~/.aliyun/config.json`);
6. the instance's RAM role, when `ALIBABA_CLOUD_ECS_METADATA` names it (the library
   also probes the metadata service unasked; we do not: off ECS that probe costs every
   run a timeout and turns "no credentials" into a network error);
7. a credentials URI: `ALIBABA_CLOUD_CREDENTIALS_URI`.

A source that is half given (an ID without a secret) is an error naming what is
missing, not a reason to fall through to the next one: the caller meant it. Empty
strings count as not given (an exported but empty variable).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from orchestrator.ecs._credentials import Credentials
from orchestrator.ecs._sources import (
    MetadataSource,
    OidcSource,
    Source,
    StaticSource,
    UriSource,
    profile_source,
    read_profiles,
)
from orchestrator.errors import CredentialsError

if TYPE_CHECKING:
    from collections.abc import Mapping

ENV_ACCESS_KEY_ID: Final = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ENV_ACCESS_KEY_SECRET: Final = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"  # noqa: S105 (a name)
ENV_SECURITY_TOKEN: Final = "ALIBABA_CLOUD_SECURITY_TOKEN"  # noqa: S105 (a name)
ENV_PROFILE: Final = "ALIBABA_CLOUD_PROFILE"
ENV_ROLE_ARN: Final = "ALIBABA_CLOUD_ROLE_ARN"
ENV_OIDC_PROVIDER_ARN: Final = "ALIBABA_CLOUD_OIDC_PROVIDER_ARN"
ENV_OIDC_TOKEN_FILE: Final = "ALIBABA_CLOUD_OIDC_TOKEN_FILE"  # noqa: S105 (a name)
ENV_ROLE_SESSION_NAME: Final = "ALIBABA_CLOUD_ROLE_SESSION_NAME"
ENV_ECS_METADATA: Final = "ALIBABA_CLOUD_ECS_METADATA"
ENV_ECS_METADATA_DISABLED: Final = "ALIBABA_CLOUD_ECS_METADATA_DISABLED"
ENV_CREDENTIALS_URI: Final = "ALIBABA_CLOUD_CREDENTIALS_URI"
_OIDC_VARIABLES: Final = (ENV_ROLE_ARN, ENV_OIDC_PROVIDER_ARN, ENV_OIDC_TOKEN_FILE)


@dataclass(frozen=True, slots=True)
class ResolvedCredentials:
    """What the chain found: the source, the profile's region if any, and where from.

    `region_id` comes only from a CLI profile's `region_id` (the profile the file would
    use, even when the keys came from the environment, as the aliyun CLI does); it is a
    default for the caller's region, never an override of one the caller gives.
    `source` says where the keys came from (`explicit`, `environment`, `profile NAME in
    PATH`, `OIDC environment`, ...), for logs.
    """

    spec: Source
    region_id: str | None
    source: str

    @property
    def credentials(self) -> Credentials:
        """The credentials of a static source (AK, StsToken, keys); a source that
        must be fetched (a role, metadata, a URI) has none until a provider asks."""
        if not isinstance(self.spec, StaticSource):
            raise CredentialsError(f"{self.source} gives temporary credentials: fetch them")
        return self.spec.credentials


def resolve_credentials(
    *,
    access_key_id: str | None = None,
    access_key_secret: str | None = None,
    security_token: str | None = None,
    environ: Mapping[str, str],
    profile_path: Path | None = None,
    profile: str | None = None,
) -> ResolvedCredentials:
    """The first source of the chain (module docstring) that is given."""
    if access_key_id or access_key_secret or security_token:
        creds = _pair(
            access_key_id,
            access_key_secret,
            security_token,
            names=("access_key_id", "access_key_secret"),
        )
        return ResolvedCredentials(StaticSource(creds), None, "explicit")
    path = profile_path if profile_path is not None else Path.home() / ".aliyun" / "config.json"
    wanted = profile or environ.get(ENV_PROFILE) or None
    if wanted:
        if not path.is_file():
            raise CredentialsError(f"aliyun CLI profile file {path} does not exist")
        return ResolvedCredentials(*profile_source(path, wanted))
    env_id = environ.get(ENV_ACCESS_KEY_ID)
    env_secret = environ.get(ENV_ACCESS_KEY_SECRET)
    env_token = environ.get(ENV_SECURITY_TOKEN)
    if env_id or env_secret or env_token:
        creds = _pair(
            env_id, env_secret, env_token, names=(ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET)
        )
        # The aliyun CLI takes the region from the profile even when the keys come from
        # the environment; a profile file it cannot read costs the region, not the keys.
        return ResolvedCredentials(StaticSource(creds), _profile_region(path), "environment")
    oidc = _oidc_from(environ)
    if oidc is not None:
        return ResolvedCredentials(oidc, _profile_region(path), "OIDC environment")
    if path.is_file():
        return ResolvedCredentials(*profile_source(path, None))
    role = environ.get(ENV_ECS_METADATA)
    if role and environ.get(ENV_ECS_METADATA_DISABLED, "").lower() != "true":
        return ResolvedCredentials(MetadataSource(role), None, ENV_ECS_METADATA)
    uri = environ.get(ENV_CREDENTIALS_URI)
    if uri:
        return ResolvedCredentials(UriSource(uri), None, ENV_CREDENTIALS_URI)
    raise CredentialsError(
        f"no credentials: set {ENV_ACCESS_KEY_ID} and {ENV_ACCESS_KEY_SECRET} (and "
        f"{ENV_SECURITY_TOKEN} for STS), or {', '.join(_OIDC_VARIABLES)} for a role "
        f"assumed with OIDC, or name an aliyun CLI profile with --profile ({path} not "
        f"found: `aliyun configure` writes it), or {ENV_ECS_METADATA} (an instance's RAM "
        f"role) or {ENV_CREDENTIALS_URI}; --sim runs on the simulator"
    )


def _oidc_from(environ: Mapping[str, str]) -> OidcSource | None:
    given = [name for name in _OIDC_VARIABLES if environ.get(name)]
    if not given:
        return None
    # ALIBABA_CLOUD_ROLE_ARN alone is not OIDC (the library reads it for RamRoleArn too).
    if given == [ENV_ROLE_ARN]:
        return None
    missing = [name for name in _OIDC_VARIABLES if name not in given]
    if missing:
        raise CredentialsError(
            f"OIDC credentials need {', '.join(_OIDC_VARIABLES)}: {', '.join(missing)} is not set"
        )
    return OidcSource(
        role_arn=environ[ENV_ROLE_ARN],
        provider_arn=environ[ENV_OIDC_PROVIDER_ARN],
        token_file=Path(environ[ENV_OIDC_TOKEN_FILE]).expanduser(),
        session_name=environ.get(ENV_ROLE_SESSION_NAME) or "orchestrator",
    )


def _profile_region(path: Path) -> str | None:
    """The region of the file's current profile, if it can be read and has one."""
    try:
        current, profiles = read_profiles(path)
    except CredentialsError:  # missing, unreadable, not JSON, not a config
        return None
    name = current or "default"
    entry = next((p for p in profiles if p.get("name") == name), None)
    value = entry.get("region_id") if entry is not None else None
    return value if isinstance(value, str) and value else None


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
