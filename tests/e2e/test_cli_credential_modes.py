"""`orchestrator run` in a subprocess with each credential mode a CI job holds, against
a simulator this test owns that plays ECS, STS, the metadata service and a credentials
URI: the run completes, signed with the role's credentials (the owner's key is used
only to assume the role, never for ECS). And a run longer than its STS credentials'
life completes, renewing them on the way (AssumeRole called more than once)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio
import pytest

from orchestrator.sim import (
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
OWNER_ID, OWNER_SECRET = "LTAI-owner-key", "owner-secret-7c1e9a-never-print"
OIDC_KEY = "oidc-key-3b9f-never-print"


def fleet_text(*, ttl: float = 900, time_scale: float = 0.001, duration: float = 1) -> str:
    return f"""
region: cn-hangzhou
account_id: "{ACCOUNT}"
seed: 3
time_scale: {time_scale}
keys:
  - {{access_key_id: {OWNER_ID}, access_key_secret: {OWNER_SECRET}}}
instances:
  - {{id: i-c1, zone: cn-hangzhou-h, tags: {{app: c}}}}
  - {{id: i-c2, zone: cn-hangzhou-i, tags: {{app: c}}}}
behaviour:
  default: {{duration: {duration}, output: "ok\\n"}}
sts:
  credential_ttl: {ttl}
  roles:
    - {{name: deployer, trusted_keys: [{OWNER_ID}], oidc_providers: [ci]}}
    - {{name: release, trusted_roles: [deployer]}}
  oidc_providers:
    - {{name: ci, issuer: "https://ci.example", key: {OIDC_KEY}}}
  instance_role: deployer
  uri_role: deployer
"""


PLAN = """\
name: modes
targets: {tags: {app: c}}
command: {content: echo ok, timeout: 600}
waves:
  - {name: all, size: 100%, max_errors: 0}
