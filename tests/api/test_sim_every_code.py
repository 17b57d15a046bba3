"""Every error code of the 2024 RunCommand seed is reachable in the simulator, over real
HTTP on 127.0.0.1 through our own client: the codes that need an account condition
(resource groups, parameter store, regions without Cloud Assistant), a key flag
(forbidden, bid user, no parameter-store access, revoked STS key) or a fault
(InternalError.Dispatch, a scripted API error), the documented order of those checks,
the full error body on the wire, and a table test that keeps every code of the seed's
error table exercised by some simulator test under tests/.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import pytest
import yarl
from alibabacloud_tea_openapi.utils import Utils as TeaUtils

from orchestrator import api, errors
from orchestrator.api import InstanceInvocationStatus
from orchestrator.ecs import (
    Credentials,
    EcsClient,
    RetryDetails,
    RetryPolicy,
    RunCommandRequest,
)
from orchestrator.sim import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    FaultKind,
    Faults,
    FaultSpec,
    FleetError,
    FleetSpec,
    KeySpec,
    RunningSimulator,
    load_fleet,
    serve,
)
from orchestrator.testing import ManualClock

if TYPE_CHECKING:
    from collections.abc import Callable

    import aiohttp

pytestmark = pytest.mark.anyio

TESTS = Path(__file__).resolve().parents[1]
SMALL_FLEET = TESTS.parent / "plans" / "fleets" / "small.yaml"
SHELL = "RunShellScript"
NO_CA_REGION = "cn-no-assistant-1"  # a region the account knows, without Cloud Assistant

FORBIDDEN = KeySpec("LTAI5tForbiddenUser", "forbidden-secret", forbidden=True)
BID_USER = KeySpec("LTAI5tBidUser", "bid-secret", bid_user=True)
NO_OOS = KeySpec("LTAI5tNoParameterStore", "no-oos-secret", parameter_store_access=False)
OWNER = KeySpec(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET)
REVOKED = KeySpec("STS.RevokedInTheFile", "sts-secret", "sts-token", revoked=True)

ACCOUNT = f"""
keys:
  - {{access_key_id: {DEFAULT_ACCESS_KEY_ID}, access_key_secret: {DEFAULT_ACCESS_KEY_SECRET}}}
  - {{access_key_id: {FORBIDDEN.access_key_id}, access_key_secret: forbidden-secret,
     forbidden: true}}
  - {{access_key_id: {BID_USER.access_key_id}, access_key_secret: bid-secret, bid_user: true}}
  - {{access_key_id: {NO_OOS.access_key_id}, access_key_secret: no-oos-secret,
     parameter_store_access: false}}
  - {{access_key_id: {REVOKED.access_key_id}, access_key_secret: sts-secret,
     security_token: sts-token, revoked: true}}
account:
  resource_groups: {{rg-prod: Available, rg-new: Creating, rg-old: Deleting}}
  parameter_store: {{greeting: hello-from-oos}}
  secret_parameters: {{db-password: s3cret-value}}
  regions_without_cloud_assistant: [{NO_CA_REGION}]
