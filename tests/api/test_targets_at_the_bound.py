"""The targets step at its bound: its calls overlap, their number does not grow, and the
`Resolution` is exactly what the calls made one after another produce.

Overlap is proven by a loopback proxy of the test's own in front of the simulator: it
holds the first answer of an action until a request of the same action for other IDs
has arrived (events, no sleeps). A client that waits for each answer before asking
again never sends that request, and the test fails at its deadline.
"""

from __future__ import annotations

import random
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import aiohttp
import anyio
import pytest
from aiohttp import web

from orchestrator.ecs import Credentials, EcsClient, RateLimiter
from orchestrator.plan._model import Targets
from orchestrator.sim import load_fleet, serve
from orchestrator.sim._protocol import Call, SimApiError
from orchestrator.sim._simulation import Simulation
from orchestrator.targets import (
    Resolution,
    Skipped,
    SkipReason,
    _unfit,  # the rule itself, so the reference cannot drift from it
    resolve,
)
from orchestrator.testing import ManualClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from orchestrator.ecs import CloudAssistantStatus, Instance
    from orchestrator.sim import FleetSpec, RunningSimulator

pytestmark = pytest.mark.anyio

SHELL = "RunShellScript"
# Generous, for a busy machine: reached only when the calls do not overlap.
DEADLINE = 30


def fleet_of(count: int) -> FleetSpec:
    """`count` Running Linux instances, online agents, over three zones, round robin."""
    return load_fleet(f"""
region: cn-hangzhou
seed: 5
generate:
  - count: {count}
    zones: [cn-hangzhou-h, cn-hangzhou-i, cn-hangzhou-j]
    tags: {{app: web}}
""")


# Every way an instance can fail to run, over Linux and Windows, more than a chunk of each.
MIXED = load_fleet("""
region: cn-hangzhou
seed: 7
generate:
  - count: 290
    zones: [cn-hangzhou-h, cn-hangzhou-i, cn-hangzhou-j]
    spread: random
    tags: {app: web}
    offline_rate: 0.1
    not_installed_rate: 0.1
    stopped_rate: 0.15
  - count: 130
    os: windows
    zones: [cn-hangzhou-h, cn-hangzhou-i]
    tags: {app: web, os: windows}
    offline_rate: 0.2
    stopped_rate: 0.1
""")


@asynccontextmanager
async def client_of(
    url: str, key: tuple[str, str], status_ids: int = 100
) -> AsyncIterator[EcsClient]:
    """Our client on a hand-advanced clock that jumps through every rate-limiter wait."""
    clock = ManualClock(autojump=True)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=DEADLINE)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        yield EcsClient(
            url,
            session,
            Credentials.of(*key),
            region_id="cn-hangzhou",
            clock=clock,
            rng=random.Random(1),
            rate_limiter=RateLimiter(clock, {"Describe": 50.0}),
            assistant_status_ids=status_ids,
        )


def _asked(query: dict[str, str]) -> str:
    """What a request asks about: its IDs (InstanceId.N or InstanceIds), zone and page."""
    ids = sorted(v for k, v in query.items() if k.startswith("InstanceId."))
    zone = query.get("ZoneId", "")
    return f"{ids}{query.get('InstanceIds', '')}{zone}{query.get('NextToken', '')}"


class HoldingProxy:
    """Forwards every request to the simulator, but holds the first answer of `action`
    (of those `holds` picks by their query) until another such request, for something
    else, has arrived."""

    def __init__(
        self, target: str, action: str, holds: Callable[[dict[str, str]], bool] | None = None
    ) -> None:
        self.target = target
        self.action = action
        self.holds = holds
        self.first: str | None = None
        self.overlapped = anyio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        action = request.headers.get("x-acs-action") or request.query.get("Action", "")
        query = dict(request.query)
        asked = _asked(query)
        if action == self.action and (self.holds is None or self.holds(query)):
            if self.first is None:
                self.first = asked
                with anyio.fail_after(DEADLINE):
                    await self.overlapped.wait()
            elif asked != self.first:
                self.overlapped.set()
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                self.target + request.path_qs, headers=headers, data=await request.read()
            ) as answer,
        ):
            body = await answer.read()
            return web.Response(status=answer.status, body=body, content_type=answer.content_type)


@asynccontextmanager
async def proxy_for(
    sim: RunningSimulator, action: str, holds: Callable[[dict[str, str]], bool] | None = None
) -> AsyncIterator[tuple[str, HoldingProxy]]:
    proxy = HoldingProxy(sim.url, action, holds)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", proxy
    finally:
        await runner.cleanup()


