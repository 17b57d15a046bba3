"""What a tag listing split by zone needs: the region's zones (DescribeZones), and
DescribeInstances pages read with their TotalCount.

DescribeZones is not in the project's API reference; its wire shape is the official
SDK's model (alibabacloud-ecs20140526 7.11.8, `models/_describe_zones_request.py` and
`_describe_zones_response_body.py`; aliyun/alibabacloud-python-sdk, ecs-20140526), an
RPC action of version 2014-05-26 like the others, not paged:

- request: `RegionId` (required), `AcceptLanguage` (zh-CN by default: `LocalName`'s
  language), `InstanceChargeType` (PostPaid by default), `SpotStrategy` (NoSpot by
  default), `Verbose` (true by default: every zone's available resources, instance
  types and disk categories; we send false and read only the zones);
- answer: `{RequestId, Zones: {Zone: [{ZoneId, LocalName, ZoneType, ...}]}}`.

The zones listed are the ones that offer resources for the charge type asked, so a
zone closed to new purchases may still hold instances and not be listed (unconfirmed):
`targets.gather` never trusts the list alone, it checks the split listing's count.

TotalCount: the SDK's DescribeInstances model says it is meaningless when paging by
MaxResults and NextToken (api-schemas.md: "invalid"), so a NextToken page's TotalCount
is read as a hint only; the count to check against comes from a PageNumber page
(`count_instances`), where TotalCount is the number of matching instances.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator import api
from orchestrator.ecs._fields import integer, nested, required, text
from orchestrator.ecs._requests import encode_describe_instances, tag_list
from orchestrator.ecs._responses import Instance, decode_instances_page

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator.ecs._caller import Caller
    from orchestrator.ecs._retry import RetryPolicy


@dataclass(frozen=True, slots=True)
class Zone:
    """One zone of the region, as DescribeZones lists it."""

    zone_id: str
    local_name: str = ""


@dataclass(frozen=True, slots=True)
class InstancesPage:
    """One DescribeInstances page with its TotalCount (None when the answer has none).

    From a NextToken chain (`first_instances_page`) the count is only a hint (module
    docstring); `next_token` resumes the chain (`EcsClient.describe_instances(after=)`).
    """

    items: tuple[Instance, ...]
    next_token: str
    total_count: int | None


def decode_zones(body: Mapping[str, Any]) -> tuple[Zone, ...]:
    """DescribeZones' answer: `Zones.Zone[]`, each with `ZoneId` and `LocalName`."""
    return tuple(
        Zone(required(zone, "ZoneId"), text(zone, "LocalName"))
        for zone in nested(body, "Zones", "Zone")
    )


def decode_counted_page(body: Mapping[str, Any]) -> InstancesPage:
    """A DescribeInstances page and its top-level `TotalCount`."""
    page = decode_instances_page(body)
    total = integer(body, "TotalCount")
    if total is not None and total < 0:
        raise ValueError("TotalCount is negative")
    return InstancesPage(page.items, page.next_token, total)


async def describe_zones(caller: Caller, retry: RetryPolicy | None) -> tuple[Zone, ...]:
    """The region's zones, without the detail (`Verbose=false`)."""
    answer = await caller.call("DescribeZones", {"Verbose": "false"}, policy=retry)
    return caller.decode("DescribeZones", answer, decode_zones)


async def first_instances_page(
    caller: Caller, tags: Mapping[str, str], retry: RetryPolicy | None
) -> InstancesPage:
    """The first page (100 instances) of the NextToken chain of a tag selection."""
    params = encode_describe_instances(tags=tags, max_results=api.DESCRIBE_INSTANCES_MAX_RESULTS)
    answer = await caller.call("DescribeInstances", params, policy=retry)
    return caller.decode("DescribeInstances", answer, decode_counted_page)


async def count_instances(
    caller: Caller, tags: Mapping[str, str], retry: RetryPolicy | None
) -> int | None:
    """How many instances carry `tags`, from a PageNumber page of one instance (its
    TotalCount is the count, unlike a NextToken page's); None if the answer has none."""
    params = {"PageNumber": "1", "PageSize": "1"} | tag_list("Tag", tags)
    answer = await caller.call("DescribeInstances", params, policy=retry)
    return caller.decode("DescribeInstances", answer, decode_counted_page).total_count
