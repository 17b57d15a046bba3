"""Our ECS client against the simulator, over real HTTP on 127.0.0.1, with both
signature versions: every action, the status life cycle, errors, idempotency,
throttling, faults and credentials."""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from orchestrator import errors
from orchestrator.api import InstanceInvocationStatus as S
from orchestrator.api import InvocationStatus
from orchestrator.ecs import (
    Credentials,
    EcsClient,
    Invocation,
    RetryDetails,
    RetryPolicy,
    RunCommandRequest,
)
from orchestrator.sim import FaultKind, FleetSpec, RunningSimulator, load_fleet
from orchestrator.testing import ManualClock

if TYPE_CHECKING:
    import aiohttp

pytestmark = pytest.mark.anyio

SHELL = "RunShellScript"
SMALL_FLEET = Path(__file__).parents[2] / "plans" / "fleets" / "small.yaml"


async def _invocation(client: EcsClient, invoke_id: str) -> Invocation:
    found = [i async for i in client.describe_invocations(invoke_id=invoke_id, include_output=True)]
    assert len(found) == 1
    return found[0]


# --- inventory -------------------------------------------------------------------


async def test_describe_instances_lists_the_whole_fleet(client: EcsClient, fleet: FleetSpec):
    """Every instance of the fleet comes back once, across pages."""
    instances = [i async for i in client.describe_instances(page_size=10)]
    assert len(instances) == 12
    assert len({i.instance_id for i in instances}) == 12
    web1 = next(i for i in instances if i.instance_id == "i-web1")
    assert (web1.name, web1.zone_id, web1.os_type) == ("web-1", "cn-hangzhou-h", "linux")
    assert dict(web1.tags) == {"app": "web", "env": "prod"}


async def test_describe_instances_filters_are_anded(client: EcsClient):
    """Tags, zone and status filters all apply at once."""
    web_prod = {
        i.instance_id async for i in client.describe_instances(tags={"app": "web", "env": "prod"})
    }
    assert web_prod == {"i-web1", "i-web2", "i-offline1", "i-stopped1"}
    in_zone = {
        i.instance_id
        async for i in client.describe_instances(
            tags={"app": "web", "env": "prod"}, zone_id="cn-hangzhou-h"
        )
    }
    assert in_zone == {"i-web1", "i-offline1"}
    stopped = {i.instance_id async for i in client.describe_instances(status="Stopped")}
    assert stopped == {"i-stopped1"}


async def test_describe_instances_by_id_skips_unknown_ids(client: EcsClient):
    """Explicit IDs come back when they exist; an unknown ID is simply absent."""
    found = {
        i.instance_id
        async for i in client.describe_instances(instance_ids=["i-web1", "i-api2", "i-nope"])
    }
    assert found == {"i-web1", "i-api2"}


async def test_cloud_assistant_status_tells_online_from_offline(client: EcsClient):
    """Online agents say so; offline and missing agents do not."""
    statuses = {
        s.instance_id: s
        for s in await client.describe_cloud_assistant_status(
            ["i-web1", "i-offline1", "i-noagent1"]
        )
    }
    assert statuses["i-web1"].online
    assert statuses["i-web1"].version
    assert not statuses["i-offline1"].online
    assert not statuses["i-noagent1"].online
    assert statuses["i-noagent1"].version == ""


async def test_account_attributes_carry_the_quotas(client: EcsClient):
    """The two Cloud Assistant quotas are read as numbers."""
    attributes = await client.describe_account_attributes(
        ["max-axt-command-count", "max-axt-invocation-daily"]
    )
    assert attributes.command_quota == 20
    assert attributes.daily_invocation_quota == 1000


# --- running a command -----------------------------------------------------------


