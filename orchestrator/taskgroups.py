"""The one error a task group's failure stands for.

anyio task groups raise what their tasks raised inside an ExceptionGroup, nested once per
group. Callers of this package catch `OrchestratorError` and its kin, as if the work had
run one step after another, so each task group's edge turns the group back into its
first real error (cancellations are only the echo of it). The group stays attached as
the error's cause (`raise single_error(group) from group`): a second error that came at
the same moment is not lost to a traceback.
"""

from __future__ import annotations

import anyio


def single_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first real error inside nested task-group errors (cancellations aside): the
    one that cancelled the others. The whole group when it holds nothing else."""
    leaves: list[BaseException] = []

    def collect(error: BaseException) -> None:
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                collect(inner)
        elif not isinstance(error, anyio.get_cancelled_exc_class()):
            leaves.append(error)

    collect(group)
    return leaves[0] if leaves else group
