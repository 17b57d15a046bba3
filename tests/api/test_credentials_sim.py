"""Every credential provider against the simulator over loopback: AssumeRole from an
access key and from another role (ChainableRamRoleArn), AssumeRoleWithOIDC with a token
file, the instance metadata service, a credentials URI; the credentials each obtains
sign real ECS calls; a refused assume names the role and never a secret; a call refused
for an expired token is retried once with fresh credentials."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import aiohttp
import pytest

from orchestrator.ecs import (
    Credentials,
    EcsClient,
    RefreshingProvider,
    Temporary,
    build_provider,
)
from orchestrator.ecs._sources import (
    AssumeRoleSource,
    MetadataSource,
    OidcSource,
    Source,
    StaticSource,
    UriSource,
)
from orchestrator.errors import AuthError, CredentialsError
from orchestrator.sim import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    KeySpec,
    RunningSimulator,
    load_fleet,
    oidc_provider_arn,
    oidc_token,
    role_arn,
    serve,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.anyio

ACCOUNT = "1234567890123456"
OIDC_KEY = "oidc-signing-key-never-shown"
UNTRUSTED_ID, UNTRUSTED_SECRET = "LTAI-untrusted", "untrusted-secret-never-shown"
FLEET = f"""
region: cn-hangzhou
account_id: "{ACCOUNT}"
keys:
  - {{access_key_id: {DEFAULT_ACCESS_KEY_ID}, access_key_secret: {DEFAULT_ACCESS_KEY_SECRET}}}
  - {{access_key_id: {UNTRUSTED_ID}, access_key_secret: {UNTRUSTED_SECRET}}}
instances:
  - {{id: i-a1, name: a-1, zone: cn-hangzhou-h, tags: {{app: a}}}}
sts:
  credential_ttl: 900
  roles:
    - {{name: deployer, trusted_keys: [{DEFAULT_ACCESS_KEY_ID}], oidc_providers: [github]}}
    - {{name: ops, trusted_roles: [deployer]}}
  oidc_providers:
    - {{name: github, issuer: "https://token.actions.example", key: {OIDC_KEY},
        audience: sts.aliyuncs.com}}
  instance_role: deployer
  uri_role: ops
"""
DEPLOYER = role_arn(ACCOUNT, "deployer")
OPS = role_arn(ACCOUNT, "ops")
GITHUB = oidc_provider_arn(ACCOUNT, "github")
OWNER = StaticSource(Credentials.of(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET))


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with serve(load_fleet(FLEET)) as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


def _token_file(tmp_path: Path, sim: RunningSimulator, *, key: str = OIDC_KEY) -> Path:
    provider = sim.simulation.fleet.sts.provider("github")
    assert provider is not None
    if key != OIDC_KEY:
        from dataclasses import replace  # noqa: PLC0415 - only this test forges

        provider = replace(provider, key=key)
    path = tmp_path / "oidc-token"
    path.write_text(oidc_token(provider, subject="repo:acme/app", now=datetime.now(UTC)))
    return path


async def _works(sim: RunningSimulator, session: aiohttp.ClientSession, source: Source) -> str:
    """Obtain credentials from `source`, sign an ECS call with them; the key id used."""
    seen: list[str] = []
    provider = build_provider(source, session, environ=_environ(sim), on_secret=seen.append)
    creds = await provider.credentials()
    assert creds.access_key_id.startswith("STS.")
    assert creds.security_token is not None
    # Every secret part was told to the redactor's callback before use.
    assert creds.access_key_secret.reveal() in seen
    assert creds.security_token.reveal() in seen
    client = EcsClient(sim.url, session, provider, region_id=sim.region)
    instances = [i.instance_id async for i in client.describe_instances()]
    assert instances == ["i-a1"]
    return creds.access_key_id


def _environ(sim: RunningSimulator) -> dict[str, str]:
    return {
        "ALIBABA_CLOUD_STS_ENDPOINT": sim.url,
        "ORCHESTRATOR_ECS_METADATA_ENDPOINT": sim.url,
    }


async def test_assume_role_from_an_access_key(sim: RunningSimulator, session):
    await _works(sim, session, AssumeRoleSource(OWNER, DEPLOYER))
    assert sim.stats.count("AssumeRole", "ok") == 1


async def test_assume_role_from_another_role(sim: RunningSimulator, session):
    """ChainableRamRoleArn: ops trusts deployer's sessions, not the key itself."""
    await _works(sim, session, AssumeRoleSource(AssumeRoleSource(OWNER, DEPLOYER), OPS))
    assert sim.stats.count("AssumeRole", "ok") == 2
    with pytest.raises(CredentialsError, match="NoPermission"):
        await build_provider(
            AssumeRoleSource(OWNER, OPS), session, environ=_environ(sim)
        ).credentials()


async def test_assume_role_with_oidc(sim: RunningSimulator, session, tmp_path: Path):
    told: list[str] = []
    token_file = _token_file(tmp_path, sim)
    source = OidcSource(DEPLOYER, GITHUB, token_file)
    provider = build_provider(source, session, environ=_environ(sim), on_secret=told.append)
    await provider.credentials()
    assert token_file.read_text() in told  # the OIDC token is a secret too
    await _works(sim, session, source)
    assert sim.stats.count("AssumeRoleWithOIDC", "ok") == 2


