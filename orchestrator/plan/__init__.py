"""Plans: what to run, where, in which waves and how fast, as checked, frozen data.

`load_plan(path)` reads a plan file and `parse_plan(text)` a plan's text; both check
every rule the RunCommand API enforces, and the plan's own rules, before anything is
sent, and raise `PlanError` whose `problems` list everything wrong at once
(`FILE:LINE: field: what is wrong (Code)`). The format is docs/plan-reference.md.
`build_adhoc_plan(AdhocCommand(...))` makes a plan's text of `orchestrator exec`'s
flags and checks it the same way, its problems pointed at the flags.
`check_credentials_in_use(plan, credentials)` is the last check, once the credentials a
run signs with are known: nothing the plan sends may hold them.
`override_params(plan, values)` is the plan with `--param` values in place, checked again.
`rollback_plan(plan)` is the plan a rollback run of `plan` runs: its `rollback:` as the
command, in one wave.
"""

from orchestrator.errors import PlanError, Problem
from orchestrator.plan._adhoc import ADHOC_PLAN_PATH, AdhocCommand, AdhocPlan, build_adhoc_plan
from orchestrator.plan._in_use import check_credentials_in_use
from orchestrator.plan._load import load_plan, parse_plan, read_plan_text
from orchestrator.plan._model import (
    Amount,
    Command,
    Limits,
    Plan,
    Rollback,
    Targets,
    Verify,
    Wave,
)
from orchestrator.plan._overrides import override_params, parse_param
from orchestrator.plan._rollback import ROLLBACK_WAVE, rollback_plan
from orchestrator.plan._values import parse_amount

__all__ = [
    "ADHOC_PLAN_PATH",
    "ROLLBACK_WAVE",
    "AdhocCommand",
    "AdhocPlan",
    "Amount",
    "Command",
    "Limits",
    "Plan",
    "PlanError",
    "Problem",
    "Rollback",
    "Targets",
    "Verify",
    "Wave",
    "build_adhoc_plan",
    "check_credentials_in_use",
    "load_plan",
    "override_params",
    "parse_amount",
    "parse_param",
    "parse_plan",
    "read_plan_text",
    "rollback_plan",
]
