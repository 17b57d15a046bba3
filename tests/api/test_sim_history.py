"""The simulator ages out finished invocations, as the real service's history window
does: at most `history.max_finished` finished ones are kept, none finished longer ago
than `history.max_age`; one still running is never aged out, and the execution counts
(what every exactly-once proof reads) keep every execution of the aged-out ones.

Calls go straight to `Simulation.handlers` on a hand-moved clock, as in test_sim_domain.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from orchestrator.sim import FleetError, HistorySpec
from orchestrator.sim._fleet import load_fleet
from orchestrator.sim._protocol import Call, SimApiError
from orchestrator.sim._simulation import Simulation
from orchestrator.testing import ManualClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.anyio

SMALL = Path(__file__).resolve().parents[2] / "plans" / "fleets" / "small.yaml"
FLEET = load_fleet(SMALL)
DURATION = 2.0  # the small fleet's default command runs 2 s after a 0.5 s delivery


@asynccontextmanager
async def simulation(history: HistorySpec) -> AsyncIterator[tuple[Simulation, ManualClock]]:
    clock = ManualClock()
    async with Simulation(replace(FLEET, history=history), clock) as sim:
        yield sim, clock


async def call(sim: Simulation, action: str, **params: str) -> dict[str, Any]:
    return await sim.handlers[action](Call(action, params, "testid"))


async def run(sim: Simulation, *ids: str) -> str:
    params = {"RegionId": "cn-hangzhou", "Type": "RunShellScript", "CommandContent": "echo hi"}
    params |= {f"InstanceId.{n}": i for n, i in enumerate(ids, 1)}
    return str((await call(sim, "RunCommand", **params))["InvokeId"])


async def listed(sim: Simulation, invoke_id: str) -> tuple[int, int]:
    """(invocations, results) the Describe calls show for `invoke_id`."""
    invocations = await call(sim, "DescribeInvocations", RegionId="cn-hangzhou", InvokeId=invoke_id)
    results = await call(
        sim, "DescribeInvocationResults", RegionId="cn-hangzhou", InvokeId=invoke_id
    )
    return (
        len(invocations["Invocations"]["Invocation"]),
        len(results["Invocation"]["InvocationResults"]["InvocationResult"]),
    )


def finished_held(sim: Simulation, clock: ManualClock) -> int:
    now = clock.now()
    return sum(1 for inv in sim.invocations.values() if inv.finished_at(now) is not None)


async def test_at_most_max_finished_are_held_and_every_execution_is_still_counted():
    runs = 40
    async with simulation(HistorySpec(max_finished=5, max_age=10**6)) as (sim, clock):
        ids = []
        for _ in range(runs):
            ids.append(await run(sim, "i-web1", "i-web2"))
            clock.advance(DURATION + 1)  # each one finishes before the next is sent
            assert finished_held(sim, clock) <= 5 + 1  # the newest finishes between calls
        await call(sim, "DescribeInvocations", RegionId="cn-hangzhou")  # ages out too
        assert len(sim.invocations) <= 5
        assert finished_held(sim, clock) <= 5
        # The held set does not grow with the number of RunCommands.
        assert set(sim.invocations) <= set(ids[-5:])
        # Aged out: not listed, not stoppable (the real API's answers for an old InvokeId).
        assert await listed(sim, ids[0]) == (0, 0)
        with pytest.raises(SimApiError) as stopped:
            await call(sim, "StopInvocation", RegionId="cn-hangzhou", InvokeId=ids[0])
        assert stopped.value.code == "InvalidInvokeId.NotFound"
        assert await listed(sim, ids[-1]) == (1, 2)
        # Every execution, aged out or held, is still in the counts.
        counts = sim.execution_counts()
        assert set(counts) == {"i-web1", "i-web2"}
        for per in counts.values():
            assert per == dict.fromkeys(ids, 1)


async def test_a_running_invocation_is_never_aged_out():
    async with simulation(HistorySpec(max_finished=1, max_age=1)) as (sim, clock):
        hanging = await run(sim, "i-hang1")  # the small fleet's hang instance never ends
        for _ in range(5):
            await run(sim, "i-web1")
            clock.advance(DURATION + 1)
        await run(sim, "i-web1")
        assert hanging in sim.invocations
        assert await listed(sim, hanging) == (1, 1)
        assert len(sim.invocations) <= 3  # the hanging one, at most one finished, the new


async def test_finished_invocations_older_than_max_age_are_aged_out():
    async with simulation(HistorySpec(max_finished=100, max_age=60)) as (sim, clock):
        old = await run(sim, "i-web1")
        clock.advance(DURATION + 1)
        assert await listed(sim, old) == (1, 1)  # finished, but young
        clock.advance(61)
        assert await listed(sim, old) == (0, 0)
        assert sim.execution_counts() == {"i-web1": {old: 1}}


async def test_the_defaults_keep_a_month_and_ten_thousand():
    assert FLEET.history == HistorySpec(max_finished=10_000, max_age=30 * 86_400)


@pytest.mark.parametrize(
    ("history", "field"),
    [
        ("{max_finished: 0}", "fleet.history.max_finished: must be >= 1"),
        ("{max_age: 0}", "fleet.history.max_age: must be > 0"),
        ("{max_keep: 3}", "fleet.history"),
    ],
)
def test_a_bad_history_names_its_field(history: str, field: str):
    with pytest.raises(FleetError) as caught:
        load_fleet(f"region: cn-hangzhou\nhistory: {history}\n")
    assert field in str(caught.value)


def test_the_fleet_file_sets_the_history():
    fleet = load_fleet("region: cn-hangzhou\nhistory: {max_finished: 7, max_age: 90}\n")
    assert fleet.history == HistorySpec(max_finished=7, max_age=90)
