"""Where a journal plugs into a run: awaited at the two moments that must be durable.

`before_dispatch` comes before each RunCommand leaves (once per ClientToken: the journal
puts the token on disk there, so a crash can never leave a sent command it does not
know); `before_approval` before a run says it waits for a person (the journal records
the wave, so `status` in another shell says it waits as soon as the run does, and a
person who reads the line can act on it at once); `after_wave` once a wave is final
(gate, verify, pause and approval all behind it; it may also stop the run). Everything
else a run does reaches the world as events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    from orchestrator.rollout._batches import WavePlan
    from orchestrator.rollout._dispatcher import BatchAttempt
    from orchestrator.rollout._events import ApprovalRequested
    from orchestrator.rollout._results import InstanceResult


class RolloutHooks(Protocol):
    """Where journals and gates plug into a run."""

    async def before_dispatch(self, attempt: BatchAttempt) -> None:
        """Awaited before each RunCommand is sent (once per ClientToken)."""
        ...

    async def before_approval(self, request: ApprovalRequested) -> None:
        """Awaited before `request` is told to the world and the run waits for it."""
        ...

    async def after_wave(self, wave: WavePlan, results: Sequence[InstanceResult]) -> bool:
        """Awaited after each wave that passed its gate, its verify, pause and approval,
        with the wave's final results; False stops the run."""
        ...


class NoHooks:
    """Hooks that record nothing and always go on."""

    async def before_dispatch(self, attempt: BatchAttempt) -> None:
        del attempt

    async def before_approval(self, request: ApprovalRequested) -> None:
        del request

    async def after_wave(self, wave: WavePlan, results: Sequence[InstanceResult]) -> bool:
        del wave, results
        return True
