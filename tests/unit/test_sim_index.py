"""The simulator's indexed DescribeInstances against a brute-force filter of the fleet.

Random fleets (zones, statuses, types, names, tags) and random filters (InstanceIds,
Status, ZoneId, InstanceType, InstanceName with `*`, Tag.N with and without a value),
walked to the end with NextToken and with PageNumber, in random page sizes: the IDs are
exactly those the reference filter finds, in fleet order, with the true TotalCount.
The reference is the whole-fleet scan DescribeInstances used to do on every page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator import api
from orchestrator.sim import FleetSpec
from orchestrator.sim._fleet import InstanceSpec
from orchestrator.sim._index import KEPT_QUERIES
from orchestrator.sim._protocol import Call, SimApiError
from orchestrator.sim._simulation import Simulation
from orchestrator.testing import ManualClock

if TYPE_CHECKING:
    from collections.abc import Mapping

ZONES = ("z-a", "z-b", "z-c")
TYPES = ("ecs.t1", "ecs.t2")
KEYS = ("app", "env", "team")
VALUES = ("web", "api", "")
NAMES = ("web-1", "web-2", "api-1", "db")
CREATED = datetime(2024, 1, 1, tzinfo=UTC)


@st.composite
def instances(draw: st.DrawFn) -> tuple[InstanceSpec, ...]:
    count = draw(st.integers(0, 40))
    ids = draw(
        st.lists(
            st.text("abcdef0123", min_size=1, max_size=4),
            min_size=count,
            max_size=count,
            unique=True,
        )
    )
    specs = []
    for instance_id in ids:
        tag_keys = draw(st.lists(st.sampled_from(KEYS), max_size=3, unique=True))
        specs.append(
            InstanceSpec(
                instance_id=f"i-{instance_id}",
                name=draw(st.sampled_from(NAMES)),
                zone=draw(st.sampled_from(ZONES)),
                tags=tuple((key, draw(st.sampled_from(VALUES))) for key in tag_keys),
                os="linux",
                status=draw(st.sampled_from(api.INSTANCE_STATUSES)),
                agent="online",
                agent_version="2.2.3.857",
                instance_type=draw(st.sampled_from(TYPES)),
                os_name="Linux",
                created=CREATED,
            )
        )
    return tuple(specs)


@dataclass(frozen=True)
class Filters:
    ids: tuple[str, ...] | None
    status: str
    zone: str
    instance_type: str
    name: str
    tags: tuple[tuple[str, str | None], ...]

    def params(self) -> dict[str, str]:
        out: dict[str, str] = {"RegionId": "cn-hangzhou"}
        if self.ids is not None:
            out["InstanceIds"] = "[" + ",".join(f'"{i}"' for i in self.ids) + "]"
        named = {
            "Status": self.status,
            "ZoneId": self.zone,
            "InstanceType": self.instance_type,
            "InstanceName": self.name,
        }
        out.update({name: value for name, value in named.items() if value})
        for n, (key, value) in enumerate(self.tags, start=1):
            out[f"Tag.{n}.Key"] = key
            if value is not None:
                out[f"Tag.{n}.Value"] = value
        return out

    def matches(self, inst: InstanceSpec) -> bool:
        """The brute-force reference: every filter, AND-ed, on one instance."""
        if self.ids is not None and inst.instance_id not in self.ids:
            return False
        if self.status and inst.status != self.status:
            return False
        if self.zone and inst.zone != self.zone:
            return False
        if self.instance_type and inst.instance_type != self.instance_type:
            return False
        if self.name:
            pattern = "^" + ".*".join(map(re.escape, self.name.split("*"))) + "$"
            if not re.match(pattern, inst.name):
                return False
        return all(
            any(k == key and (value is None or v == value) for k, v in inst.tags)
            for key, value in self.tags
        )


def filters(fleet: tuple[InstanceSpec, ...]) -> st.SearchStrategy[Filters]:
    known = [inst.instance_id for inst in fleet]
    some_ids = st.lists(st.sampled_from([*known, "i-unknown"]), max_size=6)
    return st.builds(
        Filters,
        ids=st.none() | some_ids.map(tuple),
        status=st.sampled_from(("", *api.INSTANCE_STATUSES)),
        zone=st.sampled_from(("", *ZONES, "z-none")),
        instance_type=st.sampled_from(("", *TYPES)),
        name=st.sampled_from(("", "web-*", "*-1", "db", "*")),
        tags=st.lists(
            st.tuples(st.sampled_from(KEYS), st.none() | st.sampled_from(VALUES)), max_size=3
        ).map(tuple),
    )


async def _ask(sim: Simulation, params: Mapping[str, str]) -> dict[str, Any]:
    return await sim.handlers["DescribeInstances"](Call("DescribeInstances", params, "key"))


async def _by_token(sim: Simulation, params: dict[str, str], size: int) -> tuple[list[str], int]:
    ids: list[str] = []
    token = ""
    totals = set()
    while True:
        page = await _ask(sim, {**params, "MaxResults": str(size), "NextToken": token})
        ids += [i["InstanceId"] for i in page["Instances"]["Instance"]]
        totals.add(page["TotalCount"])
        token = page["NextToken"]
        if not token:
            break
    assert len(totals) == 1
    return ids, totals.pop()


async def _by_number(sim: Simulation, params: dict[str, str], size: int) -> list[str]:
    ids: list[str] = []
    number = 1
    while True:
        page = await _ask(sim, {**params, "PageNumber": str(number), "PageSize": str(size)})
        shown = [i["InstanceId"] for i in page["Instances"]["Instance"]]
        if not shown:
            return ids
        ids += shown
        number += 1


BOUNDED = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@BOUNDED
@given(data=st.data(), fleet=instances())
def test_indexed_answers_are_the_brute_force_filter_on_every_page(
    data: st.DataObject, fleet: tuple[InstanceSpec, ...]
):
    """Across NextToken pages and PageNumber pages alike."""
    queries = data.draw(st.lists(filters(fleet), min_size=1, max_size=4))
    sizes = data.draw(st.lists(st.integers(1, 30), min_size=len(queries), max_size=len(queries)))

    async def check() -> None:
        sim = Simulation(FleetSpec(instances=fleet), ManualClock())
        for query, size in zip(queries, sizes, strict=True):
            expected = [inst.instance_id for inst in fleet if query.matches(inst)]
            params = query.params()
            # MaxResults below 10 is read as 10 (DescribeInstances clamps): pages still add up.
            by_token, total = await _by_token(sim, params, size)
            assert by_token == expected
            assert total == len(expected)
            assert await _by_number(sim, params, size) == expected

    anyio.run(check)


def test_many_queries_interleaved_still_page_right():
    """More queries than the index keeps, their pages interleaved: each listing is whole."""
    fleet = tuple(
        InstanceSpec(
            f"i-{n:03d}", "web", ZONES[n % 3], (("n", str(n % (KEPT_QUERIES + 5))),), "linux",
            "Running", "online", "2.2.3.857", "ecs.t1", "Linux", CREATED,
        )
        for n in range(3 * (KEPT_QUERIES + 5))
    )  # fmt: skip

    async def check() -> None:
        sim = Simulation(FleetSpec(instances=fleet), ManualClock())
        values = [str(v) for v in range(KEPT_QUERIES + 5)]
        seen: dict[str, list[str]] = {v: [] for v in values}
        for _ in range(3):  # each value matches 3 instances: 3 pages of 1, round-robin
            for value in values:
                params = {"Tag.1.Key": "n", "Tag.1.Value": value, "PageSize": "1"}
                number = len(seen[value]) + 1
                page = await _ask(sim, {**params, "PageNumber": str(number)})
                seen[value] += [i["InstanceId"] for i in page["Instances"]["Instance"]]
        for value in values:
            assert seen[value] == [i.instance_id for i in fleet if i.tags[0][1] == value]

    anyio.run(check)


def test_a_foreign_token_is_still_refused():
    """The token stays opaque: garbage is InvalidParameter.NextToken, as before."""

    async def check() -> None:
        sim = Simulation(FleetSpec(), ManualClock())
        for token in ("garbage", "c2ltOng", "bm90LXNpbTo1"):
            with pytest.raises(SimApiError) as refused:
                await _ask(sim, {"MaxResults": "10", "NextToken": token})
            assert refused.value.code == "InvalidParameter.NextToken"

    anyio.run(check)
