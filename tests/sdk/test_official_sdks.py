"""The official Alibaba Cloud Python SDKs, unchanged, against the simulator.

This is the judge of the simulator's fidelity: the Tea SDK (alibabacloud-ecs20140526,
V3 signatures by default, V1 on request) and the legacy SDK (aliyun-python-sdk-ecs on
aliyun-python-sdk-core, V1, JSON or XML) each run a whole rollout's worth of calls —
every action a run uses — and parse every answer with their own models.
The SDKs are synchronous, so they run in a worker thread while the simulator serves
in the event loop.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from alibabacloud_ecs20140526 import models as tea
from alibabacloud_ecs20140526.client import Client as TeaClient
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkecs.request.v20140526 import (
    DescribeAccountAttributesRequest,
    DescribeCloudAssistantStatusRequest,
    DescribeInstancesRequest,
    DescribeInvocationResultsRequest,
    DescribeInvocationsRequest,
    DescribeZonesRequest,
    RunCommandRequest,
    StopInvocationRequest,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from orchestrator.sim import RunningSimulator
    from orchestrator.testing import ManualClock

pytestmark = [pytest.mark.anyio, pytest.mark.sdk]

REGION = "cn-hangzhou"


def tea_client(sim: RunningSimulator, *, v1: bool) -> TeaClient:
    config = Config(
        access_key_id=sim.access_key_id,
        access_key_secret=sim.access_key_secret,
        endpoint=f"127.0.0.1:{sim.port}",
        protocol="http",
        region_id=REGION,
    )
    if v1:
        config.signature_algorithm = "v2"
    return TeaClient(config)


class TeaFlavour:
    """Every call through the Tea SDK's own request and response models."""

    def __init__(self, sim: RunningSimulator, *, v1: bool) -> None:
        self.client = tea_client(sim, v1=v1)

    def run_command(self, ids: list[str], token: str) -> str:
        body = self.client.run_command(
            tea.RunCommandRequest(
                region_id=REGION,
                type="RunShellScript",
                command_content="echo {{name}}",
                enable_parameter=True,
                parameters={"name": "world"},
                instance_id=ids,
                client_token=token,
                tag=[tea.RunCommandRequestTag(key="team", value="sre")],
                timeout=60,
            )
        ).body
        assert body.command_id.startswith("c-")
        return str(body.invoke_id)

    def instances_tagged(self, key: str, value: str) -> set[str]:
        found: set[str] = set()
        token = None
        while True:
            body = self.client.describe_instances(
                tea.DescribeInstancesRequest(
                    region_id=REGION,
                    max_results=10,
                    next_token=token,
                    tag=[tea.DescribeInstancesRequestTag(key=key, value=value)],
                )
            ).body
            found |= {i.instance_id for i in body.instances.instance}
            assert all(i.tags.tag for i in body.instances.instance)
            token = body.next_token
            if not token:
                return found

    def agents_online(self, ids: list[str]) -> dict[str, bool]:
        body = self.client.describe_cloud_assistant_status(
            tea.DescribeCloudAssistantStatusRequest(region_id=REGION, instance_id=ids)
        ).body
        return {
            s.instance_id: s.cloud_assistant_status == "true"
            for s in body.instance_cloud_assistant_status_set.instance_cloud_assistant_status
        }

    def invocation(self, invoke_id: str) -> tuple[str, dict[str, tuple[str, str]]]:
        body = self.client.describe_invocations(
            tea.DescribeInvocationsRequest(
                region_id=REGION,
                invoke_id=invoke_id,
                include_output=True,
                content_encoding="PlainText",
            )
        ).body
        (inv,) = body.invocations.invocation
        return inv.invocation_status, {
            i.instance_id: (i.invocation_status, i.output)
            for i in inv.invoke_instances.invoke_instance
        }

    def results(self, invoke_id: str) -> dict[str, tuple[str, int, str]]:
        body = self.client.describe_invocation_results(
            tea.DescribeInvocationResultsRequest(region_id=REGION, invoke_id=invoke_id)
        ).body
        return {
            r.instance_id: (r.invocation_status, r.exit_code, r.finished_time)
            for r in body.invocation.invocation_results.invocation_result
        }

    def stop(self, invoke_id: str, ids: list[str]) -> None:
        self.client.stop_invocation(
            tea.StopInvocationRequest(region_id=REGION, invoke_id=invoke_id, instance_id=ids)
        )

    def quotas(self) -> dict[str, str]:
        body = self.client.describe_account_attributes(
            tea.DescribeAccountAttributesRequest(
                region_id=REGION,
                attribute_name=["max-axt-command-count", "max-axt-invocation-daily"],
            )
        ).body
        return {
            item.attribute_name: item.attribute_values.value_item[0].value
            for item in body.account_attribute_items.account_attribute_item
        }

    def zones(self) -> dict[str, str]:
        body = self.client.describe_zones(
            tea.DescribeZonesRequest(region_id=REGION, verbose=False)
        ).body
        return {z.zone_id: z.local_name for z in body.zones.zone}

    def error_code(self, call: Callable[[], object]) -> tuple[str, int]:
        with pytest.raises(ClientException) as caught:
            call()
        return caught.value.code, caught.value.status_code

    def run_on_missing_instance(self) -> None:
        self.client.run_command(
            tea.RunCommandRequest(
                region_id=REGION,
                type="RunShellScript",
                command_content="true",
                instance_id=["i-missing"],
            )
        )