def key_of(sim: RunningSimulator) -> tuple[str, str]:
    return sim.access_key_id, sim.access_key_secret


# --- overlap ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("targets_of", "action"),
    [
        (lambda _ids: Targets(tags={"app": "web"}), "DescribeCloudAssistantStatus"),
        (lambda ids: Targets(instances=tuple(ids)), "DescribeInstances"),
        (lambda ids: Targets(instances=tuple(ids)), "DescribeCloudAssistantStatus"),
    ],
    ids=["status-calls-during-a-tag-listing", "id-chunk-listings", "status-calls-of-id-chunks"],
)
async def test_calls_overlap(targets_of, action):
    """A second call is sent while the first one's answer is still held back."""
    fleet = fleet_of(250)
    async with serve(fleet, clock=ManualClock()) as sim:
        ids = [i.instance_id for i in fleet.instances]
        async with proxy_for(sim, action) as (url, proxy), client_of(url, key_of(sim)) as client:
            with anyio.fail_after(DEADLINE):
                found = await resolve(targets_of(ids), SHELL, client)
        assert proxy.overlapped.is_set()
    assert len(found.runnable) == 250


# --- the number of calls ------------------------------------------------------------


@pytest.mark.parametrize(
    ("status_ids", "status_calls"), [(100, 3), (50, 5)], ids=["100-ids", "older-endpoint-50"]
)
@pytest.mark.parametrize("by", ["tags", "ids"])
async def test_the_number_of_calls_does_not_grow(by, status_ids, status_calls):
    """250 instances: 3 listing pages (or 100-ID chunks) and 3 status calls of 100 IDs
    (5 of 50 for an endpoint with the older limit), counted by the simulator."""
    fleet = fleet_of(250)
    ids = tuple(i.instance_id for i in fleet.instances)
    targets = Targets(tags={"app": "web"}) if by == "tags" else Targets(instances=ids)
    async with (
        serve(fleet, clock=ManualClock()) as sim,
        client_of(sim.url, key_of(sim), status_ids) as client,
    ):
        found = await resolve(targets, SHELL, client)
        assert sim.stats.count("DescribeInstances") == 3
        assert sim.stats.count("DescribeCloudAssistantStatus") == status_calls
        assert client.rate_limiter is not None
        assert client.rate_limiter.stats().total_calls == 3 + status_calls
    assert len(found.runnable) == 250


async def test_instances_that_cannot_run_are_not_asked_their_status():
    """Excluded, out-of-zone, stopped and wrong-OS instances cost no status call."""
    fleet = fleet_of(250)
    ids = [i.instance_id for i in fleet.instances]
    zone = fleet.instances[0].zone
    targets = Targets(tags={"app": "web"}, zones=(zone,), exclude=tuple(ids[:30]))
    async with (
        serve(fleet, clock=ManualClock()) as sim,
        client_of(sim.url, key_of(sim)) as client,
    ):
        found = await resolve(targets, SHELL, client)
        # 84 in the zone (round robin over 3), 10 of them excluded: one status call.
        assert sim.stats.count("DescribeCloudAssistantStatus") == 1
        windows = await resolve(targets, "RunPowerShellScript", client)
        assert sim.stats.count("DescribeCloudAssistantStatus") == 1  # none fits: none asked
    assert len(found.runnable) == 74
    assert {s.reason for s in windows.skipped} == {SkipReason.OS_MISMATCH}


# --- the same Resolution as one call after another ---------------------------------


async def sequential_resolve(targets: Targets, command_type: str, client: EcsClient) -> Resolution:
    """The targets step as it was before its calls overlapped: the reference."""
    found: dict[str, Instance] = {}
    if targets.tags:
        async for instance in client.describe_instances(tags=targets.tags):
            found[instance.instance_id] = instance
    if targets.instances:
        async for instance in client.describe_instances(instance_ids=targets.instances):
            found.setdefault(instance.instance_id, instance)
    skipped = [
        Skipped(i, SkipReason.NOT_FOUND, "DescribeInstances does not know this instance")
        for i in dict.fromkeys(targets.instances)
        if i not in found and i not in targets.exclude
    ]
    excluded = sorted(
        i.instance_id
        for i in found.values()
        if i.instance_id in targets.exclude or (targets.zones and i.zone_id not in targets.zones)
    )
    candidates = sorted(
        (i for i in found.values() if i.instance_id not in excluded),
        key=lambda i: (i.zone_id, i.instance_id),
    )
    eligible = []
    for instance in candidates:
        problem = _unfit(instance, command_type)
        if problem is None:
            eligible.append(instance)
        else:
            skipped.append(Skipped(instance.instance_id, *problem, instance.zone_id))
    runnable = await _sequential_agents(eligible, client, skipped)
    return Resolution(tuple(runnable), tuple(skipped), tuple(excluded))