"""
NO_STORE = "account: {parameter_store_supported: false}\n"


def _fleet_text(extra: str = ACCOUNT) -> str:
    return SMALL_FLEET.read_text(encoding="utf-8") + extra


@pytest.fixture
def fleet() -> FleetSpec:
    """The small fleet plus an account with every condition this module reaches."""
    return load_fleet(_fleet_text())


def _client(
    sim: RunningSimulator,
    session: aiohttp.ClientSession,
    key: KeySpec | None = None,
    *,
    region: str | None = None,
    signature_version: str = "v3",
    **kwargs: Any,
) -> EcsClient:
    key = key or KeySpec(sim.access_key_id, sim.access_key_secret)
    kwargs.setdefault("retry", RetryPolicy.none())
    return EcsClient(
        sim.url,
        session,
        Credentials.of(key.access_key_id, key.access_key_secret, key.security_token),
        region_id=region or sim.region,
        clock=ManualClock(autojump=True),
        signature_version="v1" if signature_version == "v1" else "v3",
        rng=random.Random(5),
        **kwargs,
    )


def _request(**overrides: Any) -> RunCommandRequest:
    fields: dict[str, Any] = {"type": SHELL, "content": "true", "instance_ids": ["i-web1"]}
    return RunCommandRequest(**(fields | overrides))


async def _refused(client: EcsClient, **overrides: Any) -> errors.ApiError:
    with pytest.raises(errors.ApiError) as caught:
        await client.run_command(_request(**overrides))
    return caught.value


def _is(error: errors.ApiError, code: str, kind: type[errors.ApiError]) -> None:
    """`error` is `code` with the seed's status and message, a RequestId, and `kind`."""
    spec = api.ERRORS[code]
    assert (error.code, error.http_status, error.message) == (code, spec.http_status, spec.message)
    assert error.request_id
    assert isinstance(error, kind)


def _oos(content: str) -> dict[str, Any]:
    return {"content": content, "enable_parameter": True}


# --- region ------------------------------------------------------------------------


async def test_region_without_cloud_assistant_is_api_not_supported(
    sim: RunningSimulator, session: aiohttp.ClientSession, signature_version: str
):
    """A RegionId the account lists without Cloud Assistant: 400 RegionId.ApiNotSupported."""
    client = _client(sim, session, region=NO_CA_REGION, signature_version=signature_version)
    _is(await _refused(client), "RegionId.ApiNotSupported", errors.InvalidParameter)
    assert not sim.simulation.invocations


async def test_other_foreign_regions_stay_not_found(
    sim: RunningSimulator, session: aiohttp.ClientSession
):
    """Any other foreign region is 404 InvalidRegionId.NotFound; so is an ECS (not Cloud
    Assistant) action in the listed region, which has ECS but is not simulated here."""
    elsewhere = _client(sim, session, region="cn-beijing")
    _is(await _refused(elsewhere), "InvalidRegionId.NotFound", errors.NotFound)
    listed = _client(sim, session, region=NO_CA_REGION)
    with pytest.raises(errors.NotFound) as caught:
        [i async for i in listed.describe_instances()]
    assert caught.value.code == "InvalidRegionId.NotFound"
    with pytest.raises(errors.InvalidParameter) as refused:
        [i async for i in listed.describe_invocations()]
    assert refused.value.code == "RegionId.ApiNotSupported"


# --- key flags ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "code"),
    [(FORBIDDEN, "Operation.Forbidden"), (BID_USER, "OperationDenied.BidOwnResource")],
    ids=["forbidden", "bid_user"],
)
async def test_key_flags_refuse_run_command(
    sim: RunningSimulator,
    session: aiohttp.ClientSession,
    signature_version: str,
    key: KeySpec,
    code: str,
):
    """A RAM user without ecs:RunCommand, or a bid user, is refused with 403; it may still
    read (DescribeInstances)."""
    client = _client(sim, session, key, signature_version=signature_version)
    _is(await _refused(client), code, errors.Forbidden)
    assert [i.instance_id async for i in client.describe_instances(instance_ids=["i-web1"])]
    assert not sim.simulation.invocations


async def test_revoked_sts_key_is_temporary_access_key_error(
    sim: RunningSimulator, session: aiohttp.ClientSession, signature_version: str
):
    """An STS key the simulator issued works until it is revoked; then every call is 403
    TemporaryAccessKey.Error. A key the fleet file marks revoked is refused from the start."""
    issued = sim.issue_sts(3600)
    client = _client(sim, session, issued, signature_version=signature_version)
    assert (await client.run_command(_request())).invoke_id
    sim.revoke_sts(issued.access_key_id)
    _is(await _refused(client), "TemporaryAccessKey.Error", errors.AuthError)
    assert not (await _refused(client)).retryable
    in_file = _client(sim, session, REVOKED, signature_version=signature_version)
    _is(await _refused(in_file), "TemporaryAccessKey.Error", errors.AuthError)
    assert len(sim.simulation.invocations) == 1