async def test_metadata_service(sim: RunningSimulator, session):
    await _works(sim, session, MetadataSource(None))
    await _works(sim, session, MetadataSource("deployer"))
    assert sim.stats.count("MetadataCredentials", "ok") == 2
    with pytest.raises(CredentialsError, match="RAM role nobody"):
        await build_provider(MetadataSource("nobody"), session, environ=_environ(sim)).credentials()


async def test_credentials_uri(sim: RunningSimulator, session):
    await _works(sim, session, UriSource(f"{sim.url}/_sim/credentials-uri?token=uri-secret"))
    assert sim.stats.count("CredentialsURI", "ok") == 1


async def test_a_key_the_role_does_not_trust_is_refused_by_name(sim: RunningSimulator, session):
    untrusted = StaticSource(Credentials.of(UNTRUSTED_ID, UNTRUSTED_SECRET))
    provider = build_provider(AssumeRoleSource(untrusted, DEPLOYER), session, environ=_environ(sim))
    with pytest.raises(CredentialsError) as excinfo:
        await provider.credentials()
    text = str(excinfo.value)
    assert DEPLOYER in text
    assert "NoPermission" in text
    assert UNTRUSTED_SECRET not in text
    assert excinfo.value.__cause__ is None


async def test_an_unknown_role_is_refused_by_name(sim: RunningSimulator, session):
    arn = role_arn(ACCOUNT, "nobody")
    provider = build_provider(AssumeRoleSource(OWNER, arn), session, environ=_environ(sim))
    with pytest.raises(CredentialsError, match=r"EntityNotExist\.Role") as excinfo:
        await provider.credentials()
    assert arn in str(excinfo.value)


async def test_a_forged_oidc_token_is_refused_without_showing_it(
    sim: RunningSimulator, session, tmp_path: Path
):
    token_file = _token_file(tmp_path, sim, key="not-the-providers-key")
    source = OidcSource(DEPLOYER, GITHUB, token_file)
    with pytest.raises(CredentialsError) as excinfo:
        await build_provider(source, session, environ=_environ(sim)).credentials()
    text = str(excinfo.value)
    assert DEPLOYER in text
    assert "AuthenticationFail.OIDCToken" in text
    assert token_file.read_text() not in text


async def test_a_missing_oidc_token_file_is_named(sim: RunningSimulator, session, tmp_path):
    source = OidcSource(DEPLOYER, GITHUB, tmp_path / "absent")
    with pytest.raises(CredentialsError, match="absent"):
        await build_provider(source, session, environ=_environ(sim)).credentials()


async def test_a_call_refused_for_an_expired_token_is_retried_once_with_fresh_credentials(
    sim: RunningSimulator, session
):
    """The provider believes its credentials good (its clock says so); the endpoint has
    expired them. The call is refused with InvalidSecurityToken.Expired, the client asks
    for fresh ones and sends once more: the call succeeds."""
    expired = KeySpec("STS.expired-one", "expired-secret", "expired-token")
    sim.keys.add(expired, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    handed: list[str] = []

    async def fetch() -> Temporary:
        # First the credentials the endpoint has already expired, then fresh ones.
        if not handed:
            creds = Credentials.of("STS.expired-one", "expired-secret", "expired-token")
        else:
            answer = sim.sts.issue("deployer").answer
            creds = Credentials.of(
                answer["AccessKeyId"], answer["AccessKeySecret"], answer["SecurityToken"]
            )
        handed.append(creds.access_key_id)
        return Temporary(creds, datetime.now(UTC) + timedelta(hours=1))

    provider = RefreshingProvider(fetch, description="test role")
    client = EcsClient(sim.url, session, provider, region_id=sim.region)
    instances = [i.instance_id async for i in client.describe_instances()]
    assert instances == ["i-a1"]
    assert sim.stats.count("DescribeInstances", "InvalidSecurityToken.Expired") == 1
    assert sim.stats.count("DescribeInstances", "ok") == 1
    assert len(handed) == 2


async def test_static_keys_refused_as_expired_are_not_resent(sim: RunningSimulator, session):
    """Nothing can renew fixed keys: the refusal goes to the caller after one call."""
    expired = KeySpec("STS.fixed", "fixed-secret", "fixed-token")
    sim.keys.add(expired, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    creds = Credentials.of("STS.fixed", "fixed-secret", "fixed-token")
    client = EcsClient(sim.url, session, creds, region_id=sim.region)
    with pytest.raises(AuthError, match=r"InvalidSecurityToken\.Expired"):
        [i async for i in client.describe_instances()]
    assert sim.stats.count("DescribeInstances", "InvalidSecurityToken.Expired") == 1


async def test_credentials_that_cannot_be_renewed_refuse_the_call_unsent(
    sim: RunningSimulator, session
):
    """A provider that fails (the role was deleted) makes the call an AuthError of its
    own code, with nothing sent: a refusal, never a maybe-lost RunCommand."""

    async def fetch() -> Temporary:
        raise CredentialsError(f"AssumeRole of {DEPLOYER} refused: NoPermission")

    client = EcsClient(
        sim.url, session, RefreshingProvider(fetch, description="gone"), region_id=sim.region
    )
    with pytest.raises(AuthError) as excinfo:
        [i async for i in client.describe_instances()]
    assert excinfo.value.code == "Credentials.Unavailable"
    assert DEPLOYER in str(excinfo.value)
    assert sim.stats.count("DescribeInstances") == 0
