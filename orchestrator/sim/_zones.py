"""DescribeZones: the zones of the simulated region.

Not in the project's API reference; the shape is the official SDK's model
(alibabacloud-ecs20140526 7.11.8, `models/_describe_zones_response_body.py`):
`{Zones: {Zone: [{ZoneId, LocalName, ZoneType, ...}]}}`, not paged. The zones are those
the fleet's instances are in, sorted, minus the fleet file's `account.hidden_zones`: a
zone the real service may leave out of the list (closed to new purchases, or not
offering the charge type asked) while it still holds instances. `LocalName` is
`<region> Zone <letter>`, not the service's localised text; `InstanceChargeType`,
`SpotStrategy`, `AcceptLanguage` and `Verbose` are accepted and change nothing (no
resource detail is modelled).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.sim._actions import Account
    from orchestrator.sim._protocol import Call


def zone_name(region: str, zone_id: str) -> str:
    """`cn-hangzhou-h` → `cn-hangzhou Zone H` (the zone's letter after the region)."""
    letter = zone_id.removeprefix(region).lstrip("-") or zone_id
    return f"{region} Zone {letter.upper()}"


async def describe_zones(sim: Account, call: Call) -> dict[str, Any]:
    del call  # nothing narrows the list (module docstring); RegionId is checked before
    region = sim.fleet.region
    hidden = sim.fleet.account.hidden_zones
    zones = sorted({inst.zone for inst in sim.fleet.instances} - hidden)
    return {
        "Zones": {
            "Zone": [
                {"ZoneId": z, "LocalName": zone_name(region, z), "ZoneType": "AvailabilityZone"}
                for z in zones
            ]
        }
    }