async def test_only_known_temporary_keys_are_revoked(sim: RunningSimulator):
    """Revoking a long-term key or an unknown id is a mistake, not a no-op."""
    with pytest.raises(ValueError, match="not a temporary"):
        sim.revoke_sts(sim.access_key_id)
    with pytest.raises(KeyError):
        sim.revoke_sts("STS.nobody")


# --- parameter store ---------------------------------------------------------------


async def test_unknown_store_parameter_is_invalid_parameters(client: EcsClient):
    """`{{oos:NAME}}` / `{{oos-secret:NAME}}` naming no parameter: 403
    ParameterStore.InvalidParameters; named ones pass."""
    for content in ("echo {{oos:missing}}", "echo {{ oos-secret:greeting }}"):
        _is(
            await _refused(client, **_oos(content)),
            "ParameterStore.InvalidParameters",
            errors.Forbidden,
        )
    ok = await client.run_command(
        _request(**_oos("echo {{oos:greeting}} {{oos-secret:db-password}}"))
    )
    assert ok.invoke_id


async def test_store_reference_without_access_is_no_permission(
    sim: RunningSimulator, session: aiohttp.ClientSession, signature_version: str
):
    """A key without parameter-store access: 403 ParameterStore.NoPermission, only when the
    content references the store."""
    client = _client(sim, session, NO_OOS, signature_version=signature_version)
    _is(
        await _refused(client, **_oos("echo {{oos:greeting}}")),
        "ParameterStore.NoPermission",
        errors.Forbidden,
    )
    assert (await client.run_command(_request(**_oos("echo {{ACS::InstanceId}}")))).invoke_id


async def test_store_braces_without_enable_parameter_are_plain_text(client: EcsClient):
    """Without EnableParameter `{{oos:…}}` is no reference: nothing is looked up."""
    assert (await client.run_command(_request(content="echo {{oos:missing}}"))).invoke_id


class TestNoParameterStore:
    @pytest.fixture
    def fleet(self) -> FleetSpec:
        """The small fleet in a region without a parameter store."""
        return load_fleet(_fleet_text(NO_STORE))

    async def test_store_reference_is_not_supported(self, client: EcsClient):
        """Any `{{oos:…}}` reference: 403 ParameterStore.NotSupported."""
        for content in ("echo {{oos:greeting}}", "echo {{OOS-secret:pw}}"):
            _is(
                await _refused(client, **_oos(content)),
                "ParameterStore.NotSupported",
                errors.Forbidden,
            )
        assert (await client.run_command(_request(**_oos("echo {{x}}")))).invoke_id


class TestLocalAgentMode:
    @pytest.fixture
    def fleet(self) -> FleetSpec:
        """The account fleet with agents that really run shell scripts."""
        return load_fleet(_fleet_text() + "agent_mode: local\n")

    async def test_store_values_are_substituted(self, client: EcsClient, sim: RunningSimulator):
        """A local agent runs the content with the stored values in place."""
        content = "echo {{oos:greeting}} {{ oos-secret:db-password }} {{n}}"
        result = await client.run_command(_request(**_oos(content), parameters={"n": "7"}))
        await sim.simulation.local_idle()
        [row] = [r async for r in client.describe_invocation_results(invoke_id=result.invoke_id)]
        assert row.status is InstanceInvocationStatus.SUCCESS
        assert row.output == "hello-from-oos s3cret-value 7\n"


# --- resource groups ---------------------------------------------------------------


