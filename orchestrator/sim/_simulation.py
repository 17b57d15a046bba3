"""The simulated account: fleet, invocations, quotas, idempotency, and the handlers.

`Simulation` owns all mutable state and the two actions that change it (RunCommand,
StopInvocation); the read-only Describe handlers live in `_actions.py`. Simulated agents
need no task (their records derive status from planned times on the clock); local-mode
agents run real subprocesses in the simulation's task group, so a `Simulation` in local
mode must be entered (`async with`) before it accepts commands.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Self

import anyio
import anyio.abc

from orchestrator import api
from orchestrator.sim import _actions
from orchestrator.sim._agent import (
    CONTAINER_MIN_VERSION,
    FREQUENCY_MIN_VERSION,
    run_local,
    version_tuple,
)
from orchestrator.sim._history import InvocationStore
from orchestrator.sim._index import FleetIndex
from orchestrator.sim._invocations import Invocation, Record, RecordKind
from orchestrator.sim._parameters import check_store, render
from orchestrator.sim._params import repeated
from orchestrator.sim._protocol import Call, Handler, SimApiError
from orchestrator.sim._runcommand import parse_run_command
from orchestrator.sim._zones import describe_zones

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping
    from datetime import date

    from orchestrator.clock import Clock
    from orchestrator.sim._fleet import FleetSpec, InstanceSpec
    from orchestrator.sim._runcommand import RunCommandSpec
    from orchestrator.sim._spec import KeySpec

    _Action = Callable[["Simulation", Call], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    """How much of each quota is used (introspection; not on the wire)."""

    day: date
    invocations_today: int  # instance runs created today (the quota's unit here)
    kept_commands: int


@dataclass(slots=True)
class _Token:
    params: dict[str, str]
    result: dict[str, Any] | None  # None while the first request is still processing


class Simulation:
    """One simulated region of one account. Use as `async with Simulation(...) as sim`."""

    def __init__(self, fleet: FleetSpec, clock: Clock) -> None:
        self.fleet = fleet
        self.clock = clock
        self._instances = {inst.instance_id: inst for inst in fleet.instances}
        self._index = FleetIndex(fleet.instances)  # the fleet never changes (_index.py)
        self._keys: dict[str, KeySpec] = {key.access_key_id: key for key in fleet.keys}
        self._store = InvocationStore(fleet.history)
        self._invocations = self._store.by_id
        self._tokens: dict[tuple[str, str], _Token] = {}
        self._token_of: dict[str, tuple[str, str]] = {}  # InvokeId → its ClientToken key
        self._counter = 0
        self._day = clock.now().date()
        self._runs_today = 0
        self._kept_commands = 0
        self._group: anyio.abc.TaskGroup | None = None
        self._limiter = anyio.CapacityLimiter(fleet.local_concurrency)
        self._local_active = 0
        self._local_idle = anyio.Event()
        self._local_idle.set()
        self.handlers: Mapping[str, Handler] = MappingProxyType(
            {
                "RunCommand": self._run_command,
                "StopInvocation": self._stop_invocation,
                "DescribeInstances": self._ecs_action(_actions.describe_instances),
                "DescribeCloudAssistantStatus": lambda call: _actions.describe_agents(self, call),
                "DescribeInvocations": self._listing(_actions.describe_invocations),
                "DescribeInvocationResults": self._listing(_actions.describe_results),
                "DescribeAccountAttributes": self._ecs_action(_actions.describe_account),
                "DescribeZones": self._ecs_action(describe_zones),
            }
        )

    async def __aenter__(self) -> Self:
        group = anyio.create_task_group()
        await group.__aenter__()
        self._group = group
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        group, self._group = self._group, None
        if group is None:
            return None
        group.cancel_scope.cancel()  # local scripts still running are killed
        return await group.__aexit__(exc_type, exc, tb)

    # --- read-only views for tests and the wire layer --------------------------------

    @property
    def instances(self) -> Mapping[str, InstanceSpec]:
        return MappingProxyType(self._instances)

    @property
    def instance_index(self) -> FleetIndex:
        """The fleet indexed for DescribeInstances queries."""
        return self._index

    @property
    def invocations(self) -> Mapping[str, Invocation]:
        return MappingProxyType(self._invocations)

    def invocations_of(self, instance_id: str) -> list[Invocation]:
        return self._store.of_instance(instance_id)

    def execution_counts(self) -> dict[str, dict[str, int]]:
        """Instance id → {invoke id: times the command actually started there}, those
        of aged-out invocations included."""
        return self._store.execution_counts(self.clock.now())

    def age_out(self) -> None:
        """Drop the finished invocations the history no longer keeps (`HistorySpec`),
        and their ClientTokens: a token is remembered while its invocation is listed
        (how long the real service remembers one is unconfirmed)."""
        for invoke_id in self._store.age_out(self.clock.now()):
            key = self._token_of.pop(invoke_id, None)
            if key is not None:
                del self._tokens[key]

    def _listing(self, action: _Action) -> Handler:
        """A Describe call: what it lists is aged out first."""

        async def handler(call: Call) -> dict[str, Any]:
            self.age_out()
            return await action(self, call)

        return handler

    async def local_idle(self) -> None:
        """Wait until no local-mode script is queued or running (for tests and demos)."""
        await self._local_idle.wait()

    def quota_usage(self) -> QuotaUsage:
        self._roll_day()
        return QuotaUsage(self._day, self._runs_today, self._kept_commands)

    # --- RunCommand -----------------------------------------------------------------

    async def _run_command(self, call: Call) -> dict[str, Any]:
        """The order of the checks (the service's own is not documented; this one is
        plausible): the region, the caller's permissions, the parameters (`_runcommand`),
        then in `_accept` the resource group, the parameter store, the instances, the
        quotas and DryRun."""
        self.check_region(call.params)
        self._check_caller(call.access_key_id)
        quotas = self.fleet.quotas
        spec = parse_run_command(call.params, max_instances=quotas.max_instances_per_call)
        if not spec.client_token:
            return await self._accept(spec, call.params, call.access_key_id)
        # Idempotency is per caller: the same token from another access key is another request.
        key = (call.access_key_id, spec.client_token)
        params = {k: v for k, v in call.params.items() if k != "ClientToken"}
        seen = self._tokens.get(key)
        if seen is not None:
            if seen.params != params:
                raise SimApiError("IdempotentParameterMismatch")
            if seen.result is None:
                raise SimApiError("IdempotentProcessing")
            return dict(seen.result)  # the same InvokeId; nothing runs again
        entry = self._tokens[key] = _Token(params, None)
        try:
            entry.result = await self._accept(spec, call.params, call.access_key_id)
        except BaseException:
            del self._tokens[key]  # a refused request leaves no trace; the token is free
            raise
        self._token_of[str(entry.result["InvokeId"])] = key
        return dict(entry.result)

    def check_region(self, params: Mapping[str, str]) -> None:
        """RegionId may be omitted (Tea clients can); another region does not exist here,
        unless the account lists it as a region without Cloud Assistant."""
        region = params.get("RegionId")
        if region and region != self.fleet.region:
            if region in self.fleet.account.regions_without_cloud_assistant:
                raise SimApiError("RegionId.ApiNotSupported")
            raise SimApiError("InvalidRegionId.NotFound")

    def _ecs_action(self, action: _Action) -> Handler:
        """An ECS action that is no Cloud Assistant one: a region without Cloud Assistant
        still has ECS, it is just not the region simulated here (InvalidRegionId.NotFound)."""

        async def handler(call: Call) -> dict[str, Any]:
            region = call.params.get("RegionId")
            if region and region != self.fleet.region:
                raise SimApiError("InvalidRegionId.NotFound")
            return await action(self, call)

        return handler

    def _check_caller(self, access_key_id: str) -> None:
        """What the caller may do, before its parameters are read (RAM decides first).
        Keys issued at run time (STS) carry no flags."""
        key = self._keys.get(access_key_id)
        if key is None:
            return
        if key.forbidden:
            # (unconfirmed) a RAM user without ecs:RunCommand; the gateway may answer
            # Forbidden.RAM instead. The seed lists Operation.Forbidden for RunCommand.
            raise SimApiError("Operation.Forbidden")
        if key.bid_user:
            raise SimApiError("OperationDenied.BidOwnResource")

    def _check_account(self, spec: RunCommandSpec, access_key_id: str) -> None:
        """The resource group, then the parameter store: checks of account state that
        follow the parameters and precede the instances."""
        groups = self.fleet.account.resource_groups
        if spec.resource_group_id is not None and groups is not None:
            state = groups.get(spec.resource_group_id)
            if state is None:
                raise SimApiError("InvalidResourceGroup.NotFound")
            if state != "Available":
                raise SimApiError("InvalidStatus.ResourceGroup")
        if spec.enable_parameter:
            # (unconfirmed) `{{oos:…}}` is a reference only with EnableParameter=true,
            # like every other `{{ }}`; without it the braces are plain text.
            key = self._keys.get(access_key_id)
            access = key is None or key.parameter_store_access
            check_store(spec.content, self.fleet.account, access=access)

    async def _accept(
        self, spec: RunCommandSpec, params: Mapping[str, str], access_key_id: str
    ) -> dict[str, Any]:
        self._check_account(spec, access_key_id)
        targets = self._targets(spec)
        for inst in targets:
            self._check_runnable(spec, inst)
        quotas = self.fleet.quotas
        if spec.keep_command and self._kept_commands >= quotas.commands:
            raise SimApiError("CmdCount.ExceedQuota")
        self._roll_day()
        if self._runs_today + len(targets) > quotas.invocations_daily:
            raise SimApiError("Invocation.ExceedQuota")
        if spec.repeat_mode == "DryRun":
            # Every check passed, quotas included (ECS's DryRun convention; unconfirmed
            # for RunCommand). Nothing is counted or created.
            raise SimApiError("DryRunOperation")
        # Commit the quotas before any wait, so concurrent calls cannot overshoot them.
        self._runs_today += len(targets)
        self._kept_commands += 1 if spec.keep_command else 0
        if self.fleet.run_command_latency > 0:
            await self.clock.sleep(self.fleet.run_command_latency)
        if self.fleet.agent_mode == "local" and self._group is None:
            raise RuntimeError("a local-mode Simulation must be entered (async with) first")
        inv = self._create(spec, params, targets)
        return {"CommandId": inv.command_id, "InvokeId": inv.invoke_id}

    def _targets(self, spec: RunCommandSpec) -> list[InstanceSpec]:
        limit = self.fleet.quotas.max_instances_per_call
        if spec.resource_tags:
            wanted = tuple(spec.resource_tags)
            found = [
                inst
                for inst in self._instances.values()
                if all(_has_tag(inst, k, v) for k, v in wanted)
            ]
            if not found:
                raise SimApiError("InvalidResourceTag.InstanceNotFound")
        else:
            unknown = [i for i in spec.instance_ids if i not in self._instances]
            if unknown:
                raise SimApiError(
                    "InvalidInstance.NotFound",
                    f"The specified instance does not exist: {unknown[0]}",
                )
            found = [self._instances[i] for i in dict.fromkeys(spec.instance_ids)]
        if len(found) > limit:
            raise SimApiError("InstanceIds.ExceedLimit")
        return found

    def _check_runnable(self, spec: RunCommandSpec, inst: InstanceSpec) -> None:
        """One unfit instance fails the whole call (the docs' rule). The code for a
        non-Running instance or a missing agent is unconfirmed: InvalidInstance.NotMatch."""
        windows_type = spec.type in api.WINDOWS_COMMAND_TYPES
        if (
            inst.status != "Running"
            or inst.agent == "not_installed"
            or windows_type != (inst.os == "windows")
        ):
            raise SimApiError(
                "InvalidInstance.NotMatch",
                f"The specified instance does not match the command: {inst.instance_id}",
            )

    def _roll_day(self) -> None:
        today = self.clock.now().date()  # the quota day is the UTC date on the sim clock
        if today != self._day:
            self._day, self._runs_today = today, 0

    def _next_ids(self) -> tuple[str, str]:
        while True:
            self._counter += 1
            digest = hashlib.blake2b(
                f"{self.fleet.seed}:{self._counter}".encode(), digest_size=20
            ).hexdigest()
            invoke_id, command_id = "t-" + digest[:20], "c-" + digest[20:]
            if invoke_id not in self._invocations:
                return invoke_id, command_id

    def _create(
        self, spec: RunCommandSpec, params: Mapping[str, str], targets: list[InstanceSpec]
    ) -> Invocation:
        invoke_id, command_id = self._next_ids()
        behaviour = self.fleet.behaviour
        inv = Invocation(
            invoke_id=invoke_id,
            command_id=command_id,
            spec=spec,
            frequency_text=params.get("Frequency", ""),
            created=self.clock.now(),
            seed=self.fleet.seed,
            offline_timeout=behaviour.offline_timeout,
            stop_delay=behaviour.stop_delay,
            render_output=lambda text, inst: self._render(text, invoke_id, command_id, inst),
        )
        for inst in targets:
            kind = self._kind(spec, inst)
            record = Record(inst, kind, behaviour.for_instance(inst.instance_id, inst.tags))
            inv.records[inst.instance_id] = record
        self._store.add(inv)
        self.age_out()
        for record in inv.records.values():
            if record.kind == "local" and self._group is not None:
                if self._local_active == 0:
                    self._local_idle = anyio.Event()
                self._local_active += 1
                self._group.start_soon(self._run_local, inv, record)
        return inv

    def _kind(self, spec: RunCommandSpec, inst: InstanceSpec) -> RecordKind:
        if inst.agent == "offline":
            return "offline"
        version = version_tuple(inst.agent_version)
        if (spec.frequency is not None and version < FREQUENCY_MIN_VERSION[inst.os]) or (
            (spec.container_id or spec.container_name) and version < CONTAINER_MIN_VERSION
        ):
            return "upgrade"
        if (
            self.fleet.agent_mode == "local"
            and spec.type == "RunShellScript"
            and spec.repeat_mode == "Once"
        ):
            return "local"
        return "run"

    def builtins(self, invoke_id: str, command_id: str, inst: InstanceSpec) -> dict[str, str]:
        """Values of the `{{ACS::…}}` built-in parameters on one instance."""
        return {
            "ACS::RegionId": self.fleet.region,
            "ACS::AccountId": self.fleet.account_id,
            "ACS::InstanceId": inst.instance_id,
            "ACS::InstanceName": inst.name,
            "ACS::InvokeId": invoke_id,
            "ACS::CommandId": command_id,
        }

    def _render(self, text: str, invoke_id: str, command_id: str, inst: InstanceSpec) -> str:
        """An output template: the built-ins plus `{{ACS::ZoneId}}` (ours, for fleet files)."""
        if "{{" not in text:
            return text
        text = text.replace("{{ACS::ZoneId}}", inst.zone)
        return render(text, {}, self.builtins(invoke_id, command_id, inst))

    async def _run_local(self, inv: Invocation, record: Record) -> None:
        local = record.local
        assert local is not None
        spec = inv.spec
        script = spec.content
        if spec.enable_parameter or "{{ACS::" in script:
            builtins = self.builtins(inv.invoke_id, inv.command_id, record.instance)
            store = self.fleet.account.store_values() if spec.enable_parameter else None
            script = render(script, spec.parameters, builtins, store)
        try:
            async with self._limiter:
                if record.stop_time is not None:
                    return  # cancelled before it started: it never runs
                local.started = self.clock.now()
                result = await run_local(script, float(spec.timeout), local.stop)
                local.result = result
                local.finished = self.clock.now()
        finally:
            self._local_active -= 1
            if self._local_active == 0:
                self._local_idle.set()

    # --- StopInvocation -------------------------------------------------------------

    async def _stop_invocation(self, call: Call) -> dict[str, Any]:
        self.check_region(call.params)
        invoke_id = call.params.get("InvokeId", "")
        if not invoke_id:
            raise SimApiError(
                "MissingParameter",
                "The input parameter InvokeId that is mandatory for processing this "
                "request is not supplied.",
            )
        instance_ids = repeated(call.params, "InstanceId")
        if len(instance_ids) > api.STOP_INVOCATION_MAX_INSTANCES:
            raise SimApiError("InstanceIds.ExceedLimit")
        inv = self._invocations.get(invoke_id)
        if inv is None:
            raise SimApiError("InvalidInvokeId.NotFound")
        for instance_id in instance_ids:
            if instance_id not in inv.records:
                raise SimApiError("InvalidInstanceId.NotFound")
        now = self.clock.now()
        # Without InstanceId.N the whole task stops (unconfirmed).
        for instance_id in instance_ids or list(inv.records):
            record = inv.records[instance_id]
            if record.stop_time is not None or inv.view(record, now).status.terminal:
                continue  # already done or already stopping: nothing to stop
            record.stop_time = now
            if record.local is not None:
                record.local.stop.set()
        return {}


def _has_tag(inst: InstanceSpec, key: str, value: str | None) -> bool:
    if not value:
        return any(k == key for k, _ in inst.tags)
    return (key, value) in inst.tags
