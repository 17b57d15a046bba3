"""What each credential mode a CI job holds needs, for the e2e tests: a fleet whose
simulator plays STS (roles, an OIDC provider), the metadata service and a credentials
URI; the profile file, token file and environment of each mode; the CLI in a subprocess
pointed at it all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio

from orchestrator.sim import (
    RunningSimulator,
    oidc_provider_arn,
    oidc_token,
    role_arn,
)

if TYPE_CHECKING:
    from pathlib import Path

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
