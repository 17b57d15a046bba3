"""Tracking against the simulator over real HTTP: what it costs for long commands, that
finished invocations' results are read concurrently, and that a settled record is not
decoded again. Whole rollouts run on the fleet's scaled clock (no sleeps); a loopback
proxy in front of the simulator holds or rewrites answers where a test needs it."""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import aiohttp
import anyio
import pytest
from aiohttp import web
from yarl import URL

from orchestrator.api import InstanceStatus
from orchestrator.clock import ScaledClock
from orchestrator.ecs import Credentials, EcsClient, Instance, RateLimiter
from orchestrator.errors import TrackingAbandoned
from orchestrator.plan._model import Amount, Command, Limits, Plan, Targets, Wave
from orchestrator.rollout import Outcome, RecordingSink, run_rollout
from orchestrator.sim import load_fleet, serve
from orchestrator.testing import simulated

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from orchestrator.sim import RunningSimulator

pytestmark = pytest.mark.anyio

TRACKING = ("DescribeInvocations", "DescribeInvocationResults")


def fleet_yaml(count: int, *, duration: str, time_scale: float) -> str:
    return f"""
region: cn-hangzhou
seed: 5
time_scale: {time_scale}
quotas: {{invocations_daily: 100000, commands: 500, max_instances_per_call: 50}}
generate:
  - count: {count}
    zones: [cn-hangzhou-h, cn-hangzhou-i]
behaviour:
  default: {{duration: {duration}, delivery_delay: 0.1, output: "ok {{{{ACS::InstanceId}}}}\\n"}}
"""


def plan_of(*, timeout: int = 120, **limits: object) -> Plan:
    return Plan(
        name="tracking",
        targets=Targets(),
        command=Command(content="echo hello", timeout=timeout),
        waves=(Wave("all", Amount(100, percent=True)),),
        limits=Limits(**limits),  # type: ignore[arg-type]
    )


async def runnable(client: EcsClient) -> list[Instance]:
    return [i async for i in client.describe_instances() if i.status is InstanceStatus.RUNNING]


# --- the cost of long commands ---------------------------------------------------------


async def test_long_commands_cost_under_a_fifth_of_polling_each_batch_every_second():
    """2,000 instances in 40 batches, commands of 30-40 s: a script polling each batch
    every second makes ~40 x 35 = 1,400 Describe calls and 40 RunCommands; the tracker,
    polling on how long the batches have been quiet, makes at most a fifth of that in
    all, and its shared poll comes far less often than once a second."""
    async with simulated(fleet_yaml(2000, duration="{min: 30, max: 40}", time_scale=0.1)) as env:
        instances = await runnable(env.client)
        started = env.clock.monotonic()
        result = await run_rollout(
            plan_of(), env.client, instances, run_id="r-long", clock=env.clock, sink=RecordingSink()
        )
        lasted = env.clock.monotonic() - started
        assert result.counts()[Outcome.SUCCEEDED] == 2000
        calls = result.api_calls
        assert calls["RunCommand"] == 40
        assert calls["DescribeInvocationResults"] == 40  # one page per finished batch
        script = 40 * 35 + 40
        assert sum(calls.values()) <= script / 5, calls
        # The backoff itself (not only the shared poll): fewer polls than seconds run.
        assert calls["DescribeInvocations"] < lasted / 2, (calls, lasted)
        assert sum(env.sim.stats.count(action) for action in TRACKING) == sum(
            calls[action] for action in TRACKING
        )


# --- a proxy in front of the simulator ---------------------------------------------------

Rewrite = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
_HOP = {"content-length", "transfer-encoding", "connection", "content-encoding"}


@asynccontextmanager
async def proxied(sim: RunningSimulator, rewrite: Rewrite) -> AsyncIterator[str]:
    """A loopback HTTP proxy to `sim` that hands each JSON answer (with its action) to
    `rewrite` before passing it on; the URL to point a client at."""
    async with aiohttp.ClientSession() as upstream:

        async def forward(request: web.Request) -> web.Response:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
            url = URL(f"{sim.url}{request.raw_path}", encoded=True)
            body = await request.read()
            async with upstream.request(request.method, url, headers=headers, data=body) as got:
                document = json.loads(await got.read())
                status = got.status
            action = request.headers.get("x-acs-action", request.query.get("Action", ""))
            document = await rewrite(action, document)
            return web.json_response(document, status=status)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", forward)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            await runner.cleanup()


@asynccontextmanager
async def through_proxy(
    fleet: str, rewrite: Rewrite
) -> AsyncIterator[tuple[RunningSimulator, EcsClient, ScaledClock]]:
    spec = load_fleet(fleet)
    clock = ScaledClock(spec.time_scale)
    async with (
        serve(spec, clock=clock) as sim,
        proxied(sim, rewrite) as url,
        aiohttp.ClientSession() as http,
    ):
        client = EcsClient(
            url,
            http,
            Credentials.of(sim.access_key_id, sim.access_key_secret),
            region_id=sim.region,
            clock=clock,
            rng=random.Random(0),  # reproducible jitter
            rate_limiter=RateLimiter(clock),
        )
        yield sim, client, clock