async def test_unknown_resource_group_is_not_found(client: EcsClient):
    """A ResourceGroupId the account does not have: 404 InvalidResourceGroup.NotFound."""
    _is(
        await _refused(client, resource_group_id="rg-nope"),
        "InvalidResourceGroup.NotFound",
        errors.NotFound,
    )
    assert (await client.run_command(_request(resource_group_id="rg-prod"))).invoke_id


@pytest.mark.parametrize("group", ["rg-new", "rg-old"])
async def test_group_being_created_or_deleted_is_invalid_status(client: EcsClient, group: str):
    """A resource group being created or deleted: 403 InvalidStatus.ResourceGroup."""
    _is(
        await _refused(client, resource_group_id=group),
        "InvalidStatus.ResourceGroup",
        errors.Forbidden,
    )


class TestUnconfiguredAccount:
    @pytest.fixture
    def fleet(self) -> FleetSpec:
        """The small fleet as it is: no account section."""
        return load_fleet(SMALL_FLEET)

    async def test_any_group_and_store_reference_are_accepted(self, client: EcsClient):
        """Without `account`, any ResourceGroupId and any `{{oos:…}}` pass, as before."""
        result = await client.run_command(
            _request(resource_group_id="rg-anything", **_oos("echo {{oos:anything}}"))
        )
        assert result.invoke_id


# --- faults ------------------------------------------------------------------------


async def test_dispatch_error_answers_500_without_acting(
    sim: RunningSimulator, session: aiohttp.ClientSession, signature_version: str
):
    """A scripted dispatch fault: 500 InternalError.Dispatch, retryable, nothing created."""
    client = _client(sim, session, signature_version=signature_version)
    sim.faults.fail_next(FaultKind.DISPATCH_ERROR)
    # Describe calls do not dispatch: the queued fault waits for the next RunCommand.
    assert [i async for i in client.describe_instances(instance_ids=["i-web1"])]
    error = await _refused(client)
    _is(error, "InternalError.Dispatch", errors.ServerError)
    assert error.retryable
    assert not sim.simulation.invocations
    assert sim.faults.counts[FaultKind.DISPATCH_ERROR] == 1


async def test_dispatch_error_is_retried_and_runs_once(
    sim: RunningSimulator, session: aiohttp.ClientSession, clock: ManualClock
):
    """With a ClientToken the client retries InternalError.Dispatch like any 5xx: the
    command lands once."""
    retries: list[RetryDetails] = []
    client = _client(sim, session, retry=RetryPolicy(), on_retry=retries.append)
    sim.faults.fail_next(FaultKind.DISPATCH_ERROR, 2, action="RunCommand")
    result = await client.run_command(_request(client_token="dispatch-1"))
    assert [r.error_code for r in retries] == ["InternalError.Dispatch"] * 2
    clock.advance(10)
    assert sim.simulation.execution_counts() == {"i-web1": {result.invoke_id: 1}}


async def test_dispatch_error_on_stop_invocation_stops_nothing(
    sim: RunningSimulator, session: aiohttp.ClientSession
):
    """StopInvocation refused with InternalError.Dispatch leaves the task running."""
    client = _client(sim, session)
    result = await client.run_command(_request(instance_ids=["i-hang1"]))
    sim.faults.fail_next(FaultKind.DISPATCH_ERROR, action="StopInvocation")
    with pytest.raises(errors.ServerError) as caught:
        await client.stop_invocation(result.invoke_id)
    _is(caught.value, "InternalError.Dispatch", errors.ServerError)
    record = sim.simulation.invocations[result.invoke_id].records["i-hang1"]
    assert record.stop_time is None
    await client.stop_invocation(result.invoke_id)
    assert record.stop_time is not None


async def test_seeded_dispatch_errors_hit_dispatching_actions_only(
    sim: RunningSimulator, session: aiohttp.ClientSession
):
    """`dispatch_error_rate` fails RunCommand, never a Describe call."""
    client = _client(sim, session)
    sim.faults.set(FaultSpec(dispatch_error_rate=1.0))
    assert [i async for i in client.describe_instances(instance_ids=["i-web1"])]
    _is(await _refused(client), "InternalError.Dispatch", errors.ServerError)
    assert sim.faults.counts[FaultKind.DISPATCH_ERROR] == 1


