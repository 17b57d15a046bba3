"""The dry run's numbers, computed once: `orchestrator plan` prints them as a table, and
`plan --json` writes them as a document, so the two can never say different things.

Everything here is arithmetic on the plan, the resolution and the account's quotas: no
call, no output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from orchestrator.cli._reach import gate_reach
from orchestrator.ecs import DEFAULT_RATES
from orchestrator.rollout import order_for, shape_waves, threshold_text

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator.plan import Plan
    from orchestrator.rollout import ShapedWave
    from orchestrator.targets import Resolution

INVOCATION_QUOTA: Final = "max-axt-invocation-daily"
COMMAND_QUOTA: Final = "max-axt-command-count"
# A canary this small only catches a change that fails everywhere: the dry run says so.
SMALL_CANARY: Final = 2


@dataclass(frozen=True, slots=True)
class WavePreview:
    """One wave as it would run: its size, batches, cap and gate, and what follows it.

    `at_once` is None when only the rate limits bound the wave. `max_errors` is the
    plan's amount as written (`"5%"`, `"2"`; None: no limit), `threshold` the counted
    errors it tolerates at this size. `pause` and `approval` are those that follow the
    wave: none after the last one.
    """

    index: int
    name: str
    size: int
    batches: int
    at_once: int | None
    max_errors: str | None
    threshold: int | None
    threshold_text: str  # `2 (5% of 45)`, `0` or `none`: the engine's own wording
    verify: bool
    pause: float
    approval: bool
    zones: tuple[str, ...]
    reach: str = ""  # what the gate can detect at this size (gate_reach)

    @property
    def then(self) -> tuple[str, ...]:
        """What follows the wave once it passed: `verify`, `pause 30s`, `approval`."""
        steps = ["verify"] if self.verify else []
        steps += [f"pause {self.pause:g}s"] if self.pause else []
        steps += ["approval"] if self.approval else []
        return tuple(steps)


@dataclass(frozen=True, slots=True)
class Preview:
    """What `run` would do with this plan and these targets.

    `run_commands` RunCommand calls of at most `batch_size` instances each; the quota
    needs `invocations` (one per instance, plus `verify_invocations`, one per verified
    instance) of `invocation_quota` and `kept_commands` of `command_quota` (None: the
    account did not say). Dispatch takes at least `dispatch_seconds` at
    `run_command_rate` calls a second; an instance may run `command_timeout` seconds,
    `at_once` at a time (None: only the rate limits bound it).
    """

    plan_name: str
    order: str
    on_breach: str
    count_undelivered: bool
    resolution: Resolution
    waves: tuple[WavePreview, ...]
    run_commands: int
    batch_size: int
    invocations: int
    verify_invocations: int
    invocation_quota: str | None
    kept_commands: int
    command_quota: str | None
    run_command_rate: float
    dispatch_seconds: float
    command_timeout: int
    at_once: int | None

    @property
    def small_canary(self) -> bool:
        """Whether the first wave is a canary too small to catch much."""
        return len(self.waves) > 1 and 0 < self.waves[0].size <= SMALL_CANARY


def preview(plan: Plan, resolution: Resolution, quotas: Mapping[str, str]) -> Preview:
    """The dry run of `plan` over `resolution`, with the account's `quotas`."""
    shaped = shape_waves(plan, resolution.runnable, order_for(plan.order))
    waves = tuple(
        _wave(wave, last=position == len(shaped) - 1) for position, wave in enumerate(shaped)
    )
    batches = sum(len(w.plan.batches) for w in shaped)
    rate = {**DEFAULT_RATES, **plan.limits.qps}["RunCommand"]
    # As the run's own preflight counts: one per instance, plus one per verified one.
    verified = sum(w.plan.size for w in shaped if w.config.verify is not None)
    cap = max((w.cap or 0 for w in shaped), default=0)
    return Preview(
        plan_name=plan.name,
        order=plan.order,
        on_breach=plan.on_breach,
        count_undelivered=plan.count_undelivered,
        resolution=resolution,
        waves=waves,
        run_commands=batches,
        batch_size=max((len(b.instances) for w in shaped for b in w.plan.batches), default=0),
        invocations=len(resolution.runnable) + verified,
        verify_invocations=verified,
        invocation_quota=quotas.get(INVOCATION_QUOTA),
        kept_commands=batches if plan.command.keep_command else 0,
        command_quota=quotas.get(COMMAND_QUOTA),
        run_command_rate=rate,
        dispatch_seconds=batches / rate,
        command_timeout=plan.command.timeout,
        at_once=cap or None,
    )


def _wave(wave: ShapedWave, *, last: bool) -> WavePreview:
    config = wave.config
    max_errors = config.max_errors
    return WavePreview(
        index=wave.plan.index,
        name=wave.plan.name,
        size=wave.plan.size,
        batches=len(wave.plan.batches),
        at_once=wave.cap or None,
        max_errors=None if max_errors is None else str(max_errors),
        threshold=wave.threshold,
        threshold_text=threshold_text(max_errors, wave.plan.size, wave.threshold),
        verify=config.verify is not None,
        pause=0.0 if last else config.pause,
        approval=False if last else config.approval,
        zones=tuple(sorted({i.zone_id for i in wave.plan.instances})),
        reach=gate_reach(wave),
    )