async def test_run_command_life_cycle(client: EcsClient, clock: ManualClock):
    """Pending, then Running, then Success with the output, on the simulator's clock."""
    result = await client.run_command(
        RunCommandRequest(type=SHELL, content="nginx -v", instance_ids=["i-web1", "i-web2"])
    )
    assert result.invoke_id.startswith("t-")
    assert result.command_id.startswith("c-")

    pending = await _invocation(client, result.invoke_id)
    assert {i.status for i in pending.instances} == {S.PENDING}
    assert pending.status is InvocationStatus.PENDING

    clock.advance(1)
    running = await _invocation(client, result.invoke_id)
    assert {i.status for i in running.instances} == {S.RUNNING}

    clock.advance(5)
    done = await _invocation(client, result.invoke_id)
    assert done.status is InvocationStatus.SUCCESS
    for instance in done.instances:
        assert (instance.status, instance.exit_code, instance.error_code) == (S.SUCCESS, 0, "")
        assert instance.output == "nginx version: nginx/1.27.0\n"
        assert instance.start_time is not None
        assert instance.finish_time is not None
        assert instance.finish_time >= instance.start_time


async def test_failure_hang_and_partial_failure(client: EcsClient, clock: ManualClock):
    """A non-zero exit is Failed/ExitCodeNonzero, a hang ends in Timeout/ExecutionTimeout."""
    result = await client.run_command(
        RunCommandRequest(
            type=SHELL,
            content="nginx -v",
            instance_ids=["i-web1", "i-legacy1", "i-hang1"],
            timeout=30,
        )
    )
    clock.advance(31)
    records = {
        r.instance_id: r
        async for r in client.describe_invocation_results(invoke_id=result.invoke_id)
    }
    assert records["i-web1"].status is S.SUCCESS
    legacy = records["i-legacy1"]
    assert (legacy.status, legacy.exit_code, legacy.error_code) == (
        S.FAILED,
        127,
        "ExitCodeNonzero",
    )
    assert legacy.output == "sh: nginx: command not found\n"
    assert (records["i-hang1"].status, records["i-hang1"].error_code) == (
        S.TIMEOUT,
        "ExecutionTimeout",
    )
    assert (await _invocation(client, result.invoke_id)).status is InvocationStatus.PARTIAL_FAILED


async def test_offline_agent_is_aborted_after_the_delivery_window(
    client: EcsClient, clock: ManualClock
):
    """An instance whose agent is offline never runs: Pending, then Aborted."""
    result = await client.run_command(
        RunCommandRequest(type=SHELL, content="true", instance_ids=["i-offline1"])
    )
    clock.advance(30)
    assert (await _invocation(client, result.invoke_id)).instances[0].status is S.PENDING
    clock.advance(60)
    record = (await _invocation(client, result.invoke_id)).instances[0]
    assert record.status is S.ABORTED
    assert record.error_code == "ClientNotResponse"


async def test_stop_invocation_cancels_and_terminates(
    client: EcsClient, clock: ManualClock, sim: RunningSimulator
):
    """Stopping cancels what has not started and terminates what runs."""
    hang = await client.run_command(
        RunCommandRequest(type=SHELL, content="sleep 1000", instance_ids=["i-hang1"], timeout=600)
    )
    queued = await client.run_command(
        RunCommandRequest(type=SHELL, content="true", instance_ids=["i-web1"])
    )
    clock.advance(1)  # the hang runs; the other is still being delivered
    await client.stop_invocation(hang.invoke_id)
    await client.stop_invocation(queued.invoke_id, ["i-web1"])
    clock.advance(5)
    stopped = (await _invocation(client, hang.invoke_id)).instances[0]
    assert stopped.status is S.TERMINATED
    assert stopped.stop_time is not None
    assert (await _invocation(client, hang.invoke_id)).status is InvocationStatus.STOPPED
    counts = sim.simulation.execution_counts()
    assert counts["i-hang1"][hang.invoke_id] == 1


async def test_stop_unknown_invocation_is_not_found(client: EcsClient):
    """StopInvocation of an unknown task is 404 InvalidInvokeId.NotFound."""
    with pytest.raises(errors.NotFound) as caught:
        await client.stop_invocation("t-doesnotexist")
    assert (caught.value.code, caught.value.http_status) == ("InvalidInvokeId.NotFound", 404)
    assert caught.value.request_id


# --- errors ----------------------------------------------------------------------