async def _sequential_agents(
    eligible: list[Instance], client: EcsClient, skipped: list[Skipped]
) -> list[Instance]:
    statuses: dict[str, CloudAssistantStatus] = {}
    for start in range(0, len(eligible), 50):  # one call at a time, 50 IDs each
        chunk = [i.instance_id for i in eligible[start : start + 50]]
        for answer in await client.describe_cloud_assistant_status(chunk):
            statuses[answer.instance_id] = answer
    runnable = []
    for instance in eligible:
        status = statuses.get(instance.instance_id)
        if status is None or (not status.online and not status.version):
            reason, detail = SkipReason.AGENT_MISSING, "Cloud Assistant agent is not installed"
        elif not status.online:
            reason = SkipReason.AGENT_OFFLINE
            detail = "Cloud Assistant agent sent no heartbeat in the last 2 minutes"
        else:
            runnable.append(instance)
            continue
        skipped.append(Skipped(instance.instance_id, reason, detail, instance.zone_id))
    return runnable


ZONES = ("cn-hangzhou-h", "cn-hangzhou-j")


def table_of(ids: list[str]) -> dict[str, Targets]:
    """The target shapes, over a fleet's instance IDs (more than 320 of them)."""
    return {
        "tags": Targets(tags={"app": "web"}),
        "tags-zones-exclude": Targets(tags={"app": "web"}, zones=ZONES, exclude=tuple(ids[::7])),
        "ids-over-chunks": Targets(instances=tuple(ids[::-1])),
        "ids-unknown-repeated": Targets(
            instances=(*ids[:120], "i-nope", ids[3], "i-nope2", *ids[200:260])
        ),
        "ids-and-tags": Targets(instances=(*ids[:150], "i-nope"), tags={"app": "web"}),
        "ids-excluded-zones": Targets(
            instances=tuple(ids[50:300]), zones=ZONES[:1], exclude=(*ids[60:90], "i-nope")
        ),
        "two-tags": Targets(tags={"app": "web", "os": "windows"}, exclude=tuple(ids[300:320])),
        "no-match": Targets(tags={"app": "none"}),
    }


TABLE = table_of([i.instance_id for i in MIXED.instances])


@pytest.mark.parametrize("name", sorted(TABLE))
@pytest.mark.parametrize("command_type", [SHELL, "RunPowerShellScript"])
async def test_the_resolution_is_the_sequential_one(name, command_type):
    """Same runnable order, same skipped (reasons, order), same excluded."""
    targets = TABLE[name]
    async with (
        serve(MIXED, clock=ManualClock()) as sim,
        client_of(sim.url, key_of(sim)) as client,
    ):
        expected = await sequential_resolve(targets, command_type, client)
        assert await resolve(targets, command_type, client) == expected
    assert expected.selected > 0 or name == "no-match"


# --- the simulator's side of the 100-ID limit ---------------------------------------


async def test_the_simulator_takes_100_status_ids_and_refuses_101():
    """DescribeCloudAssistantStatus: ≤ 100 InstanceId.N (DOC 2024-12); 101 → ExceedLimit."""
    fleet = fleet_of(101)
    ids = [i.instance_id for i in fleet.instances]
    async with Simulation(fleet, ManualClock()) as sim:
        ask = sim.handlers["DescribeCloudAssistantStatus"]

        def call(chosen: list[str]) -> Call:
            params = {f"InstanceId.{n}": i for n, i in enumerate(chosen, start=1)}
            return Call("DescribeCloudAssistantStatus", params, "key")

        answer = await ask(call(ids[:100]))
        listed = answer["InstanceCloudAssistantStatusSet"]["InstanceCloudAssistantStatus"]
        assert [s["InstanceId"] for s in listed] == ids[:100]
        with pytest.raises(SimApiError) as refused:
            await ask(call(ids))
        assert refused.value.code == "InstanceIds.ExceedLimit"
