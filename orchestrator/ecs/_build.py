"""From a `Source` (what the chain found) to the `CredentialsProvider` the client signs
with: static keys stay static; every other source becomes a `RefreshingProvider` whose
fetch is an STS call, a metadata read or a URI read, at the endpoints `environ` names.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from orchestrator.ecs._metadata import from_metadata, from_uri, metadata_endpoint
from orchestrator.ecs._providers import CredentialsProvider, RefreshingProvider, StaticProvider
from orchestrator.ecs._sources import (
    AssumeRoleSource,
    MetadataSource,
    OidcSource,
    Source,
    StaticSource,
    UriSource,
    describe,
)
from orchestrator.ecs._sts import assume_role, assume_role_with_oidc, sts_endpoint

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from orchestrator.ecs._credentials import Credentials
    from orchestrator.ecs._http import Session


def build_provider(
    source: Source,
    session: Session,
    *,
    environ: Mapping[str, str],
    on_secret: Callable[[str], None] | None = None,
) -> CredentialsProvider:
    """The provider of `source`. `on_secret` is told every secret value as it arrives
    (each refreshed key secret and token, the OIDC token, the metadata token), before
    anything could print it: the CLI registers them with its log redactor."""
    tell = on_secret or (lambda _value: None)

    def on_new(credentials: Credentials) -> None:
        tell(credentials.access_key_secret.reveal())
        if credentials.security_token is not None:
            tell(credentials.security_token.reveal())

    match source:
        case StaticSource(credentials=creds):
            on_new(creds)
            return StaticProvider(creds)
        case AssumeRoleSource():
            base = build_provider(source.base, session, environ=environ, on_secret=on_secret)
            fetch = partial(
                assume_role,
                session,
                endpoint=sts_endpoint(environ, source.sts_region),
                base=base,
                role_arn=source.role_arn,
                session_name=source.session_name,
                duration_seconds=source.duration_seconds,
                external_id=source.external_id,
                policy=source.policy,
            )
        case OidcSource():
            fetch = partial(
                assume_role_with_oidc,
                session,
                endpoint=sts_endpoint(environ, source.sts_region),
                role_arn=source.role_arn,
                provider_arn=source.provider_arn,
                token_file=source.token_file,
                session_name=source.session_name,
                duration_seconds=source.duration_seconds,
                policy=source.policy,
                on_token=tell,
            )
        case MetadataSource(role_name=name):
            fetch = partial(
                from_metadata,
                session,
                endpoint=metadata_endpoint(environ),
                role_name=name,
                on_secret=tell,
            )
        case UriSource(url=url):
            fetch = partial(from_uri, session, url=url)
    return RefreshingProvider(fetch, description=describe(source), on_new=on_new)
