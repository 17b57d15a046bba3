"""The credential chain: each source, their order, each refusal, and no secret in any text."""

from __future__ import annotations

import json
import pickle
from typing import TYPE_CHECKING

import pytest

from orchestrator.ecs import Credentials, Secret, resolve_credentials
from orchestrator.ecs._metadata import metadata_endpoint
from orchestrator.ecs._sources import (
    AssumeRoleSource,
    MetadataSource,
    OidcSource,
    StaticSource,
    UriSource,
    describe,
)
from orchestrator.ecs._sts import sts_endpoint
from orchestrator.errors import CredentialsError

if TYPE_CHECKING:
    from pathlib import Path

SECRET = "s3cr3t-value"
TOKEN = "sts-t0ken-value"


def _config(tmp_path: Path, profiles: list[dict[str, str]], current: str = "default") -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"current": current, "profiles": profiles}))
    return path


def _ak(name: str, key_id: str = "LTAI-file", **extra: str) -> dict[str, str]:
    return {
        "name": name,
        "mode": "AK",
        "access_key_id": key_id,
        "access_key_secret": SECRET,
    } | extra


def _ram(name: str, **extra: str) -> dict[str, str]:
    return _ak(name, mode="RamRoleArn", ram_role_arn=f"acs:ram::1:role/{name}") | extra


def _refused(excinfo: pytest.ExceptionInfo[CredentialsError]) -> str:
    text = str(excinfo.value)
    assert SECRET not in text
    assert TOKEN not in text
    assert SECRET not in repr(excinfo.value)
    return text


def test_explicit_keys_win_over_everything(tmp_path: Path) -> None:
    """Explicit keys beat the environment and the profile file."""
    environ = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "env", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "x"}
    resolved = resolve_credentials(
        access_key_id="explicit",
        access_key_secret=SECRET,
        environ=environ,
        profile_path=_config(tmp_path, [_ak("default")]),
    )
    assert resolved.credentials.access_key_id == "explicit"
    assert resolved.credentials.access_key_secret.reveal() == SECRET
    assert resolved.credentials.security_token is None
    assert resolved.source == "explicit"
    assert resolved.region_id is None


def test_explicit_token_is_kept() -> None:
    """An explicit STS token is carried as a Secret."""
    resolved = resolve_credentials(
        access_key_id="STS.x", access_key_secret=SECRET, security_token=TOKEN, environ={}
    )
    assert resolved.credentials.security_token is not None
    assert resolved.credentials.security_token.reveal() == TOKEN


def test_environment_beats_the_profile(tmp_path: Path) -> None:
    """The ALIBABA_CLOUD_* variables are used before the profile file."""
    environ = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "env-id",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
        "ALIBABA_CLOUD_SECURITY_TOKEN": TOKEN,
    }
    resolved = resolve_credentials(
        environ=environ, profile_path=_config(tmp_path, [_ak("default")])
    )
    assert resolved.credentials.access_key_id == "env-id"
    assert resolved.credentials.security_token == Secret(TOKEN)
    assert resolved.source == "environment"


@pytest.mark.parametrize(
    ("kwargs", "missing"),
    [
        ({"access_key_id": "id"}, "access_key_secret"),
        ({"access_key_secret": SECRET}, "access_key_id"),
        ({"security_token": TOKEN}, "access_key_id"),
    ],
)
def test_half_given_explicit_keys_name_what_is_missing(
    kwargs: dict[str, str], missing: str
) -> None:
    """An ID without a secret (or the reverse) is an error naming the missing value."""
    with pytest.raises(CredentialsError) as excinfo:
        resolve_credentials(
            access_key_id=kwargs.get("access_key_id"),
            access_key_secret=kwargs.get("access_key_secret"),
            security_token=kwargs.get("security_token"),
            environ={},
        )
    assert missing in _refused(excinfo)


