"""Invocations and their per-instance records, with every status derived on demand.

A record stores only when it was created, how its agent will behave (a seeded
`RunPlan` per run, computed when first needed) and when it was stopped; its status at a
moment `now` is worked out from those times when a Describe call asks. Local-mode
records instead read what their subprocess task wrote. The rules that fold per-instance
states into the overall `InvocationStatus`, the legacy `InvokeStatus` /
`InstanceInvokeStatus` and the per-record `InvokeRecordStatus` live here too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final, Literal

import anyio

from orchestrator import api
from orchestrator.api import InstanceInvocationStatus as S
from orchestrator.api import InvocationStatus
from orchestrator.sim._agent import (
    KILLED_EXIT_CODE,
    Behaviour,
    LocalResult,
    RunPlan,
    cut_output,
    plan_run,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from orchestrator.sim._fleet import InstanceSpec
    from orchestrator.sim._runcommand import RunCommandSpec

# What a record does: run normally (simulated), never get delivered (agent offline),
# fail for an agent too old for the feature, or run for real (local mode).
RecordKind = Literal["run", "offline", "upgrade", "local"]
_PERIODIC: Final = ("Period", "NextRebootOnly", "EveryReboot")
_FAILED: Final = frozenset({S.FAILED, S.INVALID, S.ABORTED, S.ERROR, S.TIMEOUT})
_STOPPED: Final = frozenset({S.CANCELLED, S.TERMINATED})


@dataclass(frozen=True, slots=True)
class Phase:
    """From `at` on, a run is in `status` (with these result fields)."""

    at: datetime
    status: S
    error_code: str = ""
    exit_code: int = 0
    output: str = ""
    dropped: int = 0  # bytes of output cut beyond 24 KB


@dataclass(frozen=True, slots=True)
class RecordView:
    """One instance's record as the Describe calls show it at one moment."""

    instance_id: str
    status: S
    error_code: str
    exit_code: int
    output: str
    dropped: int
    repeats: int
    created: datetime
    start: datetime | None
    finish: datetime | None
    stop: datetime | None
    update: datetime

    @property
    def error_info(self) -> str:
        return api.INSTANCE_ERROR_INFO.get(self.error_code, "")


class LocalRun:
    """What a local-mode subprocess task reports back (written by the task only)."""

    __slots__ = ("finished", "result", "started", "stop")

    def __init__(self) -> None:
        self.stop = anyio.Event()  # set by StopInvocation; the task kills the process
        self.started: datetime | None = None
        self.finished: datetime | None = None
        self.result: LocalResult | None = None


class Record:
    """One instance of one invocation."""

    __slots__ = ("_plans", "behaviour", "final", "instance", "kind", "local", "stop_time")

    def __init__(self, instance: InstanceSpec, kind: RecordKind, behaviour: Behaviour) -> None:
        self.instance = instance
        self.kind: RecordKind = kind
        self.behaviour = behaviour
        self.stop_time: datetime | None = None
        self.local: LocalRun | None = LocalRun() if kind == "local" else None
        self._plans: dict[int, RunPlan] = {}
        # A terminal view never changes again: kept so settled records cost nothing.
        self.final: RecordView | None = None

    @property
    def instance_id(self) -> str:
        return self.instance.instance_id

    def plan(self, inv: Invocation, run: int) -> RunPlan:
        found = self._plans.get(run)
        if found is None:
            found = plan_run(
                self.behaviour,
                seed=inv.seed,
                invoke_id=inv.invoke_id,
                instance_id=self.instance_id,
                run=run,
            )
            self._plans[run] = found
        return found


