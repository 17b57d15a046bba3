"""The simulator's domain through its handlers, on a hand-advanced clock.

Calls go straight to `Simulation.handlers` as `Call` objects (no HTTP): the status life
cycle needs exact control of time, which the `ManualClock` below gives.
"""

from __future__ import annotations

import base64
import json
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from orchestrator.sim._fleet import FleetSpec, QuotaSpec, load_fleet
from orchestrator.sim._protocol import Call, SimApiError
from orchestrator.sim._simulation import Simulation

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

SMALL = Path(__file__).resolve().parents[2] / "plans" / "fleets" / "small.yaml"
FLEET = load_fleet(SMALL)
T0 = datetime(2025, 3, 1, 23, 0, tzinfo=UTC)


class ManualClock:
    """A Clock that moves only when the test says `advance`."""

    def __init__(self, start: datetime = T0) -> None:
        self._start = start
        self._elapsed = 0.0
        self._moved = anyio.Event()

    def monotonic(self) -> float:
        return self._elapsed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    async def sleep(self, seconds: float) -> None:
        target = self._elapsed + seconds
        while self._elapsed < target:
            await self._moved.wait()

    def advance(self, seconds: float) -> None:
        self._elapsed += seconds
        self._moved.set()
        self._moved = anyio.Event()


class Env:
    """A simulation, its clock and call helpers."""

    def __init__(self, sim: Simulation, clock: ManualClock) -> None:
        self.sim = sim
        self.clock = clock

    async def call(self, action: str, key: str = "testid", **params: Any) -> dict[str, Any]:
        wire = {k.replace("_", "."): str(v) for k, v in params.items()}
        return await self.sim.handlers[action](Call(action, wire, key))

    async def fails(self, action: str, **params: Any) -> SimApiError:
        with pytest.raises(SimApiError) as caught:
            await self.call(action, **params)
        return caught.value

    async def run(self, *ids: str, content: str = "echo hi", **extra: Any) -> str:
        params = {"RegionId": "cn-hangzhou", "Type": "RunShellScript", "CommandContent": content}
        params |= {f"InstanceId_{n}": i for n, i in enumerate(ids, 1)} | extra
        body = await self.call("RunCommand", **params)
        assert body["CommandId"].startswith("c-")
        return str(body["InvokeId"])

    async def results(self, invoke_id: str, **extra: Any) -> dict[str, dict[str, Any]]:
        body = await self.call("DescribeInvocationResults", InvokeId=invoke_id, **extra)
        rows = body["Invocation"]["InvocationResults"]["InvocationResult"]
        return {row["InstanceId"]: row for row in rows}

    async def invocation(self, invoke_id: str, **extra: Any) -> dict[str, Any]:
        body = await self.call("DescribeInvocations", InvokeId=invoke_id, **extra)
        (found,) = body["Invocations"]["Invocation"]
        return dict(found)


@asynccontextmanager
async def _env(fleet: FleetSpec = FLEET) -> AsyncIterator[Env]:
    clock = ManualClock()
    async with Simulation(fleet, clock) as sim:
        yield Env(sim, clock)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with _env() as made:
        yield made


def _fleet(**changes: Any) -> FleetSpec:
    return replace(FLEET, **changes)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --- life cycle -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_success_life_cycle(env: Env) -> None:
    """Pending until delivery, Running for the duration, then Success with exit 0."""
    invoke_id = await env.run("i-web1")
    assert (await env.results(invoke_id))["i-web1"]["InvocationStatus"] == "Pending"
    assert (await env.invocation(invoke_id))["InvocationStatus"] == "Pending"
    env.clock.advance(0.5)
    row = (await env.results(invoke_id))["i-web1"]
    assert (row["InvocationStatus"], row["InvokeRecordStatus"]) == ("Running", "Running")
    assert row["StartTime"] == "2025-03-01T23:00:00Z"
    assert row["FinishedTime"] == ""
    env.clock.advance(2)
    row = (await env.results(invoke_id))["i-web1"]
    assert row["InvocationStatus"] == "Success"
    assert row["InvokeRecordStatus"] == "Finished"
    assert (row["ExitCode"], row["ErrorCode"], row["ErrorInfo"]) == (0, "", "")
    assert row["Output"] == _b64("nginx version: nginx/1.27.0\n")
    assert row["FinishedTime"] == "2025-03-01T23:00:02Z"
    assert row["StopTime"] == ""
    assert "FinishTime" not in row
    assert row["Repeats"] == 1
    assert row["Username"] == "root"
    inv = await env.invocation(invoke_id)
    assert (inv["InvocationStatus"], inv["InvokeStatus"]) == ("Success", "Finished")
    assert env.sim.execution_counts() == {"i-web1": {invoke_id: 1}}