# --- results read concurrently ----------------------------------------------------------


async def test_finished_invocations_results_are_read_concurrently():
    """Two batches end before the first poll; the proxy holds each DescribeInvocationResults
    answer until both requests have arrived. Read one after the other, the first would be
    held until the proxy gave up waiting (and said so); read concurrently, both pass."""
    both_arrived = anyio.Event()
    arrived: list[str] = []
    answered_alone: list[str] = []

    async def hold_results(action: str, document: dict[str, Any]) -> dict[str, Any]:
        if action != "DescribeInvocationResults":
            return document
        arrived.append(action)
        if len(arrived) == 2:
            both_arrived.set()
        with anyio.move_on_after(20):  # only bounds a failure: the sequential case
            await both_arrived.wait()
        if not both_arrived.is_set():
            answered_alone.append(action)
        return document

    fleet = fleet_yaml(4, duration="0.1", time_scale=0.5)
    async with through_proxy(fleet, hold_results) as (sim, client, clock):
        instances = await runnable(client)
        result = await run_rollout(
            plan_of(batch_size=2),
            client,
            instances,
            run_id="r-conc",
            clock=clock,
            sink=RecordingSink(),
        )
    assert result.counts()[Outcome.SUCCEEDED] == 4
    assert result.api_calls["DescribeInvocationResults"] == 2
    assert not answered_alone
    assert sorted(r.output for r in result.results) == sorted(
        f"ok {i.instance_id}\n" for i in instances
    )
    assert sim.stats.count("RunCommand") == 2


# --- a settled record is not decoded again ------------------------------------------------

# Two instances end at once, two run on for 20 s (in a batch of their own).
FAST_AND_SLOW = """
region: cn-hangzhou
seed: 5
time_scale: 0.2
quotas: {invocations_daily: 100000, commands: 500, max_instances_per_call: 50}
generate:
  - {count: 2, zones: [cn-hangzhou-h], tags: {speed: fast}}
  - {count: 2, zones: [cn-hangzhou-h], tags: {speed: slow}}
behaviour:
  default: {duration: 0.1, delivery_delay: 0.1, output: "ok\\n"}
  rules:
    - match: {tags: {speed: slow}}
      duration: 20
"""


def garble(record: dict[str, Any]) -> None:
    """Break every field of a listed record the tracker would read, but its id and status."""
    record.update(ExitCode="one", Output="not base64!", StartTime="yesterday")


def listed_records(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (invocation["InvokeId"], record)
        for invocation in document["Invocations"]["Invocation"]
        for record in invocation["InvokeInstances"]["InvokeInstance"]
    ]


async def test_garbage_in_a_record_already_settled_is_not_decoded():
    """From the listing after the one that showed a record finished, the proxy breaks
    the record's other fields: the tracker, which has settled it, never decodes it again,
    so the run goes on and ends with the result first seen."""
    seen_final: set[str] = set()  # invoke/instance already shown in a final state
    broken: list[str] = []

    async def break_settled(action: str, document: dict[str, Any]) -> dict[str, Any]:
        if action != "DescribeInvocations":
            return document
        for invoke_id, record in listed_records(document):
            key = f"{invoke_id}/{record['InstanceId']}"
            if key in seen_final:
                garble(record)
                broken.append(key)
            elif record["InvocationStatus"] == "Success":
                seen_final.add(key)
        return document

    async with through_proxy(FAST_AND_SLOW, break_settled) as (_sim, client, clock):
        instances = await runnable(client)
        result = await run_rollout(
            plan_of(batch_size=2),
            client,
            instances,
            run_id="r-garbage",
            clock=clock,
            sink=RecordingSink(),
        )
    assert broken  # settled records were listed again, broken
    assert result.halt is None
    assert result.counts()[Outcome.SUCCEEDED] == 4
    assert all(r.exit_code == 0 for r in result.results)


async def test_the_same_garbage_in_a_record_still_awaited_is_refused():
    """The records not finished yet (and then timed out) carry the garbage: each listing
    is refused (the client's InvalidResponse) until tracking gives up at the commands'
    deadline."""

    async def break_running(action: str, document: dict[str, Any]) -> dict[str, Any]:
        if action == "DescribeInvocations":
            for _, record in listed_records(document):
                if record["InvocationStatus"] != "Success":  # the slow ones, in any state
                    garble(record)
        return document

    async with through_proxy(FAST_AND_SLOW, break_running) as (_sim, client, clock):
        instances = await runnable(client)
        plan = plan_of(batch_size=2, timeout=5, delivery_timeout=5.0)
        with pytest.raises(TrackingAbandoned, match="does not follow the schema: ExitCode"):
            await run_rollout(
                plan, client, instances, run_id="r-bad", clock=clock, sink=RecordingSink()
            )
