"""`orchestrator run` in a subprocess with each credential mode a CI job holds, against
a simulator this test owns that plays ECS, STS, the metadata service and a credentials
URI: the run completes, signed with the role's credentials (the owner's key is used
only to assume the role, never for ECS). And a run longer than its STS credentials'
life completes, renewing them on the way (AssumeRole called more than once)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from orchestrator.sim import RunningSimulator, load_fleet, serve
from tests.e2e.credential_modes import (
    MODES,
    OWNER_PROFILE,
    OWNER_SECRET,
    PLAN,
    RELEASE,
    cli,
    fleet_text,
    setup_mode,
    write_profiles,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.anyio


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


async def test_a_plan_holding_the_oidc_token_is_refused(tmp_path: Path, sim: RunningSimulator):
    """The OIDC token is a credential in use too: a plan that would send it exits 2
    before any RunCommand, naming what it holds, never the value."""
    extra = setup_mode("OIDC-environment", tmp_path, sim)
    token = (tmp_path / "oidc-token").read_text()
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN.replace("echo ok", f"echo {token}"))
    done = await cli(
        "run", str(plan), "--endpoint", sim.url, "--region", sim.region,
        home=tmp_path, sim=sim, extra=extra,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "command.content: holds the credential source's token 1" in done.stderr
    assert token not in done.stdout + done.stderr
    assert sim.stats.count("RunCommand") == 0