ERROR_CASES = [
    # (request overrides, expected class, code, HTTP status)
    ({"instance_ids": ["i-missing"]}, errors.NotFound, "InvalidInstance.NotFound", 404),
    ({"instance_ids": ["i-stopped1"]}, errors.InvalidParameter, "InvalidInstance.NotMatch", 400),
    ({"instance_ids": ["i-win1"]}, errors.InvalidParameter, "InvalidInstance.NotMatch", 400),
    ({"type": "RunPythonScript"}, errors.NotFound, "InvalidCmdType.NotFound", 404),
    ({"repeat_mode": "Sometimes"}, errors.NotFound, "InvalidRepeatMode.NotFound", 404),
    ({"repeat_mode": "Period"}, errors.InvalidParameter, "MissingParam.Frequency", 400),
    ({"frequency": "rate(10s)"}, errors.InvalidParameter, "InvalidParam.Frequency", 400),
    ({"name": "n" * 129}, errors.Forbidden, "CmdName.ExceedLimit", 403),
    ({"content": "x" * 20_000}, errors.Forbidden, "CmdContent.ExceedLimit", 403),
    (
        {"instance_ids": [f"i-{n}" for n in range(51)]},
        errors.Forbidden,
        "InstanceIds.ExceedLimit",
        403,
    ),
    (
        {"instance_ids": [], "resource_tags": {"app": "nothing"}},
        errors.InvalidParameter,
        "InvalidResourceTag.InstanceNotFound",
        400,
    ),
    (
        {"resource_tags": {"app": "web"}},
        errors.InvalidParameter,
        "InvalidResourceTag.ConflictWithInstanceIds",
        400,
    ),
    ({"instance_ids": []}, errors.InvalidParameter, "MissingParam.InstanceId", 400),
    (
        {"content": "echo {{who}}", "parameters": {"nobody": "x"}},
        errors.InvalidParameter,
        "Parameter.NotMatched",
        400,
    ),
    (
        {"content": "echo hi", "parameters": {"a": "b"}, "enable_parameter": False},
        errors.InvalidParameter,
        "Parameter.Disabled",
        400,
    ),
    (
        {"container_id": "not-a-container"},
        errors.InvalidParameter,
        "InvalidContainerId.Malformed",
        400,
    ),
    ({"client_token": "é" * 3}, errors.InvalidParameter, "InvalidClientToken.Malformed", 400),
    ({"tags": {"acs:reserved": "v"}}, errors.InvalidParameter, "InvalidTagKey.Malformed", 400),
    ({"working_dir": "/" + "d" * 200}, errors.InvalidParameter, "InvalidParameter.WorkingDir", 400),
    ({"username": "u" * 256}, errors.Forbidden, "Username.ExceedLimit", 403),
]


@pytest.mark.parametrize(
    ("overrides", "kind", "code", "status"), ERROR_CASES, ids=[case[2] for case in ERROR_CASES]
)
async def test_run_command_errors_arrive_typed(client, overrides, kind, code, status):
    """A refused RunCommand raises the error class, code and status of the real API."""
    fields = {"type": SHELL, "content": "true", "instance_ids": ["i-web1"]} | overrides
    with pytest.raises(kind) as caught:
        await client.run_command(RunCommandRequest(**fields))
    assert (caught.value.code, caught.value.http_status) == (code, status)
    assert caught.value.message
    assert caught.value.request_id
    assert not caught.value.retryable


async def test_resource_tags_select_instances(client: EcsClient, clock: ManualClock):
    """ResourceTag targets every Running instance with all the tags."""
    result = await client.run_command(
        RunCommandRequest(type=SHELL, content="true", resource_tags={"app": "api", "env": "prod"})
    )
    clock.advance(10)
    done = await _invocation(client, result.invoke_id)
    assert {i.instance_id for i in done.instances} == {"i-api1", "i-api2"}


# --- idempotency -----------------------------------------------------------------


async def test_same_client_token_runs_once(
    client: EcsClient, sim: RunningSimulator, clock: ManualClock
):
    """Sending the same request with the same ClientToken twice returns the first
    invocation and runs nothing again; other parameters with that token are refused."""
    request = RunCommandRequest(
        type=SHELL, content="true", instance_ids=["i-web1"], client_token="batch-0001"
    )
    first = await client.run_command(request)
    again = await client.run_command(request)
    assert again.invoke_id == first.invoke_id
    clock.advance(10)
    assert sim.simulation.execution_counts()["i-web1"] == {first.invoke_id: 1}

    changed = RunCommandRequest(
        type=SHELL, content="false", instance_ids=["i-web1"], client_token="batch-0001"
    )
    with pytest.raises(errors.IdempotencyMismatch) as caught:
        await client.run_command(changed)
    assert caught.value.code == "IdempotentParameterMismatch"


