"""orchestrator: run a script across a fleet of Alibaba Cloud ECS instances.

The public surface, for use as a library: load a plan, resolve its targets, run it.

    plan = load_plan(Path("plans/canary-then-full.yaml"))
    resolution = await resolve(plan.targets, plan.command.type, client)
    result = await run_rollout(plan, client, resolution.runnable, run_id=..., clock=..., sink=...)

`orchestrator.ecs` (the API client), `orchestrator.sim` (the simulator) and
`orchestrator.testing` (test helpers) are public packages of their own.
"""

from orchestrator.errors import OrchestratorError, PlanError
from orchestrator.plan import Plan, load_plan, parse_plan
from orchestrator.rollout import InstanceResult, Outcome, RolloutResult, run_rollout
from orchestrator.targets import Resolution, resolve

__all__ = [
    "InstanceResult",
    "OrchestratorError",
    "Outcome",
    "Plan",
    "PlanError",
    "Resolution",
    "RolloutResult",
    "load_plan",
    "parse_plan",
    "resolve",
    "run_rollout",
]
