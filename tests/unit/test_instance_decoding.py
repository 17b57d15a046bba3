"""DescribeInstances pages decode into Instances that keep every field (the journal,
`instances`, `show` and the reports read them) while what a fleet repeats is held once:
one string per zone, OS, type, tag key and value, one mapping per tag set, one datetime
per creation time, across pages, however many instances share them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from orchestrator import api
from orchestrator.ecs import Instance
from orchestrator.ecs._responses import decode_instances_page


def item(n: int, *, tags: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "InstanceId": f"i-{n:06d}",
        "InstanceName": f"web-{n}",
        "Status": "Running",
        "ZoneId": "cn-hangzhou-h",
        "RegionId": "cn-hangzhou",
        "OSType": "linux",
        "OSName": "Alibaba Cloud Linux 3",
        "HostName": f"iZweb{n}Z",
        "InstanceType": "ecs.g7.large",
        "ResourceGroupId": "rg-prod",
        "CreationTime": "2026-01-05T08:30Z",
        "VpcAttributes": {"PrivateIpAddress": {"IpAddress": [f"10.0.{n // 256}.{n % 256}"]}},
        "Tags": {"Tag": [{"TagKey": k, "TagValue": v} for k, v in (tags or {}).items()]},
    }


def page(items: list[dict[str, Any]]) -> tuple[Instance, ...]:
    """Decoded from JSON text, as the client gets it: every value a string of its own."""
    body = json.loads(json.dumps({"RequestId": "r", "Instances": {"Instance": items}}))
    return decode_instances_page(body).items


def test_every_field_is_kept() -> None:
    (instance,) = page([item(7, tags={"app": "web", "env": "prod"})])
    assert instance == Instance(
        instance_id="i-000007",
        name="web-7",
        status=api.InstanceStatus.RUNNING,
        zone_id="cn-hangzhou-h",
        region_id="cn-hangzhou",
        os_type="linux",
        os_name="Alibaba Cloud Linux 3",
        hostname="iZweb7Z",
        instance_type="ecs.g7.large",
        resource_group_id="rg-prod",
        creation_time=datetime(2026, 1, 5, 8, 30, tzinfo=UTC),
        private_ips=("10.0.0.7",),
        tags={"app": "web", "env": "prod"},
    )


def test_what_instances_repeat_is_held_once_across_pages() -> None:
    first = page([item(n, tags={"app": "web"}) for n in range(3)])
    second = page([item(n, tags={"app": "web"}) for n in range(3, 6)])
    a, b = first[0], second[-1]
    for name in ("zone_id", "region_id", "os_type", "os_name", "instance_type"):
        assert getattr(a, name) is getattr(b, name), name
    assert a.resource_group_id is b.resource_group_id
    assert a.tags is b.tags
    assert a.creation_time is b.creation_time
    assert a.instance_id != b.instance_id
    assert a.private_ips != b.private_ips


def test_different_tags_stay_different_and_read_only() -> None:
    web, db, untagged = page([item(1, tags={"app": "web"}), item(2, tags={"app": "db"}), item(3)])
    assert dict(web.tags) == {"app": "web"}
    assert dict(db.tags) == {"app": "db"}
    assert dict(untagged.tags) == {}
    assert web.tags is not db.tags
    assert not hasattr(web.tags, "__setitem__")


def test_a_fleet_of_all_different_tags_decodes_each_right() -> None:
    """More distinct tag sets than the shared table holds: it starts over, nothing is lost."""
    instances = [
        decoded
        for start in range(0, 10_000, 100)
        for decoded in page([item(n, tags={"n": str(n)}) for n in range(start, start + 100)])
    ]
    assert [i.tags["n"] for i in instances] == [str(n) for n in range(10_000)]