# --- throttling and faults ---------------------------------------------------------


async def _client_for(sim: RunningSimulator, session: aiohttp.ClientSession, **kwargs) -> EcsClient:
    return EcsClient(
        sim.url,
        session,
        Credentials.of(sim.access_key_id, sim.access_key_secret),
        region_id=sim.region,
        rng=random.Random(3),
        **kwargs,
    )


async def test_faults_are_retried_and_run_exactly_once(
    sim: RunningSimulator, session: aiohttp.ClientSession, clock: ManualClock
):
    """A RunCommand whose answer is dropped, reset, or refused with a 5xx is retried
    with the same ClientToken: it lands once, and the script runs once."""
    retries: list[RetryDetails] = []
    client = await _client_for(
        sim, session, clock=ManualClock(autojump=True), on_retry=retries.append
    )
    sim.faults.fail_next(FaultKind.DROP, action="RunCommand")
    sim.faults.fail_next(FaultKind.RESET, action="RunCommand")
    sim.faults.fail_next(FaultKind.INTERNAL_ERROR, action="RunCommand")
    sim.faults.fail_next(FaultKind.UNAVAILABLE, action="RunCommand")
    result = await client.run_command(
        RunCommandRequest(
            type=SHELL, content="true", instance_ids=["i-web1", "i-web2"], client_token="tok-1"
        )
    )
    assert len(retries) == 4
    assert sim.faults.counts[FaultKind.DROP] == 1
    assert sim.faults.counts[FaultKind.RESET] == 1
    clock.advance(10)
    counts = sim.simulation.execution_counts()
    assert counts["i-web1"] == {result.invoke_id: 1}
    assert counts["i-web2"] == {result.invoke_id: 1}
    assert len(sim.simulation.invocations) == 1


async def test_run_command_without_token_is_never_retried(
    sim: RunningSimulator, session: aiohttp.ClientSession
):
    """Without a ClientToken a lost answer is not retried: a retry could run it twice."""
    client = await _client_for(sim, session, clock=ManualClock(autojump=True))
    sim.faults.fail_next(FaultKind.DROP, action="RunCommand")
    with pytest.raises(errors.TransportError):
        await client.run_command(
            RunCommandRequest(type=SHELL, content="true", instance_ids=["i-web1"])
        )
    assert len(sim.simulation.invocations) == 1  # it did run, once


async def test_stalled_answer_times_out_and_is_retried(
    sim: RunningSimulator, session: aiohttp.ClientSession
):
    """A Describe call whose answer stalls hits the read deadline and is sent again."""
    client = await _client_for(sim, session, clock=ManualClock(autojump=True), request_timeout=0.2)
    sim.faults.fail_next(FaultKind.STALL, action="DescribeInstances", stall_seconds=30)
    found = [i async for i in client.describe_instances(instance_ids=["i-web1"])]
    assert [i.instance_id for i in found] == ["i-web1"]
    assert sim.faults.counts[FaultKind.STALL] == 1


class TestThrottling:
    @pytest.fixture
    def fleet(self) -> FleetSpec:
        """The small fleet with one call per second per action."""
        return load_fleet(SMALL_FLEET.read_text() + "throttle: {qps: 1, burst: 1}\n")

    async def test_throttling_is_typed_and_final_without_retries(
        self, sim: RunningSimulator, session: aiohttp.ClientSession
    ):
        """Past the burst the API answers 400 Throttling, a retryable error."""
        client = await _client_for(sim, session, retry=RetryPolicy.none())
        await client.describe_account_attributes(["max-axt-command-count"])
        with pytest.raises(errors.Throttled) as caught:
            await client.describe_account_attributes(["max-axt-command-count"])
        assert (caught.value.code, caught.value.http_status) == ("Throttling", 400)
        assert caught.value.retryable

    async def test_throttled_calls_succeed_after_backing_off(
        self, sim: RunningSimulator, session: aiohttp.ClientSession, clock: ManualClock
    ):
        """The client backs off on its clock; once the bucket refills the call goes through."""
        retries: list[RetryDetails] = []

        class SharedClock(ManualClock):
            """The client's backoff moves the simulator's clock: one timeline."""

            async def sleep(self, seconds: float) -> None:
                clock.advance(seconds)
                await super().sleep(seconds)

        client = await _client_for(
            sim, session, clock=SharedClock(autojump=True), on_retry=retries.append
        )
        for _ in range(3):
            await client.describe_account_attributes(["max-axt-command-count"])
        assert retries
        assert {r.error_code for r in retries} == {"Throttling"}