@pytest.mark.anyio
async def test_failure_and_partial_failure(env: Env) -> None:
    """A non-zero exit is Failed/ExitCodeNonzero, record Finished; mixed gives PartialFailed."""
    invoke_id = await env.run("i-legacy1", "i-web2")
    env.clock.advance(3)
    rows = await env.results(invoke_id, ContentEncoding="PlainText")
    failed = rows["i-legacy1"]
    assert failed["InvocationStatus"] == "Failed"
    assert failed["InvokeRecordStatus"] == "Finished"
    assert (failed["ExitCode"], failed["ErrorCode"]) == (127, "ExitCodeNonzero")
    assert failed["ErrorInfo"] == "the command execution exit code is not zero."
    assert failed["Output"] == "sh: nginx: command not found\n"
    assert (await env.invocation(invoke_id))["InvocationStatus"] == "PartialFailed"
    only_failed = await env.run("i-legacy1")
    env.clock.advance(3)
    inv = await env.invocation(only_failed)
    assert (inv["InvocationStatus"], inv["InvokeStatus"]) == ("Failed", "Finished")


@pytest.mark.anyio
async def test_hang_times_out(env: Env) -> None:
    """A hanging run stays Running until Timeout, then Timeout/ExecutionTimeout."""
    invoke_id = await env.run("i-hang1", Timeout=10)
    env.clock.advance(10.4)
    assert (await env.results(invoke_id))["i-hang1"]["InvocationStatus"] == "Running"
    env.clock.advance(0.2)
    row = (await env.results(invoke_id))["i-hang1"]
    assert (row["InvocationStatus"], row["ErrorCode"]) == ("Timeout", "ExecutionTimeout")
    assert row["ErrorInfo"] == "the command execution has been timeout"
    assert row["InvokeRecordStatus"] == "Failed"
    start = datetime.strptime(row["StartTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    finish = datetime.strptime(row["FinishedTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert finish - start == timedelta(seconds=10)
    assert (await env.invocation(invoke_id))["InvocationStatus"] == "Failed"
    assert env.sim.execution_counts() == {"i-hang1": {invoke_id: 1}}


@pytest.mark.anyio
async def test_offline_agent_is_aborted_after_the_window(env: Env) -> None:
    """An offline agent's record stays Pending 60 s, then Aborted/ClientNotResponse."""
    invoke_id = await env.run("i-offline1")
    env.clock.advance(59)
    assert (await env.results(invoke_id))["i-offline1"]["InvocationStatus"] == "Pending"
    env.clock.advance(1)
    row = (await env.results(invoke_id))["i-offline1"]
    assert (row["InvocationStatus"], row["ErrorCode"]) == ("Aborted", "ClientNotResponse")
    assert row["StartTime"] == ""
    assert (await env.invocation(invoke_id))["InvocationStatus"] == "Failed"
    assert env.sim.execution_counts() == {}


@pytest.mark.anyio
async def test_old_agent_needs_upgrade_for_frequency(env: Env) -> None:
    """An agent older than 2.2.3.282 fails a scheduled task with ClientNeedUpgrade."""
    invoke_id = await env.run("i-old1", "i-api1", Frequency="rate(5m)")
    env.clock.advance(1)
    rows = await env.results(invoke_id)
    assert (rows["i-old1"]["InvocationStatus"], rows["i-old1"]["ErrorCode"]) == (
        "Failed",
        "ClientNeedUpgrade",
    )
    assert rows["i-api1"]["InvocationStatus"] == "Scheduled"


# --- RunCommand stateful errors ---------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("ids", "extra", "code", "status"),
    [
        (["i-nope"], {}, "InvalidInstance.NotFound", 404),
        (["i-web1", "i-stopped1"], {}, "InvalidInstance.NotMatch", 400),
        (["i-noagent1"], {}, "InvalidInstance.NotMatch", 400),
        (["i-win1"], {}, "InvalidInstance.NotMatch", 400),
        (["i-web1"], {"Type": "RunPowerShellScript"}, "InvalidInstance.NotMatch", 400),
        (["i-web1"], {"RegionId": "cn-beijing"}, "InvalidRegionId.NotFound", 404),
        ([], {"ResourceTag_1_Key": "app", "ResourceTag_1_Value": "none"},
         "InvalidResourceTag.InstanceNotFound", 400),
        (["i-web1"], {"RepeatMode": "DryRun"}, "DryRunOperation", 400),
    ],
)  # fmt: skip
async def test_run_command_stateful_errors(
    env: Env, ids: list[str], extra: dict[str, str], code: str, status: int
) -> None:
    """Each stateful check refuses the whole call with the service's code and status."""
    params = {"RegionId": "cn-hangzhou", "Type": "RunShellScript", "CommandContent": "echo"}
    params |= {f"InstanceId_{n}": i for n, i in enumerate(ids, 1)} | extra
    error = await env.fails("RunCommand", **params)
    assert (error.code, error.http_status) == (code, status)
    assert env.sim.invocations == {}
    assert env.sim.quota_usage().invocations_today == 0


@pytest.mark.anyio
async def test_region_may_be_omitted_and_windows_runs_on_windows(env: Env) -> None:
    """Without RegionId the fleet's region is assumed; PowerShell runs on a Windows host."""
    body = await env.call(
        "RunCommand", Type="RunPowerShellScript", CommandContent="dir", InstanceId_1="i-win1"
    )
    env.clock.advance(3)
    row = (await env.results(body["InvokeId"]))["i-win1"]
    assert row["InvocationStatus"] == "Success"
    assert row["Username"] == "System"


@pytest.mark.anyio
async def test_resource_tags_select_all_matching_instances(env: Env) -> None:
    """ResourceTag.N selects the instances carrying all the tags."""
    body = await env.call(
        "RunCommand",
        Type="RunShellScript",
        CommandContent="echo",
        ResourceTag_1_Key="app",
        ResourceTag_1_Value="api",
        ResourceTag_2_Key="env",
        ResourceTag_2_Value="prod",
    )
    assert set(env.sim.invocations[body["InvokeId"]].records) == {"i-api1", "i-api2"}


@pytest.mark.anyio
async def test_resource_tags_over_the_limit() -> None:
    """More matched instances than max_instances_per_call → 403 InstanceIds.ExceedLimit."""
    async with _env(_fleet(quotas=QuotaSpec(max_instances_per_call=2))) as env:
        error = await env.fails(
            "RunCommand",
            Type="RunShellScript",
            CommandContent="echo",
            ResourceTag_1_Key="app",
            ResourceTag_1_Value="web",
        )
        assert (error.code, error.http_status) == ("InstanceIds.ExceedLimit", 403)


@pytest.mark.anyio
async def test_daily_quota_counts_instances_and_rolls_over() -> None:
    """The daily quota counts instance runs; it refuses, then resets at UTC midnight."""
    async with _env(_fleet(quotas=QuotaSpec(invocations_daily=3))) as env:
        await env.run("i-web1", "i-web2")
        error = await env.fails(
            "RunCommand", Type="RunShellScript", CommandContent="x",
            InstanceId_1="i-web1", InstanceId_2="i-web2",
        )  # fmt: skip
        assert (error.code, error.http_status) == ("Invocation.ExceedQuota", 403)
        await env.run("i-web3")
        assert env.sim.quota_usage().invocations_today == 3
        env.clock.advance(3600)  # 23:00 → 00:00 the next day
        await env.run("i-web1", "i-web2")
        assert env.sim.quota_usage().invocations_today == 2


@pytest.mark.anyio
async def test_kept_command_quota() -> None:
    """KeepCommand=true beyond the kept-command quota → 403 CmdCount.ExceedQuota."""
    async with _env(_fleet(quotas=QuotaSpec(commands=1))) as env:
        await env.run("i-web1", KeepCommand="true")
        await env.run("i-web1")  # not kept: not counted
        error = await env.fails(
            "RunCommand", Type="RunShellScript", CommandContent="x", InstanceId_1="i-web1",
            KeepCommand="true",
        )  # fmt: skip
        assert (error.code, error.http_status) == ("CmdCount.ExceedQuota", 403)
        assert env.sim.quota_usage().kept_commands == 1


@pytest.mark.anyio
async def test_validation_comes_from_parse_run_command(env: Env) -> None:
    """Stateless rules are the parser's: too many instances → InstanceIds.ExceedLimit."""
    ids = {f"InstanceId_{n}": "i-web1" for n in range(1, 52)}
    error = await env.fails("RunCommand", Type="RunShellScript", CommandContent="x", **ids)
    assert error.code == "InstanceIds.ExceedLimit"


# --- idempotency ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_same_client_token_returns_the_same_invocation(env: Env) -> None:
    """The same token and parameters give the same InvokeId and run only once."""
    first = await env.run("i-web1", ClientToken="tok-1")
    again = await env.run("i-web1", ClientToken="tok-1")
    assert again == first
    env.clock.advance(3)
    assert env.sim.execution_counts() == {"i-web1": {first: 1}}
    assert len(env.sim.invocations) == 1
    assert env.sim.quota_usage().invocations_today == 1
    other_key = await env.call(
        "RunCommand", key="otherkey", RegionId="cn-hangzhou", Type="RunShellScript",
        CommandContent="echo hi", InstanceId_1="i-web1", ClientToken="tok-1",
    )  # fmt: skip
    assert other_key["InvokeId"] != first


@pytest.mark.anyio
async def test_same_token_other_parameters_is_a_mismatch(env: Env) -> None:
    """The same token with other parameters → 403 IdempotentParameterMismatch."""
    await env.run("i-web1", ClientToken="tok-2")
    with pytest.raises(SimApiError) as caught:
        await env.run("i-web2", ClientToken="tok-2")
    assert (caught.value.code, caught.value.http_status) == ("IdempotentParameterMismatch", 403)


@pytest.mark.anyio
async def test_a_refused_request_frees_its_token(env: Env) -> None:
    """A request that failed a check leaves no trace: its token can be used again."""
    with pytest.raises(SimApiError):
        await env.run("i-nope", ClientToken="tok-3")
    assert await env.run("i-web1", ClientToken="tok-3")


@pytest.mark.anyio
async def test_token_still_processing() -> None:
    """While the first request with a token is processing, a second → IdempotentProcessing."""
    async with _env(_fleet(run_command_latency=1.0)) as env:
        results: dict[str, str] = {}

        async def first() -> None:
            results["first"] = await env.run("i-web1", ClientToken="tok-4")

        async with anyio.create_task_group() as group:
            group.start_soon(first)
            await anyio.wait_all_tasks_blocked()
            with pytest.raises(SimApiError) as caught:
                await env.run("i-web1", ClientToken="tok-4")
            assert caught.value.code == "IdempotentProcessing"
            env.clock.advance(1)
        assert await env.run("i-web1", ClientToken="tok-4") == results["first"]


# --- StopInvocation ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_stop_before_start_cancels(env: Env) -> None:
    """Stopping a record not yet started makes it Cancelled; it never counts as run."""
    invoke_id = await env.run("i-web1")
    env.clock.advance(0.2)
    assert await env.call("StopInvocation", RegionId="cn-hangzhou", InvokeId=invoke_id) == {}
    env.clock.advance(5)
    row = (await env.results(invoke_id))["i-web1"]
    assert row["InvocationStatus"] == "Cancelled"
    assert row["InvokeRecordStatus"] == "Stopped"
    assert row["StopTime"] == "2025-03-01T23:00:00Z"
    inv = await env.invocation(invoke_id)
    assert (inv["InvocationStatus"], inv["InvokeStatus"]) == ("Stopped", "Stopped")
    assert env.sim.execution_counts() == {}


@pytest.mark.anyio
async def test_stop_while_running_terminates(env: Env) -> None:
    """A running record shows Stopping, then Terminated after the stop delay."""
    invoke_id = await env.run("i-web1", "i-web2")
    env.clock.advance(1)
    await env.call("StopInvocation", InvokeId=invoke_id, InstanceId_1="i-web1")
    rows = await env.results(invoke_id)
    assert rows["i-web1"]["InvocationStatus"] == "Stopping"
    assert rows["i-web1"]["InvokeRecordStatus"] == "Stopping"
    assert (await env.invocation(invoke_id))["InvocationStatus"] == "Stopping"
    env.clock.advance(1)
    rows = await env.results(invoke_id)
    assert rows["i-web1"]["InvocationStatus"] == "Terminated"
    assert rows["i-web2"]["InvocationStatus"] == "Running"
    env.clock.advance(2)
    rows = await env.results(invoke_id)
    assert rows["i-web2"]["InvocationStatus"] == "Success"
    assert rows["i-web2"]["StopTime"] == ""
    assert (await env.invocation(invoke_id))["InvocationStatus"] == "Success"
    assert env.sim.execution_counts() == {"i-web1": {invoke_id: 1}, "i-web2": {invoke_id: 1}}


@pytest.mark.anyio
async def test_stop_errors(env: Env) -> None:
    """Unknown task → 404 InvalidInvokeId.NotFound; instance not in it → InvalidInstanceId."""
    error = await env.fails("StopInvocation", InvokeId="t-nope")
    assert (error.code, error.http_status) == ("InvalidInvokeId.NotFound", 404)
    invoke_id = await env.run("i-web1")
    error = await env.fails("StopInvocation", InvokeId=invoke_id, InstanceId_1="i-web2")
    assert (error.code, error.http_status) == ("InvalidInstanceId.NotFound", 404)
    ids = {f"InstanceId_{n}": "i-web1" for n in range(1, 52)}
    error = await env.fails("StopInvocation", InvokeId=invoke_id, **ids)
    assert error.code == "InstanceIds.ExceedLimit"
    error = await env.fails("StopInvocation")
    assert error.code == "MissingParameter"


# --- periodic tasks ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_rate_task_fires_on_the_clock(env: Env) -> None:
    """rate(1m): Scheduled, first run one interval after creation, Repeats counts runs."""
    invoke_id = await env.run("i-api1", Frequency="rate(1m)", Timeout=30)
    row = (await env.results(invoke_id))["i-api1"]
    assert (row["InvocationStatus"], row["Repeats"]) == ("Scheduled", 0)
    assert (await env.invocation(invoke_id))["InvocationStatus"] == "Scheduled"
    env.clock.advance(61)
    row = (await env.results(invoke_id))["i-api1"]
    assert (row["InvocationStatus"], row["Repeats"]) == ("Running", 1)
    env.clock.advance(2)
    row = (await env.results(invoke_id))["i-api1"]
    assert (row["InvocationStatus"], row["Repeats"]) == ("Scheduled", 1)
    env.clock.advance(120)
    row = (await env.results(invoke_id))["i-api1"]
    assert row["Repeats"] == 3
    assert env.sim.execution_counts() == {"i-api1": {invoke_id: 3}}
    history = await env.results(invoke_id, IncludeHistory="true")
    assert len(history) == 1  # keyed by instance; count the rows instead
    body = await env.call("DescribeInvocationResults", InvokeId=invoke_id, IncludeHistory="true")
    assert body["Invocation"]["TotalCount"] == 3
    inv = await env.invocation(invoke_id)
    assert (inv["RepeatMode"], inv["Frequency"], inv["Timed"]) == ("Period", "rate(1m)", True)
    await env.call("StopInvocation", InvokeId=invoke_id)
    env.clock.advance(300)
    row = (await env.results(invoke_id))["i-api1"]
    assert (row["InvocationStatus"], row["Repeats"]) == ("Cancelled", 3)
    assert (await env.invocation(invoke_id))["InvocationStatus"] == "Stopped"


@pytest.mark.anyio
async def test_reboot_modes_stay_scheduled(env: Env) -> None:
    """EveryReboot never fires in the simulator: it stays Scheduled."""
    invoke_id = await env.run("i-api1", RepeatMode="EveryReboot")
    env.clock.advance(3600)
    assert (await env.results(invoke_id))["i-api1"]["InvocationStatus"] == "Scheduled"
    assert env.sim.execution_counts() == {}


# --- DescribeInstances ------------------------------------------------------------------


async def _instance_ids(env: Env, **params: Any) -> list[str]:
    body = await env.call("DescribeInstances", RegionId="cn-hangzhou", PageSize=100, **params)
    return [inst["InstanceId"] for inst in body["Instances"]["Instance"]]


@pytest.mark.anyio
async def test_describe_instances_filters(env: Env) -> None:
    """InstanceIds, Status, ZoneId, Tag.N (AND, key only) and InstanceName wildcards."""
    assert await _instance_ids(env, InstanceIds='["i-web1","i-api2"]') == ["i-web1", "i-api2"]
    assert await _instance_ids(env, InstanceIds="[]") == []
    assert await _instance_ids(env, Status="Stopped") == ["i-stopped1"]
    assert set(await _instance_ids(env, ZoneId="cn-hangzhou-j")) == {
        "i-web3", "i-legacy1", "i-old1", "i-win1",
    }  # fmt: skip
    both = await _instance_ids(env, Tag_1_Key="app", Tag_1_Value="web", Tag_2_Key="env",
                               Tag_2_Value="staging")  # fmt: skip
    assert both == ["i-web3"]
    assert await _instance_ids(env, Tag_1_Key="tier") == ["i-legacy1"]
    assert await _instance_ids(env, InstanceName="api-*") == ["i-api1", "i-api2"]
    for raw in ("[not json", '{"a": 1}', json.dumps([f"i-{n}" for n in range(101)])):
        error = await env.fails("DescribeInstances", InstanceIds=raw)
        assert error.code == "InvalidParameter.InstanceIds"


@pytest.mark.anyio
async def test_describe_instances_shape(env: Env) -> None:
    """Each instance carries the documented fields, OSType lower case, minutes-only times."""
    body = await env.call("DescribeInstances", InstanceIds='["i-win1"]')
    (inst,) = body["Instances"]["Instance"]
    assert inst["OSType"] == "windows"
    assert inst["RegionId"] == "cn-hangzhou"
    assert inst["Tags"] == {"Tag": [{"TagKey": "app", "TagValue": "report"},
                                    {"TagKey": "env", "TagValue": "prod"}]}  # fmt: skip
    datetime.strptime(inst["CreationTime"], "%Y-%m-%dT%H:%MZ")  # noqa: DTZ007
    assert {"InstanceName", "HostName", "Status", "ZoneId", "OSName", "InstanceType"} <= set(inst)
    assert (body["TotalCount"], body["PageNumber"], body["NextToken"]) == (1, 1, "")


@pytest.mark.anyio
async def test_describe_instances_token_paging(env: Env) -> None:
    """MaxResults + NextToken walk every instance once; MaxResults < 10 counts as 10."""
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        params: dict[str, Any] = {"MaxResults": 5} | ({"NextToken": token} if token else {})
        body = await env.call("DescribeInstances", **params)
        assert body["PageSize"] == 10
        seen += [inst["InstanceId"] for inst in body["Instances"]["Instance"]]
        pages += 1
        token = body["NextToken"]
        if not token:
            break
    assert pages == 2
    assert sorted(seen) == sorted(env.sim.instances)
    error = await env.fails("DescribeInstances", NextToken="garbage!")
    assert error.code == "InvalidParameter.NextToken"


@pytest.mark.anyio
async def test_describe_instances_page_number_paging(env: Env) -> None:
    """PageNumber/PageSize pages with a true TotalCount; PageSize > 100 is refused."""
    body = await env.call("DescribeInstances", PageNumber=3, PageSize=5)
    assert (body["TotalCount"], body["PageNumber"], body["PageSize"]) == (12, 3, 5)
    assert len(body["Instances"]["Instance"]) == 2
    assert body["NextToken"] == ""
    error = await env.fails("DescribeInstances", PageSize=101)
    assert error.code == "InvalidParam.PageSize"


# --- DescribeCloudAssistantStatus -------------------------------------------------------


@pytest.mark.anyio
async def test_cloud_assistant_status(env: Env) -> None:
    """Status is the string "true"/"false"; no version when not installed; counts tasks."""
    await env.run("i-web1")
    body = await env.call(
        "DescribeCloudAssistantStatus",
        InstanceId_1="i-web1", InstanceId_2="i-offline1", InstanceId_3="i-noagent1",
        InstanceId_4="i-win1",
    )  # fmt: skip
    rows = {
        r["InstanceId"]: r
        for r in body["InstanceCloudAssistantStatusSet"]["InstanceCloudAssistantStatus"]
    }
    assert rows["i-web1"]["CloudAssistantStatus"] == "true"
    assert rows["i-web1"]["ActiveTaskCount"] == 1
    assert rows["i-web1"]["OSType"] == "Linux"
    assert rows["i-web1"]["SupportSessionManager"] is True
    assert rows["i-offline1"]["CloudAssistantStatus"] == "false"
    assert rows["i-offline1"]["CloudAssistantVersion"] == "2.2.3.857"
    assert rows["i-noagent1"]["CloudAssistantVersion"] == ""
    assert rows["i-noagent1"]["LastHeartbeatTime"] == ""
    assert rows["i-win1"]["OSType"] == "Windows"
    env.clock.advance(5)
    body = await env.call("DescribeCloudAssistantStatus", InstanceId_1="i-web1")
    (row,) = body["InstanceCloudAssistantStatusSet"]["InstanceCloudAssistantStatus"]
    assert (row["ActiveTaskCount"], row["InvocationCount"]) == (0, 1)
    assert row["LastInvokedTime"] == "2025-03-01T23:00:00Z"


@pytest.mark.anyio
async def test_cloud_assistant_status_filters_and_limits(env: Env) -> None:
    """OSType filters (capitalised), paging applies without IDs, > 100 IDs are refused."""
    body = await env.call("DescribeCloudAssistantStatus", OSType="Windows")
    rows = body["InstanceCloudAssistantStatusSet"]["InstanceCloudAssistantStatus"]
    assert [r["InstanceId"] for r in rows] == ["i-win1"]
    body = await env.call("DescribeCloudAssistantStatus", MaxResults=5)
    assert len(body["InstanceCloudAssistantStatusSet"]["InstanceCloudAssistantStatus"]) == 5
    assert body["NextToken"]
    ids = {f"InstanceId_{n}": "i-web1" for n in range(1, 102)}
    error = await env.fails("DescribeCloudAssistantStatus", **ids)
    assert (error.code, error.http_status) == ("InstanceIds.ExceedLimit", 403)


# --- DescribeInvocations ----------------------------------------------------------------


@pytest.mark.anyio
async def test_describe_invocations_shape_and_output(env: Env) -> None:
    """Base64 content and output by default, PlainText on request, Output only if asked."""
    invoke_id = await env.run("i-web1", content="nginx -v", Name="check", Tag_1_Key="team",
                              Tag_1_Value="ops")  # fmt: skip
    env.clock.advance(3)
    inv = await env.invocation(invoke_id)
    assert inv["CommandContent"] == _b64("nginx -v")
    assert inv["CommandType"] == "RunShellScript"
    assert inv["CommandName"] == "check"
    assert (inv["Parameters"], inv["Timeout"], inv["RepeatMode"]) == ("{}", 60, "Once")
    assert inv["Tags"] == {"Tag": [{"TagKey": "team", "TagValue": "ops"}]}
    assert inv["CreationTime"] == "2025-03-01T23:00:00Z"
    (instance,) = inv["InvokeInstances"]["InvokeInstance"]
    assert "Output" not in instance
    assert instance["FinishTime"] == "2025-03-01T23:00:02Z"
    assert (instance["InstanceInvokeStatus"], instance["StopTime"]) == ("Finished", "")
    assert instance["UpdateTime"] == "2025-03-01T23:00:02Z"
    plain = await env.invocation(invoke_id, IncludeOutput="true", ContentEncoding="PlainText")
    assert plain["CommandContent"] == "nginx -v"
    assert (
        plain["InvokeInstances"]["InvokeInstance"][0]["Output"] == "nginx version: nginx/1.27.0\n"
    )
    encoded = await env.invocation(invoke_id, IncludeOutput="true")
    output = encoded["InvokeInstances"]["InvokeInstance"][0]["Output"]
    assert base64.b64decode(output) == b"nginx version: nginx/1.27.0\n"
    error = await env.fails("DescribeInvocations", IncludeOutput="true")
    assert error.code == "InvalidParameter.IncludeOutput"


@pytest.mark.anyio
async def test_describe_invocations_filters_and_paging(env: Env) -> None:
    """InvokeId, InstanceId, CommandId, InvokeStatus, RepeatMode filter; both paging styles."""
    first = await env.run("i-web1")
    second = await env.run("i-legacy1")
    third = await env.run("i-api1", Frequency="rate(1h)")
    env.clock.advance(3)

    async def ids(**params: Any) -> list[str]:
        body = await env.call("DescribeInvocations", **params)
        return [inv["InvokeId"] for inv in body["Invocations"]["Invocation"]]

    assert await ids() == [third, second, first]  # newest first
    assert await ids(InvokeId="t-unknown") == []
    assert await ids(InstanceId="i-legacy1") == [second]
    command_id = env.sim.invocations[first].command_id
    assert await ids(CommandId=command_id) == [first]
    assert await ids(InvokeStatus="Failed") == [second]
    assert await ids(InvokeStatus="Success") == [first]
    assert await ids(InvokeStatus="Finished") == [second, first]
    assert await ids(RepeatMode="Period") == [third]
    body = await env.call("DescribeInvocations", MaxResults=2)
    assert len(body["Invocations"]["Invocation"]) == 2
    rest = await env.call("DescribeInvocations", MaxResults=2, NextToken=body["NextToken"])
    assert [i["InvokeId"] for i in rest["Invocations"]["Invocation"]] == [first]
    assert rest["NextToken"] == ""
    body = await env.call("DescribeInvocations", PageNumber=2, PageSize=2)
    assert (body["TotalCount"], len(body["Invocations"]["Invocation"])) == (3, 1)
    assert (await env.fails("DescribeInvocations", MaxResults=51)).code == (
        "InvalidParameter.MaxResults"
    )
    assert (await env.fails("DescribeInvocations", PageSize=51)).code == "InvalidParam.PageSize"


# --- DescribeInvocationResults ----------------------------------------------------------


@pytest.mark.anyio
async def test_describe_results_filters_and_paging(env: Env) -> None:
    """Paging sits inside Invocation; InstanceId and InvokeRecordStatus filter records."""
    invoke_id = await env.run("i-web1", "i-web2", "i-legacy1")
    env.clock.advance(3)
    body = await env.call("DescribeInvocationResults", InvokeId=invoke_id, MaxResults=2)
    assert "TotalCount" not in body
    page = body["Invocation"]
    assert (page["TotalCount"], len(page["InvocationResults"]["InvocationResult"])) == (3, 2)
    rest = await env.call(
        "DescribeInvocationResults", InvokeId=invoke_id, MaxResults=2, NextToken=page["NextToken"]
    )
    assert len(rest["Invocation"]["InvocationResults"]["InvocationResult"]) == 1
    assert rest["Invocation"]["NextToken"] == ""
    assert list(await env.results(invoke_id, InstanceId="i-web2")) == ["i-web2"]
    body = await env.call("DescribeInvocationResults", InstanceId="i-web2")
    assert body["Invocation"]["TotalCount"] == 1
    finished = await env.results(invoke_id, InvokeRecordStatus="Finished")
    assert set(finished) == {"i-web1", "i-web2", "i-legacy1"}
    assert set(await env.results(invoke_id, InvokeRecordStatus="Running")) == set()
    body = await env.call("DescribeInvocationResults", PageNumber=2, PageSize=2)
    assert body["Invocation"]["PageNumber"] == 2
    assert len(body["Invocation"]["InvocationResults"]["InvocationResult"]) == 1


@pytest.mark.anyio
async def test_output_beyond_24k_is_dropped() -> None:
    """Output over 24 KB is cut; Dropped says how many bytes were cut."""
    behaviour = replace(
        FLEET.behaviour,
        default=replace(FLEET.behaviour.default, output="x" * 1000, output_repeat=30),
        rules=(),
    )
    async with _env(_fleet(behaviour=behaviour)) as env:
        invoke_id = await env.run("i-api1")
        env.clock.advance(3)
        row = (await env.results(invoke_id, ContentEncoding="PlainText"))["i-api1"]
        assert len(row["Output"]) == 24 * 1024
        assert row["Dropped"] == 30_000 - 24 * 1024


# --- DescribeAccountAttributes ----------------------------------------------------------


@pytest.mark.anyio
async def test_account_attributes(env: Env) -> None:
    """The Cloud Assistant quotas come back as strings in ValueItem lists."""
    body = await env.call(
        "DescribeAccountAttributes",
        AttributeName_1="max-axt-command-count",
        AttributeName_2="max-axt-invocation-daily",
    )
    items = body["AccountAttributeItems"]["AccountAttributeItem"]
    values = {i["AttributeName"]: i["AttributeValues"]["ValueItem"][0] for i in items}
    assert values["max-axt-command-count"] == {"Value": "20", "Count": 1, "ZoneId": ""}
    assert values["max-axt-invocation-daily"]["Value"] == "1000"
    everything = await env.call("DescribeAccountAttributes")
    assert len(everything["AccountAttributeItems"]["AccountAttributeItem"]) >= 2
    names = {f"AttributeName_{n}": "max-axt-command-count" for n in range(1, 10)}
    assert (await env.fails("DescribeAccountAttributes", **names)).http_status == 400


# --- local agent mode -------------------------------------------------------------------


@pytest.mark.anyio
async def test_local_mode_runs_a_real_script() -> None:
    """Local mode runs the shell script for real, with built-ins substituted."""
    async with _env(_fleet(agent_mode="local")) as env:
        invoke_id = await env.run(
            "i-web1",
            content="echo id={{ACS::InstanceId}} n={{n}}; pwd; echo oops >&2; exit 3",
            EnableParameter="true",
            Parameters='{"n":"7"}',
        )
        await env.sim.local_idle()
        row = (await env.results(invoke_id, ContentEncoding="PlainText"))["i-web1"]
        assert row["InvocationStatus"] == "Failed"
        assert row["ExitCode"] == 3
        lines = row["Output"].splitlines()
        assert lines[0] == "id=i-web1 n=7"
        assert "orchestrator-sim-" in lines[1]
        assert lines[2] == "oops"
        assert env.sim.execution_counts() == {"i-web1": {invoke_id: 1}}


@pytest.mark.anyio
async def test_local_mode_timeout_kills_and_output_is_cut() -> None:
    """A local script past its Timeout is killed (Timeout); large output is cut at 24 KB."""
    async with _env(_fleet(agent_mode="local")) as env:
        slow = await env.run("i-web1", content="echo start; sleep 30; echo never", Timeout=1)
        big = await env.run("i-web2", content="head -c 30000 /dev/zero | tr '\\0' a")
        with anyio.fail_after(10):
            await env.sim.local_idle()
        row = (await env.results(slow, ContentEncoding="PlainText"))["i-web1"]
        assert (row["InvocationStatus"], row["ErrorCode"]) == ("Timeout", "ExecutionTimeout")
        assert row["Output"] == "start\n"
        row = (await env.results(big, ContentEncoding="PlainText"))["i-web2"]
        assert row["InvocationStatus"] == "Success"
        assert (len(row["Output"]), row["Dropped"]) == (24 * 1024, 30000 - 24 * 1024)


@pytest.mark.anyio
async def test_local_mode_stop_terminates_the_process() -> None:
    """StopInvocation kills a running local script: Terminated."""
    async with _env(_fleet(agent_mode="local")) as env:
        invoke_id = await env.run("i-web1", content="sleep 30", Timeout=60)
        local = env.sim.invocations[invoke_id].records["i-web1"].local
        assert local is not None
        with anyio.fail_after(10):
            await anyio.wait_all_tasks_blocked()  # the script has started and waits on output
            assert local.started is not None
            await env.call("StopInvocation", InvokeId=invoke_id)
            await env.sim.local_idle()
        row = (await env.results(invoke_id))["i-web1"]
        assert row["InvocationStatus"] == "Terminated"
