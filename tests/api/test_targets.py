"""Target expansion against the simulator: selectors, exclusions and skip reasons."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from orchestrator.plan._model import Targets
from orchestrator.targets import Resolution, SkipReason, resolve

if TYPE_CHECKING:
    from orchestrator.ecs import EcsClient

pytestmark = pytest.mark.anyio

SHELL = "RunShellScript"


def reasons(resolution: Resolution) -> dict[str, SkipReason]:
    return {s.instance_id: s.reason for s in resolution.skipped}


def runnable(resolution: Resolution) -> list[str]:
    return [i.instance_id for i in resolution.runnable]


async def test_tags_select_and_unrunnable_instances_are_skipped_with_a_reason(client: EcsClient):
    """A tag selector finds every match; those that cannot run are skipped, not dropped."""
    found = await resolve(Targets(tags={"app": "web"}), SHELL, client)
    assert runnable(found) == ["i-web1", "i-web2", "i-web3"]
    assert reasons(found) == {
        "i-offline1": SkipReason.AGENT_OFFLINE,
        "i-stopped1": SkipReason.NOT_RUNNING,
    }
    assert found.selected == 5


async def test_unknown_explicit_ids_are_skipped_as_not_found(client: EcsClient):
    """An explicit ID the API does not know is reported, and the rest still resolve."""
    found = await resolve(Targets(instances=("i-api1", "i-nope")), SHELL, client)
    assert runnable(found) == ["i-api1"]
    assert reasons(found) == {"i-nope": SkipReason.NOT_FOUND}


async def test_ids_and_tags_are_a_union_narrowed_by_zone_and_exclusions(client: EcsClient):
    """IDs and tags add up; zones narrow; exclusions remove, and are listed as such."""
    union = await resolve(
        Targets(instances=("i-api2",), tags={"app": "web", "env": "prod"}), SHELL, client
    )
    assert runnable(union) == ["i-web1", "i-api2", "i-web2"]  # by zone, then ID

    narrowed = await resolve(
        Targets(
            instances=("i-api2",),
            tags={"app": "web", "env": "prod"},
            zones=("cn-hangzhou-h",),
            exclude=("i-web1",),
        ),
        SHELL,
        client,
    )
    assert runnable(narrowed) == []
    assert narrowed.excluded == ("i-api2", "i-stopped1", "i-web1", "i-web2")
    assert reasons(narrowed) == {"i-offline1": SkipReason.AGENT_OFFLINE}
    # What the selectors matched, before exclusions: every one is run, skipped or excluded.
    assert narrowed.selected == 5


async def test_script_type_must_fit_the_os(client: EcsClient):
    """A shell script skips Windows instances; a PowerShell script runs on them."""
    shell = await resolve(Targets(tags={"app": "report"}), SHELL, client)
    assert reasons(shell) == {"i-win1": SkipReason.OS_MISMATCH}
    powershell = await resolve(Targets(tags={"app": "report"}), "RunPowerShellScript", client)
    assert runnable(powershell) == ["i-win1"]


async def test_missing_agent_is_told_apart_from_an_offline_one(client: EcsClient):
    """No agent installed is its own reason; an old but online agent still runs."""
    found = await resolve(Targets(instances=("i-noagent1", "i-old1")), SHELL, client)
    assert reasons(found) == {"i-noagent1": SkipReason.AGENT_MISSING}
    assert runnable(found) == ["i-old1"]
