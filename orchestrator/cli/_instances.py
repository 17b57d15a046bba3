"""`orchestrator instances`: what a plan's selectors would see, through real calls."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Final

from rich.table import Table

from orchestrator.cli._exit import ExitCode, make_console, run_async
from orchestrator.cli._json_output import SCHEMAS, Document, emit
from orchestrator.cli._wiring import Target, connect
from orchestrator.errors import PlanError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Collection, Mapping, Sequence

    from orchestrator.ecs import Instance

LISTED: Final = 20  # instances listed one by one without --limit (--json: all of them)


def _parse_tags(pairs: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise PlanError(f"--tag {pair!r}: expected KEY=VALUE", field="--tag", rule="KEY=VALUE")
        tags[key] = value
    return tags


def run(args: argparse.Namespace) -> int:
    console = make_console()

    async def main() -> int:
        tags = _parse_tags(args.tag)
        target = Target(
            region=args.region, endpoint=args.endpoint, sim=args.sim, profile=args.profile
        )
        async with connect(target) as conn:
            if not args.json:
                console.print(f"[dim]calling {conn.description}, region {conn.region}[/]")
            instances = [
                instance
                async for instance in conn.client.describe_instances(
                    tags=tags or None, zone_id=args.zone
                )
            ]
            statuses = await conn.client.describe_cloud_assistant_status(
                [i.instance_id for i in instances if i.status == "Running"]
            )
        online = {s.instance_id for s in statuses if s.online}
        limit = LISTED if args.limit is None else args.limit

        by_zone: Counter[tuple[str, str]] = Counter()
        for instance in instances:
            state: str = instance.status
            if state == "Running":
                state = (
                    "Running, agent online"
                    if instance.instance_id in online
                    else ("Running, agent offline")
                )
            by_zone[(instance.zone_id, state)] += 1

        if args.json:
            emit(
                instances_document(
                    conn.description, conn.region, instances, online, by_zone, limit=args.limit
                )
            )
            return ExitCode.OK
        summary = Table(title=f"{len(instances)} instances", title_justify="left")
        summary.add_column("zone")
        summary.add_column("state")
        summary.add_column("count", justify="right")
        for (zone, state), count in sorted(by_zone.items()):
            summary.add_row(zone, state, str(count))
        console.print(summary)

        listing = Table(show_edge=False)
        for column in ("instance", "name", "zone", "os", "status", "agent", "tags"):
            listing.add_column(column)
        for instance in instances[:limit]:
            agent = "online" if instance.instance_id in online else "-"
            listing.add_row(
                instance.instance_id,
                instance.name,
                instance.zone_id,
                instance.os_type,
                instance.status,
                agent,
                ", ".join(f"{k}={v}" for k, v in sorted(instance.tags.items())),
            )
        console.print(listing)
        if len(instances) > limit:
            console.print(f"[dim]... and {len(instances) - limit} more[/]")
        return ExitCode.OK

    return run_async(main)


def instances_document(
    endpoint: str,
    region: str,
    instances: Sequence[Instance],
    online: Collection[str],
    by_zone: Mapping[tuple[str, str], int],
    *,
    limit: int | None,
) -> Document:
    """`instances --json`: the counts by zone and state, and every instance (or the
    first `--limit`)."""
    listed = instances if limit is None else instances[:limit]
    return {
        "schema": SCHEMAS["instances"],
        "endpoint": endpoint,
        "region": region,
        "total": len(instances),
        "zones": [
            {"zone_id": zone, "state": state, "count": count}
            for (zone, state), count in sorted(by_zone.items())
        ],
        "instances": [
            {
                "instance_id": instance.instance_id,
                "name": instance.name,
                "zone_id": instance.zone_id,
                "os_type": instance.os_type,
                "status": instance.status.value,
                "agent_online": instance.instance_id in online,
                "tags": dict(sorted(instance.tags.items())),
            }
            for instance in listed
        ],
    }