def test_dispatch_rate_leaves_the_other_decisions_alone():
    """Setting dispatch_error_rate changes no InternalError/ServiceUnavailable decision:
    it draws from a stream of its own."""

    def errors_of(spec: FaultSpec) -> list[FaultKind | None]:
        faults = Faults(spec)
        decisions = [faults.decide("RunCommand").error for _ in range(200)]
        return [kind if kind is not FaultKind.DISPATCH_ERROR else None for kind in decisions]

    before = errors_of(FaultSpec(seed=4, error_rate=0.3))
    after = errors_of(FaultSpec(seed=4, error_rate=0.3, dispatch_error_rate=0.5))
    assert before == after
    assert FaultKind.INTERNAL_ERROR in before
    dispatched = Faults(FaultSpec(seed=4, dispatch_error_rate=0.5))
    kinds = [dispatched.decide("RunCommand").error for _ in range(200)]
    assert 50 < kinds.count(FaultKind.DISPATCH_ERROR) < 150


async def test_scripted_api_error_reaches_invalid_cmd_id_not_found(
    sim: RunningSimulator, session: aiohttp.ClientSession, signature_version: str
):
    """RunCommand takes no CommandId, so only a scripted API error answers 404
    InvalidCmdId.NotFound; nothing is created, and the next call runs."""
    client = _client(sim, session, signature_version=signature_version)
    sim.faults.fail_next(FaultKind.API_ERROR, action="RunCommand", code="InvalidCmdId.NotFound")
    _is(await _refused(client), "InvalidCmdId.NotFound", errors.NotFound)
    assert not sim.simulation.invocations
    assert sim.faults.counts[FaultKind.API_ERROR] == 1
    assert (await client.run_command(_request())).invoke_id


def test_scripted_fault_arguments_are_checked():
    """API_ERROR needs a known code; only API_ERROR takes one; dispatch faults name a
    dispatching action."""
    faults = Faults()
    with pytest.raises(ValueError, match=r"api\.ERRORS"):
        faults.fail_next(FaultKind.API_ERROR, code="No.Such.Code")
    with pytest.raises(ValueError, match=r"api\.ERRORS"):
        faults.fail_next(FaultKind.API_ERROR)
    with pytest.raises(ValueError, match="only an API_ERROR"):
        faults.fail_next(FaultKind.INTERNAL_ERROR, code="InternalError")
    with pytest.raises(ValueError, match="dispatch"):
        faults.fail_next(FaultKind.DISPATCH_ERROR, action="DescribeInstances")
    assert faults.pending == 0


# --- the order of the checks ---------------------------------------------------------

# (key, region, request overrides, the code that wins): each pair of conditions is
# resolved as docs/simulator.md says.
PRECEDENCE = [
    (FORBIDDEN, NO_CA_REGION, {}, "RegionId.ApiNotSupported"),
    (FORBIDDEN, None, {"type": "RunPythonScript"}, "Operation.Forbidden"),
    (BID_USER, None, {"type": "RunPythonScript"}, "OperationDenied.BidOwnResource"),
    (NO_OOS, None, {**_oos("echo {{oos:greeting}}"), "type": "Nope"}, "InvalidCmdType.NotFound"),
    (None, None, {**_oos("{{oos:missing}}"), "name": "n" * 129}, "CmdName.ExceedLimit"),
    (
        None,
        None,
        {**_oos("{{oos:missing}}"), "resource_group_id": "rg-nope"},
        "InvalidResourceGroup.NotFound",
    ),
    (NO_OOS, None, _oos("{{oos:missing}}"), "ParameterStore.NoPermission"),
    (
        None,
        None,
        {**_oos("{{oos:missing}}"), "instance_ids": ["i-nothere"]},
        "ParameterStore.InvalidParameters",
    ),
    (
        None,
        None,
        {"resource_group_id": "rg-new", "instance_ids": ["i-nothere"]},
        "InvalidStatus.ResourceGroup",
    ),
]