class Invocation:
    """One RunCommand: the command as given and a record per instance."""

    __slots__ = (
        "_fires", "command_id", "created", "frequency", "frequency_text", "invoke_id",
        "offline_timeout", "records", "render_output", "seed", "spec", "stop_delay",
    )  # fmt: skip

    def __init__(
        self,
        *,
        invoke_id: str,
        command_id: str,
        spec: RunCommandSpec,
        frequency_text: str,
        created: datetime,
        seed: int,
        offline_timeout: float,
        stop_delay: float,
        render_output: Callable[[str, InstanceSpec], str],
    ) -> None:
        self.invoke_id = invoke_id
        self.command_id = command_id
        self.spec = spec
        self.frequency_text = frequency_text
        self.created = created
        self.seed = seed
        self.offline_timeout = offline_timeout
        self.stop_delay = stop_delay
        self.render_output = render_output
        self.records: dict[str, Record] = {}
        # rate() counts its intervals from the task's creation.
        frequency = spec.frequency
        self.frequency = frequency.anchored(created) if frequency is not None else None
        self._fires: list[datetime] = []  # fire times of a periodic task, found so far

    @property
    def periodic(self) -> bool:
        return self.spec.repeat_mode in _PERIODIC

    def fires(self, until: datetime) -> list[datetime]:
        """Times the task fired up to `until` (Once: its creation)."""
        if not self.periodic:
            return [self.created]
        frequency = self.frequency
        if self.spec.repeat_mode != "Period" or frequency is None:
            return []  # reboot modes: the simulator never reboots an instance
        while True:
            last = self._fires[-1] if self._fires else self.created
            following = frequency.next_after(last)
            if following is None or following > until:
                return self._fires
            self._fires.append(following)

    def has_next_fire(self, after: datetime) -> bool:
        if not self.periodic:
            return False
        if self.spec.repeat_mode != "Period" or self.frequency is None:
            return True
        return self.frequency.next_after(after) is not None

    def view(self, record: Record, now: datetime) -> RecordView:
        """The record's state at `now` (which never goes back)."""
        if record.final is not None:
            return record.final
        if record.kind == "local":
            found = self._fold([self._local_phases(record)], record, now, periodic=False)
        elif record.kind != "run":
            # Never delivered or refused at delivery: one attempt, even for a periodic task.
            runs = [self._phases(record, self.created, 0, now)]
            found = self._fold(runs, record, now, periodic=False)
        else:
            stop = record.stop_time
            runs = [
                self._phases(record, fire, index, now)
                for index, fire in enumerate(self.fires(now))
                if stop is None or fire < stop
            ]
            found = self._fold(runs, record, now, periodic=self.periodic)
        if found.status.terminal:
            record.final = found
        return found

    def history(self, record: Record, now: datetime) -> list[RecordView]:
        """Each run of a periodic task so far, oldest first (IncludeHistory)."""
        if record.kind != "run":
            return [self.view(record, now)]
        stop = record.stop_time
        runs = []
        for index, fire in enumerate(self.fires(now)):
            if stop is not None and fire >= stop:
                break
            phases = self._phases(record, fire, index, now)
            view = self._fold([phases], record, now, periodic=False)
            runs.append(replace(view, repeats=index + 1))
        return runs

    def views(self, now: datetime) -> list[RecordView]:
        return [self.view(record, now) for record in self.records.values()]

    def status(self, now: datetime) -> InvocationStatus:
        return overall_status(v.status for v in self.views(now))

    def finished_at(self, now: datetime) -> datetime | None:
        """When its last instance became final; None while one is not (yet) final."""
        views = self.views(now)
        if not all(view.status.terminal for view in views):
            return None
        return max((view.update for view in views), default=self.created)

    # --- derivation -----------------------------------------------------------------

    def _phases(self, record: Record, fire: datetime, run: int, now: datetime) -> list[Phase]:
        plan = record.plan(self, run)
        phases = [Phase(fire, S.PENDING)]
        if record.kind == "offline":
            # (unconfirmed) an unreachable agent: Pending, then Aborted/ClientNotResponse.
            abort = fire + timedelta(seconds=self.offline_timeout)
            phases.append(Phase(abort, S.ABORTED, "ClientNotResponse"))
            return self._stopped(record, phases)
        deliver = fire + timedelta(seconds=plan.delay)
        if record.kind == "upgrade":
            # (unconfirmed) the status that goes with ClientNeedUpgrade: Failed.
            phases.append(Phase(deliver, S.FAILED, "ClientNeedUpgrade"))
            return self._stopped(record, phases)
        timeout = float(self.spec.timeout)
        phases.append(Phase(deliver, S.RUNNING))
        if plan.hang or plan.duration > timeout:
            end = deliver + timedelta(seconds=timeout)  # FinishedTime = StartTime + Timeout
            phases.append(Phase(end, S.TIMEOUT, "ExecutionTimeout", KILLED_EXIT_CODE))
        else:
            end = deliver + timedelta(seconds=plan.duration)
            output, dropped = "", 0
            if end <= now:  # render only once visible: polling a running fleet stays cheap
                text = self.render_output(plan.output, record.instance)
                kept, dropped = cut_output(text.encode())
                output = kept.decode("utf-8", errors="ignore")  # a cut may split a character
            if plan.exit_code == 0:
                phases.append(Phase(end, S.SUCCESS, "", 0, output, dropped))
            else:
                code = plan.exit_code
                phases.append(Phase(end, S.FAILED, "ExitCodeNonzero", code, output, dropped))
        return self._stopped(record, phases)

    def _stopped(self, record: Record, phases: list[Phase]) -> list[Phase]:
        """Cut a run's phases at the stop time: not started → Cancelled; running →
        Stopping, then Terminated after `stop_delay` unless it ends first."""
        stop = record.stop_time
        if stop is None or stop >= phases[-1].at:
            return phases
        kept = [p for p in phases if p.at <= stop]
        if kept[-1].status is S.PENDING:
            return [*kept, Phase(stop, S.CANCELLED)]
        # The doc says started runs are not interrupted, but TerminationMode kills the
        # process on a manual stop; we terminate (unconfirmed).
        kept.append(Phase(stop, S.STOPPING))
        terminated = stop + timedelta(seconds=self.stop_delay)
        if terminated >= phases[-1].at:
            kept.append(phases[-1])
        else:
            kept.append(Phase(terminated, S.TERMINATED, "", KILLED_EXIT_CODE))
        return kept

    def _local_phases(self, record: Record) -> list[Phase]:
        local = record.local
        assert local is not None
        phases = [Phase(self.created, S.PENDING)]
        stop = record.stop_time
        if local.started is None:
            if stop is not None:
                phases.append(Phase(stop, S.CANCELLED))
            return phases
        phases.append(Phase(local.started, S.RUNNING))
        if stop is not None and (local.finished is None or stop < local.finished):
            phases.append(Phase(stop, S.STOPPING))
        if local.finished is None or local.result is None:
            return phases
        result = local.result
        output = result.output.decode("utf-8", errors="replace")
        at, code, dropped = local.finished, result.exit_code, result.dropped
        if result.stopped:
            phases.append(Phase(at, S.TERMINATED, "", code, output, dropped))
        elif result.timed_out:
            phases.append(Phase(at, S.TIMEOUT, "ExecutionTimeout", code, output, dropped))
        elif code == 0:
            phases.append(Phase(at, S.SUCCESS, "", 0, output, dropped))
        else:
            phases.append(Phase(at, S.FAILED, "ExitCodeNonzero", code, output, dropped))
        return phases

    def _fold(
        self, runs: list[list[Phase]], record: Record, now: datetime, *, periodic: bool
    ) -> RecordView:
        """Combine the runs so far into one view at `now`."""
        repeats = 0
        start: datetime | None = None
        current: Phase | None = None
        finish: datetime | None = None
        for phases in runs:
            reached = [p for p in phases if p.at <= now]
            if not reached:
                continue
            current = reached[-1]
            running = [p.at for p in reached if p.status is S.RUNNING]
            if running:
                repeats += 1
                start = running[-1]
            terminal = current.status.terminal and current.status is not S.CANCELLED
            finish = current.at if terminal else None
        stop = (
            record.stop_time if record.stop_time is not None and record.stop_time <= now else None
        )
        if current is None:
            current = Phase(self.created, S.SCHEDULED if periodic else S.PENDING)
        if periodic and current.status.terminal and current.status is not S.CANCELLED:
            # Between runs: Scheduled while another fire is coming and the task is alive.
            if stop is not None:
                current = replace(current, at=max(stop, current.at), status=S.CANCELLED)
            elif self.has_next_fire(current.at):
                current = replace(current, status=S.SCHEDULED)
        elif periodic and current.status is S.SCHEDULED and stop is not None:
            current = Phase(stop, S.CANCELLED)
        return RecordView(
            instance_id=record.instance_id,
            status=current.status,
            error_code=current.error_code,
            exit_code=current.exit_code,
            output=current.output,
            dropped=current.dropped,
            repeats=repeats,
            created=self.created,
            start=start,
            finish=finish,
            stop=stop,
            update=current.at,
        )

    def executions(self, now: datetime) -> dict[str, int]:
        """Instance id → runs that actually started by `now`."""
        counts = {}
        for record in self.records.values():
            if record.kind in {"offline", "upgrade"}:
                counts[record.instance_id] = 0
            else:
                counts[record.instance_id] = self.view(record, now).repeats
        return counts