"""
DEPLOYER = role_arn(ACCOUNT, "deployer")
RELEASE = role_arn(ACCOUNT, "release")
OWNER_PROFILE = {"mode": "AK", "access_key_id": OWNER_ID, "access_key_secret": OWNER_SECRET}
RAM_PROFILE = OWNER_PROFILE | {"mode": "RamRoleArn", "ram_role_arn": DEPLOYER}


def write_profiles(home: Path, profiles: dict[str, dict[str, str]]) -> None:
    config = home / ".aliyun" / "config.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    entries = [{"name": name, "region_id": "cn-hangzhou", **p} for name, p in profiles.items()]
    config.write_text(json.dumps({"current": next(iter(profiles)), "profiles": entries}))


def token_file(home: Path, sim: RunningSimulator) -> Path:
    provider = sim.simulation.fleet.sts.provider("ci")
    assert provider is not None
    path = home / "oidc-token"
    path.write_text(oidc_token(provider, subject="repo:acme/app", now=datetime.now(UTC)))
    return path


def setup_mode(mode: str, home: Path, sim: RunningSimulator) -> dict[str, str]:
    """Write what `mode` reads (profile file, token file); the environment it needs."""
    oidc_env = {
        "ALIBABA_CLOUD_ROLE_ARN": DEPLOYER,
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": oidc_provider_arn(ACCOUNT, "ci"),
    }
    match mode:
        case "RamRoleArn":
            write_profiles(home, {"default": RAM_PROFILE})
        case "ChainableRamRoleArn":
            chained = {"mode": "ChainableRamRoleArn", "source_profile": "base",
                       "ram_role_arn": RELEASE}  # fmt: skip
            write_profiles(home, {"release": chained, "base": RAM_PROFILE})
        case "OIDC-environment":
            return oidc_env | {"ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(token_file(home, sim))}
        case "OIDC-profile":
            oidc = {"mode": "OIDC", "ram_role_arn": DEPLOYER,
                    "oidc_provider_arn": oidc_env["ALIBABA_CLOUD_OIDC_PROVIDER_ARN"],
                    "oidc_token_file": str(token_file(home, sim))}  # fmt: skip
            write_profiles(home, {"ci": oidc})
        case "EcsRamRole-environment":
            return {"ALIBABA_CLOUD_ECS_METADATA": "deployer"}
        case "EcsRamRole-profile":
            write_profiles(home, {"ecs": {"mode": "EcsRamRole"}})
        case "CredentialsURI":
            return {"ALIBABA_CLOUD_CREDENTIALS_URI": f"{sim.url}/_sim/credentials-uri"}
    return {}


MODES = [
    "RamRoleArn",
    "ChainableRamRoleArn",
    "OIDC-environment",
    "OIDC-profile",
    "EcsRamRole-environment",
    "EcsRamRole-profile",
    "CredentialsURI",
]


async def cli(
    *args: str, home: Path, sim: RunningSimulator, extra: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env |= {
        "HOME": str(home),
        "ORCHESTRATOR_STATE_DIR": str(home / "state"),
        "ALIBABA_CLOUD_STS_ENDPOINT": sim.url,
        "ORCHESTRATOR_ECS_METADATA_ENDPOINT": sim.url,
        **extra,
    }

    def call() -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
            [sys.executable, "-m", "orchestrator", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=180,
            check=False,
        )

    return await anyio.to_thread.run_sync(call)


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with serve(load_fleet(fleet_text())) as running:
        yield running


@pytest.mark.parametrize("mode", MODES)
async def test_a_run_completes_with_each_credential_mode(
    tmp_path: Path, sim: RunningSimulator, mode: str
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    extra = setup_mode(mode, tmp_path, sim)
    done = await cli(
        "run", str(plan), "--endpoint", sim.url, "--region", sim.region,
        home=tmp_path, sim=sim, extra=extra,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert sim.stats.count("RunCommand", "ok") == 1
    assert sim.simulation.execution_counts() == {"i-c1": {_only_invoke(sim): 1},
                                                 "i-c2": {_only_invoke(sim): 1}}  # fmt: skip
    issued = {i.answer["AccessKeyId"] for i in sim.sts.issued}
    assert issued, "no role credentials were issued"
    assert OWNER_SECRET not in done.stdout + done.stderr


def _only_invoke(sim: RunningSimulator) -> str:
    (invoke_id,) = {i for runs in sim.simulation.execution_counts().values() for i in runs}
    return invoke_id


async def test_a_refused_role_is_exit_5_naming_the_role(tmp_path: Path, sim: RunningSimulator):
    """The owner's key may not assume `release` directly: the run stops before any call
    to ECS, naming the role and the refusal."""
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    write_profiles(tmp_path, {"default": OWNER_PROFILE | {"mode": "RamRoleArn",
                                                          "ram_role_arn": RELEASE}})  # fmt: skip
    done = await cli(
        "run", str(plan), "--endpoint", sim.url, "--region", sim.region,
        home=tmp_path, sim=sim, extra={},
    )  # fmt: skip
    assert done.returncode == 5  # credentials, as a refused key
    assert RELEASE in done.stderr
    assert "NoPermission" in done.stderr
    assert "Traceback" not in done.stderr
    assert OWNER_SECRET not in done.stdout + done.stderr
    assert sim.stats.count("DescribeInstances") == 0


async def test_a_run_longer_than_its_credentials_life_completes(tmp_path: Path) -> None:
    """Role credentials live 3 s; the command runs ~8 s of real time: the run goes on
    with credentials renewed ahead of expiry (AssumeRole more than once), and every ECS
    call is accepted or, refused as expired, retried with fresh ones."""
    fleet = load_fleet(fleet_text(ttl=3, time_scale=1, duration=8))
    async with serve(fleet) as sim:
        plan = tmp_path / "plan.yaml"
        plan.write_text(PLAN)
        extra = setup_mode("RamRoleArn", tmp_path, sim)
        done = await cli(
            "run", str(plan), "--endpoint", sim.url, "--region", sim.region,
            home=tmp_path, sim=sim, extra=extra,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert sim.stats.count("AssumeRole", "ok") > 1
        assert sim.stats.count("RunCommand", "ok") == 1
