"""One live run per plan in a state dir: an exclusive `flock` on `<state>/plans/<key>.lock`.

Two `orchestrator run` of one plan started at the same moment would each create their
own run id and take their own run lock, and every instance would run twice. So `run` and
`resume` also hold the plan's lock for their whole life, taken before anything is
resolved or sent: the kernel's `flock` decides which of two racing processes gets it,
and the other is refused (`PlanLocked`, exit 7) naming the run that holds it.

The plan is known by its `name:`, not its file: two files with one name are one rollout
(the copy a CI job checked out, the plan edited since). The file name is the name made
safe for a path, plus a digest of the whole name, so names that differ only in the
characters replaced do not share a lock.

The technique is the run lock's (`_lock.py`): the holder's `{pid, host, run_id, since}`
in the file, a lock left by a dead process is free (the kernel dropped it), local file
systems only.
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import TYPE_CHECKING, Final

from orchestrator.errors import ConcurrentRun
from orchestrator.journal._lock import HeldLock, LockHeld, LockHolder, holder_of, take_lock

if TYPE_CHECKING:
    from pathlib import Path

PLANS_DIR: Final = "plans"
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]+")
_READABLE_CHARS: Final = 40
# The holder writes its content right after its flock: a refused process that finds the
# file still empty looks again a few times, so that its message can name the run.
_HOLDER_LOOKS: Final = 20
_HOLDER_PAUSE: Final = 0.01  # seconds (another process's write: nothing to wait on)


class PlanLocked(ConcurrentRun):
    """Another live process holds the plan's lock in this state dir."""

    def __init__(self, plan_name: str, holder: LockHolder | None) -> None:
        if holder is not None and holder.run_id:
            who = f"run {holder.run_id} ({holder.describe()})"
            follow = f"follow it with `orchestrator status {holder.run_id}`"
        else:
            who = holder.describe() if holder is not None else "another process"
            follow = "see it with `orchestrator runs`"
        super().__init__(
            f"plan {plan_name} is in use by {who}: {follow}, or wait for it to end. "
            "Nothing was sent. --allow-concurrent starts anyway (dangerous: the script can "
            "run twice on an instance)",
            other_run=holder.run_id if holder is not None else "",
        )
        self.plan_name = plan_name
        self.holder = holder


def plan_lock_path(state_dir: Path, plan_name: str) -> Path:
    """Where the lock of the plan named `plan_name` lives in `state_dir`."""
    readable = _UNSAFE.sub("_", plan_name)[:_READABLE_CHARS].strip("._") or "plan"
    digest = hashlib.sha256(plan_name.encode()).hexdigest()[:16]
    return state_dir / PLANS_DIR / f"{readable}-{digest}.lock"


class PlanLock(HeldLock):
    """The held lock of one plan in a state dir."""

    @classmethod
    def acquire(cls, state_dir: Path, plan_name: str, run_id: str) -> PlanLock:
        """Take the plan's lock for run `run_id`; raise PlanLocked if a live process holds it."""
        path = plan_lock_path(state_dir, plan_name)
        try:
            fd, took_over = take_lock(path, run_id)
        except LockHeld as held:
            holder = held.holder
            for _ in range(_HOLDER_LOOKS):
                if holder is not None:
                    break
                time.sleep(_HOLDER_PAUSE)
                holder = holder_of(path)
            raise PlanLocked(plan_name, holder) from None
        return cls(fd, took_over)


def plan_holder(state_dir: Path, plan_name: str) -> LockHolder | None:
    """The live holder of the plan's lock, if any (creates nothing)."""
    return holder_of(plan_lock_path(state_dir, plan_name))