def overall_status(statuses: Iterable[S]) -> InvocationStatus:
    """Fold per-instance states into the task's InvocationStatus (api-schemas Statuses).
    When active states mix, the priority Stopping > Running > Pending > Scheduled is
    ours (unconfirmed)."""
    seen = set(statuses)
    for active, overall in (
        (S.STOPPING, InvocationStatus.STOPPING),
        (S.RUNNING, InvocationStatus.RUNNING),
        (S.PENDING, InvocationStatus.PENDING),
        (S.SCHEDULED, InvocationStatus.SCHEDULED),
    ):
        if active in seen:
            return overall
    if not seen or seen <= _STOPPED:
        return InvocationStatus.STOPPED
    if S.SUCCESS in seen:
        return InvocationStatus.PARTIAL_FAILED if seen & _FAILED else InvocationStatus.SUCCESS
    return InvocationStatus.FAILED


def legacy_invoke_status(status: InvocationStatus) -> str:
    """The older overall `InvokeStatus` (Running, Finished, Failed, PartialFailed,
    Stopped); the DOC21 example pairs InvocationStatus Failed with InvokeStatus Finished."""
    if status in {
        InvocationStatus.PENDING,
        InvocationStatus.RUNNING,
        InvocationStatus.SCHEDULED,
        InvocationStatus.STOPPING,
    }:
        return "Running"
    if status is InvocationStatus.STOPPED:
        return "Stopped"
    return "Finished"


def legacy_instance_status(status: S) -> str:
    """The older per-instance `InstanceInvokeStatus` (e.g. `Finished`)."""
    if not status.terminal:
        return "Running"
    return "Stopped" if status in _STOPPED else "Finished"


def record_status(view: RecordView) -> str:
    """`InvokeRecordStatus` of one record (DescribeInvocationResults). The doc's example
    shows a non-zero exit as Finished; a record that never ran to an exit (Aborted,
    Timeout, ClientNeedUpgrade…) as Failed is our reading (unconfirmed)."""
    status = view.status
    if status is S.STOPPING:
        return "Stopping"
    if not status.terminal:
        return "Running"
    if status in _STOPPED:
        return "Stopped"
    if status is S.SUCCESS or view.error_code == "ExitCodeNonzero":
        return "Finished"
    return "Failed"
