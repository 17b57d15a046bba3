"""A large tag selection listed as one NextToken chain per zone (`tag_listing.py`): the
same `Resolution` as the calls made one after another, the zone chains in the air at
once, a fall back to the single chain whenever the split cannot be shown to cover the
selection, and no DescribeZones call for a small selection.
"""

from __future__ import annotations

import anyio
import pytest
from structlog.testing import capture_logs

from orchestrator.plan._model import Targets
from orchestrator.sim import load_fleet, serve
from orchestrator.tag_listing import SPLIT_ABOVE_PAGES
from orchestrator.targets import resolve
from orchestrator.testing import ManualClock
from tests.api.test_targets_at_the_bound import (
    DEADLINE,
    SHELL,
    client_of,
    fleet_of,
    key_of,
    proxy_for,
    sequential_resolve,
    table_of,
)

pytestmark = pytest.mark.anyio

# The shapes of the mixed fleet of test_targets_at_the_bound.py, three times over: the
# tag selections (1,260 instances, 870 of them of `app: web` alone) split.
LARGE_TEXT = """
region: cn-hangzhou
seed: 11
generate:
  - count: 870
    zones: [cn-hangzhou-h, cn-hangzhou-i, cn-hangzhou-j]
    spread: random
    tags: {app: web}
    offline_rate: 0.1
    not_installed_rate: 0.1
    stopped_rate: 0.15
  - count: 390
    os: windows
    zones: [cn-hangzhou-h, cn-hangzhou-i]
    tags: {app: web, os: windows}
    offline_rate: 0.2
    stopped_rate: 0.1
"""
LARGE = load_fleet(LARGE_TEXT)
TABLE = table_of([i.instance_id for i in LARGE.instances])
SPLITS = {"tags", "tags-zones-exclude", "ids-and-tags"}  # more than 500 matched


@pytest.mark.parametrize("name", sorted(TABLE))
@pytest.mark.parametrize("command_type", [SHELL, "RunPowerShellScript"])
async def test_the_split_resolution_is_the_sequential_one(name, command_type):
    """Same runnable order, same skipped (reasons, order), same excluded; a selection of
    more than SPLIT_ABOVE_PAGES pages after the first asks DescribeZones, once."""
    targets = TABLE[name]
    async with (
        serve(LARGE, clock=ManualClock()) as sim,
        client_of(sim.url, key_of(sim)) as client,
    ):
        expected = await sequential_resolve(targets, command_type, client)
        assert sim.stats.count("DescribeZones") == 0
        with capture_logs() as logs:
            assert await resolve(targets, command_type, client) == expected
        assert sim.stats.count("DescribeZones") == (1 if name in SPLITS else 0)
    assert not [e for e in logs if e["event"] == "targets.zone_split_fallback"]


async def test_the_zone_chains_overlap():
    """A second zone's page is asked while the first zone's answer is held back."""
    fleet = fleet_of(900)

    def zone_page(query: dict[str, str]) -> bool:
        return "ZoneId" in query

    async with serve(fleet, clock=ManualClock()) as sim:
        async with (
            proxy_for(sim, "DescribeInstances", zone_page) as (url, proxy),
            client_of(url, key_of(sim)) as client,
        ):
            with anyio.fail_after(DEADLINE):
                found = await resolve(Targets(tags={"app": "web"}), SHELL, client)
        assert proxy.overlapped.is_set()
        assert sim.stats.count("DescribeZones") == 1
    assert len(found.runnable) == 900


@pytest.mark.parametrize(
    ("count", "splits"),
    [(100, False), (250, False), ((SPLIT_ABOVE_PAGES + 1) * 100, False), (501, True)],
)
async def test_a_small_selection_makes_no_describe_zones_call(count, splits):
    """Up to SPLIT_ABOVE_PAGES pages after the first, the chain goes on: its pages and
    nothing else. 501 instances over 3 zones: the first page, the count, and 2 pages for
    each zone's 167."""
    fleet = fleet_of(count)
    async with (
        serve(fleet, clock=ManualClock()) as sim,
        client_of(sim.url, key_of(sim)) as client,
    ):
        found = await resolve(Targets(tags={"app": "web"}), SHELL, client)
        assert sim.stats.count("DescribeZones") == (1 if splits else 0)
        pages = 1 + 1 + 3 * 2 if splits else -(-count // 100)
        assert sim.stats.count("DescribeInstances") == pages
    assert len(found.runnable) == count


# Zone k is last in the fleet's order, so none of it is on the first page: only the count
# shows it missing. Zone i is everywhere, the first page included.
HIDDEN = """
region: cn-hangzhou
seed: 3
account: {{hidden_zones: [{hidden}]}}
generate:
  - count: 700
    zones: [cn-hangzhou-h, cn-hangzhou-i, cn-hangzhou-j]
    tags: {{app: web}}
  - count: 150
    zones: [cn-hangzhou-k]
    tags: {{app: web}}
"""


@pytest.mark.parametrize(
    ("hidden", "reason"),
    [
        ("cn-hangzhou-i", "zone cn-hangzhou-i holds selected instances but DescribeZones"),
        ("cn-hangzhou-k", "the zones' listings found 700 instances where the selection counts 850"),
    ],
    ids=["seen-on-the-first-page", "seen-only-by-the-count"],
)
async def test_a_zone_missing_from_describe_zones_falls_back_to_one_chain(hidden, reason):
    """Every instance is still found, and the log says why the split was not kept."""
    fleet = load_fleet(HIDDEN.format(hidden=hidden))
    targets = Targets(tags={"app": "web"})
    async with (
        serve(fleet, clock=ManualClock()) as sim,
        client_of(sim.url, key_of(sim)) as client,
    ):
        expected = await sequential_resolve(targets, SHELL, client)
        with capture_logs() as logs:
            found = await resolve(targets, SHELL, client)
        assert sim.stats.count("DescribeZones") == 1
    assert found == expected
    assert len(found.runnable) == 850
    (fallback,) = [e for e in logs if e["event"] == "targets.zone_split_fallback"]
    assert fallback["log_level"] == "warning"
    assert fallback["reason"].startswith(reason)


async def test_describe_zones_failing_falls_back_to_one_chain():
    """A DescribeZones that keeps failing (here 500s; a RAM policy without it, 403) costs
    the split, not the run."""
    fleet = load_fleet(LARGE_TEXT + "faults: {error_rate: 1.0, actions: [DescribeZones]}\n")
    targets = Targets(tags={"app": "web"})
    async with (
        serve(fleet, clock=ManualClock()) as sim,
        client_of(sim.url, key_of(sim)) as client,
    ):
        expected = await sequential_resolve(targets, SHELL, client)
        with capture_logs() as logs:
            assert await resolve(targets, SHELL, client) == expected
        assert sim.stats.count("DescribeZones") == 5  # the usual 5 attempts for a 5xx
    (fallback,) = [e for e in logs if e["event"] == "targets.zone_split_fallback"]
    assert fallback["reason"].startswith("DescribeZones failed: ")
