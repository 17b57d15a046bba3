"""A run's plan as its journal recorded it, and which of its waves can wait for a person.

`resume` and `stop` run the recorded plan: the journal's plan text, with the `--param`
values the run started with (`origin.params`), and for a run on another run's instances
(a retry, a rollback) exactly the instances the journal holds as its targets.
`approve` and `status` ask it which waves a
person may be asked about: those with `approval: true` (but the last: nothing follows
it) and those with a `verify` (an inconclusive one asks a person), plus the wave the
journal says the run waits at now.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.plan import PlanError, Targets, override_params, parse_plan, rollback_plan

if TYPE_CHECKING:
    from collections.abc import Sequence

    from orchestrator.journal import JournalRecord, RunHeader
    from orchestrator.plan import Plan


def recorded_plan(header: RunHeader) -> Plan:
    """The plan the run started with; raises `PlanError` for one this version refuses."""
    # Its scripts are read again, from where the run was allowed to read them.
    recorded = header.target.get("script_dirs")
    dirs = tuple(Path(p) for p in recorded.split(os.pathsep)) if recorded else ()
    plan = parse_plan(header.plan_text, source=Path(header.plan_path), script_dirs=dirs)
    plan = override_params(plan, header.origin.params)
    if header.origin.parent is None:
        return plan
    # A child run's targets were its parent's instances, resolved when it started: the
    # journal's instances are they (a resume never resolves again).
    return _as_child(plan, header.origin.kind, [i.instance_id for i in header.instances])


def child_plan(parent: RunHeader, kind: str, instance_ids: Sequence[str]) -> Plan:
    """The plan a `kind` run ("retry", "rollback") of `parent` runs on `instance_ids`: the
    very plan `recorded_plan` derives again from that child's journal, by the same step."""
    return _as_child(recorded_plan(parent), kind, instance_ids)


def _as_child(plan: Plan, kind: str, instance_ids: Sequence[str]) -> Plan:
    plan = replace(plan, targets=Targets(instances=tuple(instance_ids)))
    # A rollback's journal records the plan it rolls back: it runs that plan's rollback.
    return rollback_plan(plan) if kind == "rollback" else plan


def waves_that_wait(record: JournalRecord) -> dict[str, str]:
    """The run's waves that a person may be asked to approve, each with why, in order."""
    names = [wave.name for wave in record.header.waves]
    try:
        configs = {wave.name: wave for wave in recorded_plan(record.header).waves}
    except PlanError:
        configs = {}  # only the wave waiting now can be named then
    waiting: dict[str, str] = {}
    for position, name in enumerate(names):
        config = configs.get(name)
        if config is None:
            continue
        if config.approval and position < len(names) - 1:
            waiting[name] = "approval: true"
        elif config.verify is not None:
            waiting[name] = "if its verify is inconclusive"
    if record.waiting_for is not None:
        waiting[record.waiting_for] = "waiting now"
    return waiting