def _xml_to_dict(element: ET.Element) -> Any:
    children = list(element)
    if not children:
        return element.text or ""
    out: dict[str, Any] = {}
    for child in children:
        value = _xml_to_dict(child)
        if child.tag in out:
            if not isinstance(out[child.tag], list):
                out[child.tag] = [out[child.tag]]
            out[child.tag].append(value)
        else:
            out[child.tag] = value
    return out


class XmlApiError(Exception):
    """An XML error body, read by hand: the legacy SDK parses only JSON errors."""

    def __init__(self, code: str, status: int) -> None:
        super().__init__(code)
        self.code, self.status = code, status


class LegacyFlavour:
    """Every call through the legacy AcsClient, answers in JSON or in XML."""

    def __init__(self, sim: RunningSimulator, *, xml: bool) -> None:
        self.sim = sim
        self.xml = xml
        self.client = AcsClient(
            sim.access_key_id, sim.access_key_secret, REGION, port=sim.port, auto_retry=False
        )

    def call(self, request: Any) -> dict[str, Any]:
        request.set_endpoint("127.0.0.1")
        request.set_protocol_type("http")
        if not self.xml:
            return dict(json.loads(self.client.do_action_with_exception(request)))
        # do_action_with_exception forces JSON and parses only JSON errors, so XML goes
        # through the layer below it, which sends our Format and returns the raw answer.
        request.set_accept_format("XML")
        status, _, raw, _ = self.client._implementation_of_do_action(request)
        root = ET.fromstring(raw)  # noqa: S314 - our own simulator's answer
        if status >= 400:
            assert root.tag == "Error"
            raise XmlApiError(root.findtext("Code") or "", status)
        assert root.tag.endswith("Response")
        return dict(_xml_to_dict(root))

    @staticmethod
    def _list(value: Any) -> list[Any]:
        """XML folds a one-item list into the item itself."""
        if value in ("", None):
            return []
        return value if isinstance(value, list) else [value]

    def run_command(self, ids: list[str], token: str) -> str:
        request = RunCommandRequest.RunCommandRequest()
        request.set_Type("RunShellScript")
        request.set_CommandContent("echo {{name}}")
        request.set_EnableParameter(True)
        # The legacy setter sends str(dict) unless given JSON text (wire-format.md).
        request.set_Parameters(json.dumps({"name": "world"}))
        request.set_InstanceIds(ids)
        request.set_ClientToken(token)
        request.set_Tags([{"Key": "team", "Value": "sre"}])
        request.set_Timeout(60)
        return str(self.call(request)["InvokeId"])

    def instances_tagged(self, key: str, value: str) -> set[str]:
        found: set[str] = set()
        page = 1
        while True:
            request = DescribeInstancesRequest.DescribeInstancesRequest()
            request.set_Tags([{"Key": key, "Value": value}])
            request.set_PageSize(10)
            request.set_PageNumber(page)
            body = self.call(request)
            items = self._list(body["Instances"]["Instance"]) if body["Instances"] else []
            found |= {i["InstanceId"] for i in items}
            if page * 10 >= int(body["TotalCount"]):
                return found
            page += 1

    def agents_online(self, ids: list[str]) -> dict[str, bool]:
        request = DescribeCloudAssistantStatusRequest.DescribeCloudAssistantStatusRequest()
        request.set_InstanceIds(ids)
        body = self.call(request)
        items = self._list(body["InstanceCloudAssistantStatusSet"]["InstanceCloudAssistantStatus"])
        return {s["InstanceId"]: str(s["CloudAssistantStatus"]) == "true" for s in items}

    def invocation(self, invoke_id: str) -> tuple[str, dict[str, tuple[str, str]]]:
        request = DescribeInvocationsRequest.DescribeInvocationsRequest()
        request.set_InvokeId(invoke_id)
        request.set_IncludeOutput(True)
        request.set_ContentEncoding("PlainText")
        body = self.call(request)
        (inv,) = self._list(body["Invocations"]["Invocation"])
        instances = self._list(inv["InvokeInstances"]["InvokeInstance"])
        return inv["InvocationStatus"], {
            i["InstanceId"]: (i["InvocationStatus"], i["Output"]) for i in instances
        }

    def results(self, invoke_id: str) -> dict[str, tuple[str, int, str]]:
        request = DescribeInvocationResultsRequest.DescribeInvocationResultsRequest()
        request.set_InvokeId(invoke_id)
        body = self.call(request)
        records = self._list(body["Invocation"]["InvocationResults"]["InvocationResult"])
        return {
            r["InstanceId"]: (r["InvocationStatus"], int(r["ExitCode"]), r["FinishedTime"])
            for r in records
        }

    def stop(self, invoke_id: str, ids: list[str]) -> None:
        request = StopInvocationRequest.StopInvocationRequest()
        request.set_InvokeId(invoke_id)
        request.set_InstanceIds(ids)
        self.call(request)

    def quotas(self) -> dict[str, str]:
        request = DescribeAccountAttributesRequest.DescribeAccountAttributesRequest()
        request.set_AttributeNames(["max-axt-command-count", "max-axt-invocation-daily"])
        body = self.call(request)
        items = self._list(body["AccountAttributeItems"]["AccountAttributeItem"])
        return {
            i["AttributeName"]: self._list(i["AttributeValues"]["ValueItem"])[0]["Value"]
            for i in items
        }

    def zones(self) -> dict[str, str]:
        request = DescribeZonesRequest.DescribeZonesRequest()
        request.set_Verbose(False)
        body = self.call(request)
        return {z["ZoneId"]: z["LocalName"] for z in self._list(body["Zones"]["Zone"])}

    def error_code(self, call: Callable[[], object]) -> tuple[str, int]:
        with pytest.raises((ServerException, XmlApiError)) as caught:
            call()
        if isinstance(caught.value, XmlApiError):
            return caught.value.code, caught.value.status
        return caught.value.get_error_code(), caught.value.get_http_status()

    def run_on_missing_instance(self) -> None:
        request = RunCommandRequest.RunCommandRequest()
        request.set_Type("RunShellScript")
        request.set_CommandContent("true")
        request.set_InstanceIds(["i-missing"])
        self.call(request)


