"""The command line in a real subprocess: exit codes, messages, the simulator server."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import aiohttp
import anyio
import pytest
from anyio.streams.text import TextReceiveStream

from orchestrator.ecs import Credentials, EcsClient, RetryPolicy
from orchestrator.sim import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET

ROOT = Path(__file__).parents[2]


def orchestrator(
    *args: str, home: Path, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m orchestrator ARGS` with no credentials anywhere in reach (but
    `extra_env`'s)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env |= extra_env or {}
    env["HOME"] = str(home)
    env["ORCHESTRATOR_STATE_DIR"] = str(home / "state")  # journals stay in the test's dir
    return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_instances_against_the_embedded_simulator(tmp_path: Path):
    """README's first command: the demo fleet through signed calls, exit 0."""
    done = orchestrator("instances", "--sim", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "300 instances" in done.stdout
    assert "agent offline" in done.stdout
    assert "Traceback" not in done.stderr


def test_instances_with_a_tag_filter(tmp_path: Path):
    """Tag filters reach DescribeInstances: only matching instances are counted."""
    done = orchestrator(
        "instances", "--sim", "plans/fleets/small.yaml", "--tag", "app=api", home=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "2 instances" in done.stdout
    assert "i-api1" in done.stdout
    assert "i-web1" not in done.stdout


def test_bad_fleet_file_is_a_usage_error_naming_the_field(tmp_path: Path):
    """A broken fleet file exits 2 and says which field breaks which rule."""
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("region: cn-hangzhou\ngenerate:\n  - {count: 0, zones: [a]}\n")
    done = orchestrator("instances", "--sim", str(fleet), home=tmp_path)
    assert done.returncode == 2
    assert "fleet.generate[0].count" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_no_credentials_is_an_auth_error(tmp_path: Path):
    """Against a real region with no credentials anywhere: exit 5 and how to fix it."""
    done = orchestrator("instances", "--region", "cn-hangzhou", home=tmp_path)
    assert done.returncode == 5
    assert "ALIBABA_CLOUD_ACCESS_KEY_ID" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_no_credentials_names_only_ways_that_exist(tmp_path: Path):
    """The message offers what an operator can do: the variables, a profile, --sim;
    never a way the command line does not have (there is no option to pass a key)."""
    done = orchestrator("instances", "--region", "cn-hangzhou", home=tmp_path)
    said = done.stdout + done.stderr
    assert "pass an access key" not in said
    assert "--profile" in said
    assert "--sim" in said


def test_no_region_is_a_usage_error(tmp_path: Path):
    """Keys but no region anywhere: the command line lacks something (2), the
    credentials are fine (not 5); the message says where a region can come from."""
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-x", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "y"}
    done = orchestrator("instances", home=tmp_path, extra_env=env)
    assert done.returncode == 2, done
    said = done.stdout + done.stderr
    assert "no region" in said
    assert "--region" in said
    assert "region_id" in said
    assert "Traceback" not in done.stderr


def test_bad_arguments_exit_2(tmp_path: Path):
    """A malformed --tag is refused before anything is called."""
    done = orchestrator("instances", "--sim", "--tag", "novalue", home=tmp_path)
    assert done.returncode == 2
    assert "KEY=VALUE" in done.stdout + done.stderr


@pytest.mark.anyio
async def test_sim_server_prints_where_and_answers_signed_calls(tmp_path: Path):
    """`orchestrator sim` prints its URL and key; a client calls it; Ctrl-C stops it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env["HOME"] = str(tmp_path)
    env["ORCHESTRATOR_STATE_DIR"] = str(tmp_path / "state")
    command = [
        sys.executable,
        "-m",
        "orchestrator",
        "sim",
        "--port",
        "0",
        "--fleet",
        "plans/fleets/small.yaml",
    ]
    async with await anyio.open_process(command, env=env, cwd=ROOT) as process:
        assert process.stdout is not None
        text = ""
        with anyio.fail_after(30):
            async for chunk in TextReceiveStream(process.stdout):
                text += chunk
                if "access key secret" in text:
                    break
        url = re.search(r"http://127\.0\.0\.1:\d+", text)
        assert url, text
        assert DEFAULT_ACCESS_KEY_ID in text

        async with aiohttp.ClientSession() as session:
            client = EcsClient(
                url.group(0),
                session,
                Credentials.of(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
                region_id="cn-hangzhou",
                retry=RetryPolicy.none(),
            )
            ids = {i.instance_id async for i in client.describe_instances()}
        assert "i-web1" in ids

        process.send_signal(signal.SIGINT)
        with anyio.fail_after(30):
            assert await process.wait() == 130


def test_version_is_the_installed_distributions(tmp_path: Path):
    """`orchestrator --version` names the version pyproject.toml gives, and exits 0."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    done = orchestrator("--version", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"orchestrator {project['version']}"