@pytest.mark.parametrize(
    ("key", "region", "overrides", "code"), PRECEDENCE, ids=[case[3] for case in PRECEDENCE]
)
async def test_checks_run_in_the_documented_order(
    sim: RunningSimulator,
    session: aiohttp.ClientSession,
    key: KeySpec | None,
    region: str | None,
    overrides: dict[str, Any],
    code: str,
):
    """Region, caller, parameters, resource group, parameter store, instances: the first
    broken rule answers."""
    client = _client(sim, session, key, region=region)
    assert (await _refused(client, **overrides)).code == code


# --- the error body on the wire ------------------------------------------------------


@dataclass(frozen=True)
class WireCase:
    """One refused RunCommand, sent raw: its fleet, key, parameters and any fault."""

    code: str
    params: dict[str, str] = field(default_factory=dict)
    key: KeySpec = OWNER
    extra: str = ACCOUNT
    fault: Callable[[Faults], None] | None = None


OOS = {"EnableParameter": "true"}
WIRE_CASES = [
    WireCase("RegionId.ApiNotSupported", {"RegionId": NO_CA_REGION}),
    WireCase("ParameterStore.NotSupported", {**OOS, "CommandContent": "{{oos:x}}"}, extra=NO_STORE),
    WireCase("TemporaryAccessKey.Error", key=REVOKED),
    WireCase("ParameterStore.InvalidParameters", {**OOS, "CommandContent": "{{oos:missing}}"}),
    WireCase("ParameterStore.NoPermission", {**OOS, "CommandContent": "{{oos:greeting}}"}, NO_OOS),
    WireCase("OperationDenied.BidOwnResource", key=BID_USER),
    WireCase("Operation.Forbidden", key=FORBIDDEN),
    WireCase("InvalidStatus.ResourceGroup", {"ResourceGroupId": "rg-old"}),
    WireCase(
        "InvalidCmdId.NotFound",
        fault=lambda f: f.fail_next(FaultKind.API_ERROR, code="InvalidCmdId.NotFound"),
    ),
    WireCase("InvalidResourceGroup.NotFound", {"ResourceGroupId": "rg-nope"}),
    WireCase("InternalError.Dispatch", fault=lambda f: f.fail_next(FaultKind.DISPATCH_ERROR)),
]


def _signed_v1(key: KeySpec, params: dict[str, str]) -> dict[str, str]:
    """RunCommand parameters signed by the Tea SDK's own V1 signer (not ours)."""
    full = {
        "Action": "RunCommand",
        "Version": api.API_VERSION,
        "Format": "JSON",
        "AccessKeyId": key.access_key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": uuid.uuid4().hex,
        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "RegionId": "cn-hangzhou",
        "Type": SHELL,
        "CommandContent": "true",
        "InstanceId.1": "i-web1",
        **({"SecurityToken": key.security_token} if key.security_token else {}),
        **params,
    }
    full["Signature"] = TeaUtils.get_rpcsignature(full, "POST", key.access_key_secret)
    return full


@pytest.mark.sdk
@pytest.mark.parametrize("case", WIRE_CASES, ids=[case.code for case in WIRE_CASES])
async def test_error_body_has_every_field(session: aiohttp.ClientSession, case: WireCase):
    """The raw answer: the seed's HTTP status and a body of RequestId, HostId, Code,
    Message (and Recommend), RequestId also in the header."""
    async with serve(load_fleet(_fleet_text(case.extra)), clock=ManualClock()) as sim:
        if case.fault is not None:
            case.fault(sim.faults)
        query = urlencode(_signed_v1(case.key, case.params), quote_via=quote)
        url = yarl.URL(f"{sim.url}/?{query}", encoded=True)
        async with session.post(url) as response:
            status, body = response.status, json.loads(await response.read())
            header_id = response.headers.get("x-acs-request-id")
        assert not sim.simulation.invocations
    spec = api.ERRORS[case.code]
    assert status == spec.http_status
    assert set(body) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
    assert (body["Code"], body["Message"]) == (case.code, spec.message)
    assert body["HostId"] == "ecs.cn-hangzhou.aliyuncs.com"
    assert body["RequestId"]
    assert header_id in {None, body["RequestId"]}


