"""Which instances a run touched: those where its command began, so there is something
to roll back.

From the journal's final results: succeeded, failed (it ran and failed, a verify
failure included) and stopped (we stopped it after it was sent: its script may have
begun). Not the instances it never reached (undelivered: the agent never started it),
never sent (not_sent: a halt came first) or skipped. In the run's own order (the
journal's instances, as resolved), so a rollback goes out in the order the run did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from orchestrator.rollout._outcome import Outcome

if TYPE_CHECKING:
    from orchestrator.ecs import Instance
    from orchestrator.journal._reader import JournalRecord

TOUCHED: Final = frozenset({Outcome.SUCCEEDED, Outcome.FAILED, Outcome.STOPPED})


def touched_instances(record: JournalRecord) -> tuple[Instance, ...]:
    """The instances of `record`'s run whose recorded outcome is in `TOUCHED`, in order."""
    return tuple(
        instance
        for instance in record.header.instances
        if (result := record.results.get(instance.instance_id)) is not None
        and result.outcome in TOUCHED
    )