FLAVOURS: dict[str, Callable[[RunningSimulator], TeaFlavour | LegacyFlavour]] = {
    "tea-v3": lambda sim: TeaFlavour(sim, v1=False),
    "tea-v1": lambda sim: TeaFlavour(sim, v1=True),
    "legacy-json": lambda sim: LegacyFlavour(sim, xml=False),
    "legacy-xml": lambda sim: LegacyFlavour(sim, xml=True),
}


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_official_sdk_runs_a_rollout(flavour: str, sim: RunningSimulator, clock: ManualClock):
    """Inventory, zones, agent status, quotas, RunCommand (idempotent), tracking, results,
    StopInvocation and a typed error, all through an official SDK."""
    sdk = FLAVOURS[flavour](sim)

    async def call(fn: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(fn, *args)

    web = await call(sdk.instances_tagged, "app", "web")
    assert web == {"i-web1", "i-web2", "i-web3", "i-offline1", "i-stopped1"}
    assert await call(sdk.zones) == {
        "cn-hangzhou-h": "cn-hangzhou Zone H",
        "cn-hangzhou-i": "cn-hangzhou Zone I",
        "cn-hangzhou-j": "cn-hangzhou Zone J",
    }
    online = await call(sdk.agents_online, ["i-web1", "i-offline1"])
    assert online == {"i-web1": True, "i-offline1": False}
    assert await call(sdk.quotas) == {
        "max-axt-command-count": "20",
        "max-axt-invocation-daily": "1000",
    }

    invoke_id = await call(sdk.run_command, ["i-web1", "i-web2"], f"{flavour}-batch-1")
    assert await call(sdk.run_command, ["i-web1", "i-web2"], f"{flavour}-batch-1") == invoke_id

    clock.advance(10)
    status, instances = await call(sdk.invocation, invoke_id)
    assert status == "Success"
    nginx = ("Success", "nginx version: nginx/1.27.0\n")  # the fleet's simulated output
    assert instances == {"i-web1": nginx, "i-web2": nginx}
    results = await call(sdk.results, invoke_id)
    assert {k: v[:2] for k, v in results.items()} == {
        "i-web1": ("Success", 0),
        "i-web2": ("Success", 0),
    }
    assert all(v[2].endswith("Z") for v in results.values())
    assert sim.simulation.execution_counts()["i-web1"] == {invoke_id: 1}

    hang = await call(sdk.run_command, ["i-hang1"], f"{flavour}-batch-2")
    clock.advance(1)
    await call(sdk.stop, hang, ["i-hang1"])
    clock.advance(5)
    status, instances = await call(sdk.invocation, hang)
    assert instances["i-hang1"][0] == "Terminated"

    assert await call(sdk.error_code, sdk.run_on_missing_instance) == (
        "InvalidInstance.NotFound",
        404,
    )