# --- fleet file --------------------------------------------------------------------


def test_account_and_key_flags_are_read_and_keep_secrets_out_of_repr(fleet: FleetSpec):
    """The account section and key flags parse; secrets and stored values stay out of repr."""
    account = fleet.account
    assert dict(account.resource_groups or {}) == {
        "rg-prod": "Available",
        "rg-new": "Creating",
        "rg-old": "Deleting",
    }
    assert account.store_values() == {
        "oos:greeting": "hello-from-oos",
        "oos-secret:db-password": "s3cret-value",
    }
    assert account.regions_without_cloud_assistant == {NO_CA_REGION}
    keys = {key.access_key_id: key for key in fleet.keys}
    assert keys[FORBIDDEN.access_key_id].forbidden
    assert keys[BID_USER.access_key_id].bid_user
    assert not keys[NO_OOS.access_key_id].parameter_store_access
    assert keys[REVOKED.access_key_id].revoked
    shown = repr(fleet)
    for secret in ("s3cret-value", "hello-from-oos", "sts-token", "forbidden-secret"):
        assert secret not in shown


def test_defaults_are_the_old_behaviour():
    """No account section: any group, any store name, no extra region; keys unflagged."""
    spec = load_fleet("keys: [{access_key_id: a, access_key_secret: b}]\n")
    assert spec.account.resource_groups is None
    assert spec.account.parameter_store is None
    assert spec.account.parameter_store_supported
    assert not spec.account.regions_without_cloud_assistant
    [key] = spec.keys
    assert (key.forbidden, key.bid_user, key.parameter_store_access, key.revoked) == (
        False,
        False,
        True,
        False,
    )


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("account: {resource_groups: {rg-1: Gone}}", "fleet.account.resource_groups.rg-1"),
        ("account: {regions_without_cloud_assistant: [cn-hangzhou]}", "regions_without"),
        ("account: {parameter_store_supported: false, parameter_store: {a: b}}", "supported"),
        ("account: {parameter_store: [a]}", "fleet.account.parameter_store"),
        ("account: {unknown: 1}", "fleet.account.unknown"),
        ("keys: [{access_key_id: a, access_key_secret: b, revoked: true}]", "revoked"),
        ("keys: [{access_key_id: a, access_key_secret: b, forbidden: yes please}]", "forbidden"),
        ("faults: {dispatch_error_rate: 2}", "fleet.faults.dispatch_error_rate"),
    ],
)
def test_bad_account_settings_are_refused(text: str, where: str):
    """Every new key is checked where it is read, and the error names it."""
    with pytest.raises(FleetError, match=re.escape(where)):
        load_fleet(text + "\n")


# --- every code of the seed -----------------------------------------------------------

