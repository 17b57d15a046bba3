"""DescribeZones in the simulator, through our client over loopback HTTP: the fleet's
zones minus `account.hidden_zones`, the region checked, throttled and counted like every
Describe call; and the two DescribeInstances counts the zone split relies on."""

from __future__ import annotations

import aiohttp
import pytest

from orchestrator.ecs import Credentials, EcsClient, Zone
from orchestrator.errors import NotFound
from orchestrator.sim import load_fleet
from orchestrator.sim._fleet_node import FleetError
from orchestrator.testing import ManualClock, simulated

pytestmark = pytest.mark.anyio

FLEET = """
region: cn-hangzhou
{extra}
generate:
  - count: 250
    zones: [cn-hangzhou-k, cn-hangzhou-h, cn-hangzhou-i]
    tags: {{app: web}}
"""


def fleet(extra: str = "") -> str:
    return FLEET.format(extra=extra)


async def test_the_zones_are_the_fleets_sorted_minus_the_hidden_ones():
    async with simulated(fleet(), clock=ManualClock(autojump=True)) as env:
        assert await env.client.describe_zones() == (
            Zone("cn-hangzhou-h", "cn-hangzhou Zone H"),
            Zone("cn-hangzhou-i", "cn-hangzhou Zone I"),
            Zone("cn-hangzhou-k", "cn-hangzhou Zone K"),
        )
        assert env.sim.stats.count("DescribeZones", "ok") == 1
        assert env.limiter.stats().calls["DescribeZones"] == 1  # what report.json counts
    hidden = fleet("account: {hidden_zones: [cn-hangzhou-i]}")
    async with simulated(hidden, clock=ManualClock(autojump=True)) as env:
        zones = await env.client.describe_zones()
    assert [z.zone_id for z in zones] == ["cn-hangzhou-h", "cn-hangzhou-k"]


def test_hidden_zones_must_be_a_list_of_strings():
    with pytest.raises(FleetError, match=r"fleet\.account\.hidden_zones: must be a non-empty list"):
        load_fleet(fleet("account: {hidden_zones: cn-hangzhou-i}"))


async def test_another_region_is_not_found():
    async with (
        simulated(fleet(), clock=ManualClock(autojump=True)) as env,
        aiohttp.ClientSession() as http,
    ):
        elsewhere = EcsClient(
            env.sim.url,
            http,
            Credentials.of(env.sim.access_key_id, env.sim.access_key_secret),
            region_id="cn-beijing",
            clock=env.clock,
        )
        with pytest.raises(NotFound) as caught:
            await elsewhere.describe_zones()
    assert caught.value.code == "InvalidRegionId.NotFound"


async def test_describe_zones_is_throttled_per_action_and_retried():
    """One a second, no burst: the second call at once is Throttling, then passes."""
    throttled = fleet("throttle: {per_action: {DescribeZones: 1}}")
    async with simulated(throttled, clock=ManualClock(autojump=True)) as env:
        await env.client.describe_zones()
        await env.client.describe_zones()
        assert env.sim.stats.count("DescribeZones", "Throttling") >= 1
        assert env.sim.stats.count("DescribeZones", "ok") == 2
        assert env.limiter.stats().throttles["DescribeZones"] >= 1


async def test_the_counts_the_split_reads():
    """The first NextToken page carries a TotalCount (the simulator's is true; the
    service's is only a hint) and a PageNumber page of one instance the count."""
    async with simulated(fleet(), clock=ManualClock(autojump=True)) as env:
        first = await env.client.first_instances_page({"app": "web"})
        assert (len(first.items), first.total_count) == (100, 250)
        assert first.next_token
        assert await env.client.count_instances({"app": "web"}) == 250
        assert await env.client.count_instances({"app": "none"}) == 0
        rest = [
            i
            async for i in env.client.describe_instances(
                tags={"app": "web"}, after=first.next_token
            )
        ]
        assert len(rest) == 150
        assert {i.instance_id for i in first.items}.isdisjoint(i.instance_id for i in rest)