# --- credentials -----------------------------------------------------------------


async def test_sts_credentials_work_and_need_their_token(
    sim: RunningSimulator, session: aiohttp.ClientSession, signature_version: str
):
    """An STS key the simulator issued works with its token and is refused without it."""
    issued = sim.issue_sts(3600)
    assert issued.security_token
    good = EcsClient(
        sim.url,
        session,
        Credentials.of(issued.access_key_id, issued.access_key_secret, issued.security_token),
        region_id=sim.region,
        signature_version=signature_version,  # type: ignore[arg-type]
        retry=RetryPolicy.none(),
    )
    assert (await good.describe_account_attributes(["max-axt-command-count"])).command_quota
    bare = EcsClient(
        sim.url,
        session,
        Credentials.of(issued.access_key_id, issued.access_key_secret),
        region_id=sim.region,
        retry=RetryPolicy.none(),
    )
    with pytest.raises(errors.AuthError) as caught:
        await bare.describe_account_attributes(["max-axt-command-count"])
    assert caught.value.code.startswith("InvalidSecurityToken")


@pytest.mark.parametrize(
    ("key_id", "secret", "code", "status"),
    [
        ("LTAIunknownkey", "whatever", "InvalidAccessKeyId.NotFound", 404),
        (None, "wrong-secret", "SignatureDoesNotMatch", 400),
    ],
)
async def test_bad_credentials_are_auth_errors(
    sim: RunningSimulator,
    session: aiohttp.ClientSession,
    signature_version: str,
    key_id,
    secret,
    code,
    status,
):
    """A wrong key or secret is an AuthError with the API's code; the secret is never shown."""
    client = EcsClient(
        sim.url,
        session,
        Credentials.of(key_id or sim.access_key_id, secret),
        region_id=sim.region,
        signature_version=signature_version,  # type: ignore[arg-type]
        retry=RetryPolicy.none(),
    )
    with pytest.raises(errors.AuthError) as caught:
        await client.describe_account_attributes(["max-axt-command-count"])
    assert (caught.value.code, caught.value.http_status) == (code, status)
    assert secret not in str(caught.value)
    assert secret not in repr(client)


async def test_a_withdrawn_run_command_sends_nothing(client: EcsClient, sim: RunningSimulator):
    """`proceed` saying no before the first attempt: Withdrawn, and the API saw nothing."""
    request = RunCommandRequest(
        type=SHELL, content="true", instance_ids=["i-web1"], client_token="withdrawn-1"
    )
    with pytest.raises(errors.Withdrawn):
        await client.run_command(request, proceed=lambda: False)
    assert sim.stats.count("RunCommand") == 0


async def test_proceed_is_not_asked_again_once_an_attempt_was_sent(
    sim: RunningSimulator, session: aiohttp.ClientSession, clock: ManualClock
):
    """After a sent attempt's answer is lost, the retry goes out even if `proceed` now
    says no: the first attempt may have run, and only its token can tell."""
    client = await _client_for(sim, session, clock=ManualClock(autojump=True))
    sim.faults.fail_next(FaultKind.DROP, action="RunCommand")
    answers = iter([True])
    result = await client.run_command(
        RunCommandRequest(
            type=SHELL, content="true", instance_ids=["i-web1"], client_token="withdrawn-2"
        ),
        proceed=lambda: next(answers, False),
    )
    assert sim.stats.count("RunCommand") == 2
    clock.advance(10)
    assert sim.simulation.execution_counts()["i-web1"] == {result.invoke_id: 1}