# The error table of the 2024 RunCommand seed (shared/reference/seeds/000_fc48d6fbf7b03b9f),
# status and code, in its order. Written out unquoted, so that the search below cannot
# find a code here: each must be quoted in some test that drives the simulator.
SEED_TABLE = """
400 RegionId.ApiNotSupported
400 MissingParam.InstanceId
400 NumberExceed.Tags
400 InvalidTagValue.Malformed
400 Duplicate.TagKey
400 InvalidTagKey.Malformed
400 MissingParameter.TagKey
400 InvalidContainerId.Malformed
400 InvalidContainerName.Malformed
400 InvalidClientToken.Malformed
400 CmdParam.EmptyKey
400 CmdParam.InvalidParamName
400 CmdContent.DecodeError
400 InvalidInstance.NotMatch
400 MissingParam.Frequency
400 InvalidParam.Frequency
400 ParameterKey.Duplicate
400 Parameter.NotMatched
400 WindowsPasswordName.Missed
400 Parameter.Disabled
400 InvalidParameter.WorkingDir
400 NumberExceed.ResourceTags
400 MissingParameter.ResourceTagKey
400 InvalidResourceTagKey.Malformed
400 InvalidResourceTagValue.Malformed
400 Duplicate.ResourceTagKey
400 InvalidResourceTag.InstanceNotFound
400 InvalidResourceTag.ConflictWithInstanceIds
403 CmdContent.ExceedLimit
403 CmdName.ExceedLimit
403 CmdDesc.ExceedLimit
403 CmdCount.ExceedQuota
403 CmdParamCount.ExceedLimit
403 CmdParamName.ExceedLimit
403 InstanceIds.ExceedLimit
403 Invocation.ExceedQuota
403 ParameterCount.ExceedLimit
403 ParameterKey.ExceedLimit
403 ParameterType.NotSupported
403 Username.ExceedLimit
403 WindowsPasswordName.ExceedLimit
403 ParameterStore.NotSupported
403 TemporaryAccessKey.Error
403 ParameterStore.InvalidParameters
403 ParameterStore.NoPermission
403 OperationDenied.BidOwnResource
403 Operation.Forbidden
403 IdempotentParameterMismatch
403 IdempotentProcessing
403 InvalidStatus.ResourceGroup
404 InvalidCmdType.NotFound
404 InvalidRepeatMode.NotFound
404 InvalidRegionId.NotFound
404 InvalidInstance.NotFound
404 InvalidCmdId.NotFound
404 InvalidResourceGroup.NotFound
500 InternalError.Dispatch
"""
SEED_CODES = [tuple(line.split()) for line in SEED_TABLE.strip().splitlines()]
SEED_DOCUMENT = TESTS.parents[1] / "shared" / "reference" / "seeds" / "000_fc48d6fbf7b03b9f.txt"


def _simulator_tests() -> str:
    """The text of every test module that drives the simulator."""
    texts = (path.read_text(encoding="utf-8") for path in sorted(TESTS.rglob("test_*.py")))
    return "\n".join(text for text in texts if "orchestrator.sim" in text)


def test_every_seed_code_is_known_with_its_status():
    """Each code of the seed's table is in api.ERRORS with the seed's HTTP status."""
    assert len(SEED_CODES) == 57
    for status, code in SEED_CODES:
        assert code in api.ERRORS, code
        assert api.ERRORS[code].http_status == int(status), code


@pytest.mark.parametrize(("status", "code"), SEED_CODES, ids=[code for _, code in SEED_CODES])
def test_every_seed_code_is_reached_by_a_simulator_test(status: str, code: str):
    """No code of the seed goes untested: some simulator test expects it, quoted."""
    text = _simulator_tests()
    assert f'"{code}"' in text or f"'{code}'" in text, f"{status} {code}: no test reaches it"


@pytest.mark.skipif(not SEED_DOCUMENT.is_file(), reason="the seed document is not here")
def test_the_written_table_is_the_seed_document():
    """The table above is the seed's error table: same codes, statuses, messages, order."""
    text = SEED_DOCUMENT.read_text(encoding="utf-8")
    table = text[text.rindex("HTTP status code") : text.index("访问错误中心")]
    rows = [line for line in table.splitlines() if re.match(r"\d{3}[A-Z]", line)]
    assert len(rows) == len(SEED_CODES)
    for row, (status, code) in zip(rows, SEED_CODES, strict=True):
        assert row.startswith(f"{status}{code}{api.ERRORS[code].message}"), row