@pytest.mark.parametrize(
    ("environ", "missing"),
    [
        ({"ALIBABA_CLOUD_ACCESS_KEY_ID": "id"}, "ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
        ({"ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET}, "ALIBABA_CLOUD_ACCESS_KEY_ID"),
        (
            {"ALIBABA_CLOUD_ACCESS_KEY_ID": "", "ALIBABA_CLOUD_SECURITY_TOKEN": TOKEN},
            "ALIBABA_CLOUD_ACCESS_KEY_ID",
        ),
    ],
)
def test_half_given_environment_names_the_missing_variable(
    tmp_path: Path, environ: dict[str, str], missing: str
) -> None:
    """A half-set environment does not fall through to the profile; it names the variable."""
    with pytest.raises(CredentialsError) as excinfo:
        resolve_credentials(environ=environ, profile_path=_config(tmp_path, [_ak("default")]))
    assert missing in _refused(excinfo)


def test_profile_current_is_used_with_its_region(tmp_path: Path) -> None:
    """Without a name, the file's `current` profile is used and its region returned."""
    path = _config(
        tmp_path,
        [_ak("default", "LTAI-default"), _ak("prod", "LTAI-prod", region_id="cn-shanghai")],
        current="prod",
    )
    resolved = resolve_credentials(environ={}, profile_path=path)
    assert resolved.credentials.access_key_id == "LTAI-prod"
    assert resolved.region_id == "cn-shanghai"
    assert "prod" in resolved.source


def test_profile_argument_beats_env_which_beats_current(tmp_path: Path) -> None:
    """Profile chosen by argument, then ALIBABA_CLOUD_PROFILE, then `current`."""
    path = _config(
        tmp_path, [_ak("a", "LTAI-a"), _ak("b", "LTAI-b"), _ak("c", "LTAI-c")], current="c"
    )
    env = {"ALIBABA_CLOUD_PROFILE": "b"}
    by_arg = resolve_credentials(environ=env, profile_path=path, profile="a")
    assert by_arg.credentials.access_key_id == "LTAI-a"
    assert resolve_credentials(environ=env, profile_path=path).credentials.access_key_id == (
        "LTAI-b"
    )
    assert resolve_credentials(environ={}, profile_path=path).credentials.access_key_id == (
        "LTAI-c"
    )


def test_sts_token_profile(tmp_path: Path) -> None:
    """Mode StsToken gives the profile's sts_token as the security token."""
    profile = _ak("default", mode="StsToken", sts_token=TOKEN)
    resolved = resolve_credentials(environ={}, profile_path=_config(tmp_path, [profile]))
    assert resolved.credentials.security_token == Secret(TOKEN)


def test_sts_token_profile_without_token_is_refused(tmp_path: Path) -> None:
    """StsToken without sts_token is an error, not a silent AK."""
    profile = _ak("default", mode="StsToken")
    with pytest.raises(CredentialsError) as excinfo:
        resolve_credentials(environ={}, profile_path=_config(tmp_path, [profile]))
    assert "sts_token" in _refused(excinfo)


@pytest.mark.parametrize(
    "mode",
    ["RsaKeyPair", "External", "CredentialsURI", "CloudSSO", "OAuth", "SomethingNew"],
)
def test_unsupported_modes_are_refused_by_name(tmp_path: Path, mode: str) -> None:
    """A mode we do not support is refused, and the message names it."""
    profile = _ak("default", mode=mode)
    with pytest.raises(CredentialsError) as excinfo:
        resolve_credentials(environ={}, profile_path=_config(tmp_path, [profile]))
    text = _refused(excinfo)
    assert repr(mode) in text
    assert "default" in text


def test_unknown_profile_lists_the_known_ones(tmp_path: Path) -> None:
    """Asking for a profile that is not there names it and the ones that are."""
    path = _config(tmp_path, [_ak("default"), _ak("prod")])
    with pytest.raises(CredentialsError) as excinfo:
        resolve_credentials(environ={}, profile_path=path, profile="staging")
    text = _refused(excinfo)
    assert "'staging'" in text
    assert "prod" in text


def test_missing_file_and_no_other_source(tmp_path: Path) -> None:
    """No source at all is an error that says where it looked."""
    with pytest.raises(CredentialsError) as excinfo:
        resolve_credentials(environ={}, profile_path=tmp_path / "nope.json")
    assert "nope.json" in str(excinfo.value)


def test_invalid_json_does_not_leak_the_file(tmp_path: Path) -> None:
    """A broken config file is reported without its content (which holds secrets)."""
    path = tmp_path / "config.json"
    path.write_text('{"profiles": [{"access_key_secret": "' + SECRET + '" oops')
    with pytest.raises(CredentialsError) as excinfo:
        resolve_credentials(environ={}, profile_path=path)
    assert "not valid JSON" in _refused(excinfo)
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__suppress_context__


def test_secret_never_shows() -> None:
    """repr, str and f-strings of Secret and Credentials hide the secret and the token."""
    creds = Credentials.of("LTAI-id", SECRET, TOKEN)
    for text in (
        repr(creds),
        str(creds),
        f"{creds}",
        repr(creds.access_key_secret),
        f"{creds.security_token}",
    ):
        assert SECRET not in text
        assert TOKEN not in text
    assert "LTAI-id" in repr(creds)
    assert str(Secret(SECRET)) == "***"


def test_secret_cannot_be_pickled() -> None:
    """Pickling would copy the secret somewhere; it is refused."""
    with pytest.raises(TypeError):
        pickle.dumps(Secret(SECRET))


def test_empty_secret_is_refused_without_echo() -> None:
    """Credentials with an empty secret are an error naming the key ID only."""
    with pytest.raises(CredentialsError) as excinfo:
        Credentials.of("LTAI-id", "")
    assert "LTAI-id" in str(excinfo.value)


def test_default_profile_path_is_under_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without profile_path the chain reads ~/.aliyun/config.json."""
    (tmp_path / ".aliyun").mkdir()
    (tmp_path / ".aliyun" / "config.json").write_text(
        json.dumps({"current": "default", "profiles": [_ak("default", "LTAI-home")]})
    )
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_credentials(environ={}).credentials.access_key_id == "LTAI-home"


def test_keys_from_the_environment_take_the_profiles_region(tmp_path: Path) -> None:
    """As the aliyun CLI does: keys from the environment, the region from the profile
    (the one named, else the file's current one) when the file has one."""
    path = _config(
        tmp_path,
        [_ak("default", "LTAI-default"), _ak("prod", "LTAI-prod", region_id="cn-shanghai")],
        current="prod",
    )
    environ = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "env", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "x"}
    resolved = resolve_credentials(environ=environ, profile_path=path)
    assert (resolved.source, resolved.region_id) == ("environment", "cn-shanghai")
    named = resolve_credentials(environ=environ, profile_path=path, profile="default")
    assert named.region_id is None


def test_keys_from_the_environment_do_not_need_a_readable_profile(tmp_path: Path) -> None:
    """A broken or missing profile file costs the region only, never the keys."""
    broken = tmp_path / "config.json"
    broken.write_text("{not json", encoding="utf-8")
    environ = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "env", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "x"}
    for path in (broken, tmp_path / "missing.json"):
        resolved = resolve_credentials(environ=environ, profile_path=path)
        assert (resolved.credentials.access_key_id, resolved.region_id) == ("env", None)


# --- the modes that assume a role, the metadata service, a URI ------------------------


def test_ram_role_arn_profile(tmp_path: Path) -> None:
    """RamRoleArn: AssumeRole with the profile's own key, its session settings kept."""
    profile = _ram(
        "default", ram_session_name="ci", expired_seconds="1800", sts_region="cn-beijing"
    )
    spec = resolve_credentials(environ={}, profile_path=_config(tmp_path, [profile])).spec
    assert isinstance(spec, AssumeRoleSource)
    assert (spec.role_arn, spec.session_name, spec.duration_seconds, spec.sts_region) == (
        "acs:ram::1:role/default", "ci", 1800, "cn-beijing",
    )  # fmt: skip
    assert isinstance(spec.base, StaticSource)
    assert spec.base.credentials.access_key_id == "LTAI-file"


def test_chainable_ram_role_arn_profile_assumes_from_another_profile(tmp_path: Path) -> None:
    """ChainableRamRoleArn: the source profile's credentials (itself a role) sign."""
    profiles = [
        _ram("base"),
        {"name": "ops", "mode": "ChainableRamRoleArn", "source_profile": "base",
         "ram_role_arn": "acs:ram::1:role/ops"},
    ]  # fmt: skip
    path = _config(tmp_path, profiles)
    spec = resolve_credentials(environ={}, profile_path=path, profile="ops").spec
    assert isinstance(spec, AssumeRoleSource)
    assert spec.role_arn == "acs:ram::1:role/ops"
    assert isinstance(spec.base, AssumeRoleSource)
    assert spec.base.role_arn == "acs:ram::1:role/base"


def test_chainable_profiles_in_a_cycle_are_refused(tmp_path: Path) -> None:
    profiles = [
        {"name": "a", "mode": "ChainableRamRoleArn", "source_profile": "b", "ram_role_arn": "x"},
        {"name": "b", "mode": "ChainableRamRoleArn", "source_profile": "a", "ram_role_arn": "y"},
    ]
    with pytest.raises(CredentialsError, match="cycle"):
        resolve_credentials(environ={}, profile_path=_config(tmp_path, profiles), profile="a")


def test_ecs_ram_role_and_oidc_profiles(tmp_path: Path) -> None:
    profiles = [
        {"name": "ecs", "mode": "EcsRamRole", "ram_role_name": "runner"},
        {"name": "oidc", "mode": "OIDC", "ram_role_arn": "acs:ram::1:role/ci",
         "oidc_provider_arn": "acs:ram::1:oidc-provider/gh", "oidc_token_file": "/t/token"},
    ]  # fmt: skip
    path = _config(tmp_path, profiles)
    ecs = resolve_credentials(environ={}, profile_path=path, profile="ecs").spec
    assert ecs == MetadataSource("runner")
    oidc = resolve_credentials(environ={}, profile_path=path, profile="oidc").spec
    assert isinstance(oidc, OidcSource)
    assert (oidc.role_arn, oidc.provider_arn, str(oidc.token_file)) == (
        "acs:ram::1:role/ci", "acs:ram::1:oidc-provider/gh", "/t/token",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("profile", "missing"),
    [
        ({"mode": "RamRoleArn", "access_key_id": "a", "access_key_secret": SECRET}, "ram_role_arn"),
        ({"mode": "ChainableRamRoleArn", "ram_role_arn": "x"}, "source_profile"),
        ({"mode": "OIDC", "ram_role_arn": "x", "oidc_token_file": "/t"}, "oidc_provider_arn"),
    ],
)
def test_a_mode_without_a_field_it_needs_names_it(
    tmp_path: Path, profile: dict[str, str], missing: str
) -> None:
    path = _config(tmp_path, [{"name": "default", **profile}])
    with pytest.raises(CredentialsError) as excinfo:
        resolve_credentials(environ={}, profile_path=path)
    assert missing in _refused(excinfo)


def test_a_short_expired_seconds_is_refused(tmp_path: Path) -> None:
    path = _config(tmp_path, [_ram("default", expired_seconds="60")])
    with pytest.raises(CredentialsError, match="expired_seconds"):
        resolve_credentials(environ={}, profile_path=path)


OIDC_ENV = {
    "ALIBABA_CLOUD_ROLE_ARN": "acs:ram::1:role/ci",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": "acs:ram::1:oidc-provider/gh",
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE": "/var/run/token",
}
ENV_KEYS = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "env-id", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET}


def test_chain_order(tmp_path: Path) -> None:
    """Named profile, then the environment's keys, then OIDC, then the file's current
    profile, then the instance's role, then a credentials URI."""
    path = _config(tmp_path, [_ak("default", "LTAI-current"), _ram("named")])
    later = {
        "ALIBABA_CLOUD_ECS_METADATA": "runner",
        "ALIBABA_CLOUD_CREDENTIALS_URI": "http://127.0.0.1:9/creds",
    }
    everything = ENV_KEYS | OIDC_ENV | later

    def first(environ: dict[str, str], **kwargs: object) -> object:
        return resolve_credentials(environ=environ, **kwargs).spec  # type: ignore[arg-type]

    named = first(everything | {"ALIBABA_CLOUD_PROFILE": "named"}, profile_path=path)
    assert isinstance(named, AssumeRoleSource)
    assert isinstance(first(everything, profile_path=path, profile="named"), AssumeRoleSource)
    by_env = first(everything, profile_path=path)
    assert isinstance(by_env, StaticSource)
    assert by_env.credentials.access_key_id == "env-id"
    assert isinstance(first(OIDC_ENV | later, profile_path=path), OidcSource)
    current = first(later, profile_path=path)
    assert isinstance(current, StaticSource)
    assert current.credentials.access_key_id == "LTAI-current"
    no_file = tmp_path / "absent.json"
    assert first(later, profile_path=no_file) == MetadataSource("runner")
    disabled = later | {"ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}
    assert first(disabled, profile_path=no_file) == UriSource("http://127.0.0.1:9/creds")


def test_half_given_oidc_environment_names_the_missing_variable() -> None:
    environ = dict(OIDC_ENV)
    del environ["ALIBABA_CLOUD_OIDC_TOKEN_FILE"]
    with pytest.raises(CredentialsError, match="ALIBABA_CLOUD_OIDC_TOKEN_FILE"):
        resolve_credentials(environ=environ)


def test_a_temporary_source_has_no_static_credentials(tmp_path: Path) -> None:
    resolved = resolve_credentials(environ=OIDC_ENV, profile_path=tmp_path / "absent")
    with pytest.raises(CredentialsError, match="temporary"):
        _ = resolved.credentials
    assert resolved.source == "OIDC environment"


def test_a_uri_source_never_shows_its_query() -> None:
    source = UriSource("https://creds.example/get?token=uri-secret-value")
    assert "uri-secret-value" not in repr(source)
    assert "uri-secret-value" not in describe(source)


@pytest.mark.parametrize(
    ("environ", "sts_region", "expected"),
    [
        ({}, None, "https://sts.aliyuncs.com"),
        ({"ALIBABA_CLOUD_STS_REGION": "cn-beijing"}, None, "https://sts.cn-beijing.aliyuncs.com"),
        ({"ALIBABA_CLOUD_STS_REGION": "cn-beijing"}, "cn-shanghai", "https://sts.cn-shanghai.aliyuncs.com"),
        ({"ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED": "true"}, "cn-hangzhou", "https://sts-vpc.cn-hangzhou.aliyuncs.com"),
        ({"ALIBABA_CLOUD_STS_ENDPOINT": "sts-vpc.cn-hangzhou.aliyuncs.com"}, "x", "https://sts-vpc.cn-hangzhou.aliyuncs.com"),
        ({"ALIBABA_CLOUD_STS_ENDPOINT": "http://127.0.0.1:8080/"}, None, "http://127.0.0.1:8080"),
    ],
)  # fmt: skip
def test_sts_endpoint_as_the_official_tools_choose_it(
    environ: dict[str, str], sts_region: str | None, expected: str
) -> None:
    assert sts_endpoint(environ, sts_region) == expected


def test_metadata_endpoint_defaults_to_the_real_service() -> None:
    assert metadata_endpoint({}) == "http://100.100.100.200"
    assert metadata_endpoint({"ORCHESTRATOR_ECS_METADATA_ENDPOINT": "http://127.0.0.1:9/"}) == (
        "http://127.0.0.1:9"
    )
