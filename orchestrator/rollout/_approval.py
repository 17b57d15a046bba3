"""Approvals: who lets the next wave go when a wave's gate needs a person.

An `Approver` waits until wave `wave` of run `run_id` is approved (True) or refused
(False); it may wait forever, and the caller cancels it (Ctrl-C, or another approver
answering first). `PreApproved` answers at once for the waves named up front
(`--approve WAVE`, `--approve-all`), `FileApprover` waits for a marker file that
`orchestrator approve RUN WAVE` writes from another process
(`<state dir>/runs/<run id>/approvals/<wave>`, re-checked every second of the injected
Clock: policy time, so a test moves it by hand), `FirstOf` races several (the CLI races
a terminal prompt against the file) and the first answer wins, and `Refuse` refuses
everything (the library's default: an approval nobody can give must not hang a run).
The WAVE of an approval is the wave whose gate it is: the one with `approval: true`,
that just finished; approving it lets the next wave start. `ask_approval` is the step
the runner takes: the request, the wait, and the answer, each an event.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

import anyio

from orchestrator.rollout._events import ApprovalDenied, ApprovalGranted, ApprovalRequested

if TYPE_CHECKING:
    from collections.abc import Iterable

    from orchestrator.clock import Clock
    from orchestrator.rollout._batches import WavePlan
    from orchestrator.rollout._events import EventSink
    from orchestrator.rollout._hooks import RolloutHooks

DEFAULT_STATE_DIR: Final = Path(".orchestrator")
APPROVED: Final = "approved"
DENIED: Final = "denied"
CHECK_EVERY: Final = 1.0  # seconds of the run's Clock between looks at the marker
# Run ids and wave names become path parts: nothing that could climb out of the dir.
_SAFE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class Approver(Protocol):
    """Decides whether the run goes on after a wave whose gate needs a person."""

    async def wait(self, run_id: str, wave: str) -> bool:
        """True once `wave` is approved, False once it is refused; may wait forever."""
        ...

    def describe(self, run_id: str, wave: str) -> str:
        """How a person gives the approval (shown while the run waits)."""
        ...


class PreApproved:
    """Approves the waves named up front (all of them with `every`); waits forever for
    any other wave (another approver may answer it)."""

    def __init__(self, waves: Iterable[str] = (), *, every: bool = False) -> None:
        self.waves = frozenset(waves)
        self.every = every

    async def wait(self, run_id: str, wave: str) -> bool:
        del run_id
        if self.every or wave in self.waves:
            await anyio.lowlevel.checkpoint()
            return True
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    def describe(self, run_id: str, wave: str) -> str:
        del run_id
        return f"--approve {wave} or --approve-all"


class Refuse:
    """Refuses every approval: a run with nobody to ask halts instead of hanging."""

    async def wait(self, run_id: str, wave: str) -> bool:
        del run_id, wave
        await anyio.lowlevel.checkpoint()
        return False

    def describe(self, run_id: str, wave: str) -> str:
        del run_id, wave
        return "nobody can approve (no approver was given): the run halts"


def marker_path(state_dir: Path, run_id: str, wave: str) -> Path:
    """Where the approval of `wave` of `run_id` is written."""
    for what, value in (("run id", run_id), ("wave name", wave)):
        if not _SAFE_NAME.fullmatch(value):
            raise ValueError(f"{what} {value!r} is not a plain name")
    return state_dir / "runs" / run_id / "approvals" / wave


def write_marker(
    state_dir: Path, run_id: str, wave: str, *, deny: bool = False, create: bool = True
) -> Path:
    """Approve (or refuse) `wave` of `run_id`: the marker appears whole or not at all.
    With `create=False` the run must already be waiting for an approval (its approvals
    directory exists), else FileNotFoundError."""
    path = marker_path(state_dir, run_id, wave)
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise FileNotFoundError(path.parent)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text((DENIED if deny else APPROVED) + "\n")
    partial.replace(path)  # atomic: a waiting run never reads half a marker
    return path


def read_marker(path: Path) -> bool | None:
    """True (approved), False (refused) or None (no answer yet)."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return text != DENIED


class FileApprover:
    """Waits for `orchestrator approve RUN WAVE` (a marker file under `state_dir`)."""

    def __init__(
        self, clock: Clock, state_dir: Path = DEFAULT_STATE_DIR, *, every: float = CHECK_EVERY
    ) -> None:
        self._clock = clock
        self.state_dir = state_dir
        self._every = every

    async def wait(self, run_id: str, wave: str) -> bool:
        path = marker_path(self.state_dir, run_id, wave)
        # The directory says "this run waits here": `orchestrator approve` checks it, so
        # a mistyped run id or state dir is an error, not a marker nobody reads.
        await anyio.to_thread.run_sync(lambda: path.parent.mkdir(parents=True, exist_ok=True))
        while True:
            answer = await anyio.to_thread.run_sync(read_marker, path)
            if answer is not None:
                return answer
            await self._clock.sleep(self._every)

    def describe(self, run_id: str, wave: str) -> str:
        where = "" if self.state_dir == DEFAULT_STATE_DIR else f" --state-dir {self.state_dir}"
        return f"orchestrator approve {run_id} {wave}{where}"


class FirstOf:
    """Races its approvers; the first answer wins and the others are cancelled."""

    def __init__(self, *approvers: Approver) -> None:
        if not approvers:
            raise ValueError("FirstOf needs at least one approver")
        self.approvers = approvers

    async def wait(self, run_id: str, wave: str) -> bool:
        answers: list[bool] = []
        async with anyio.create_task_group() as group:

            async def ask(approver: Approver) -> None:
                answer = await approver.wait(run_id, wave)
                if not answers:
                    answers.append(answer)
                group.cancel_scope.cancel()

            for approver in self.approvers:
                group.start_soon(ask, approver)
        return answers[0]

    def describe(self, run_id: str, wave: str) -> str:
        return "; or ".join(approver.describe(run_id, wave) for approver in self.approvers)


async def ask_approval(
    approver: Approver,
    run_id: str,
    wave: WavePlan,
    reason: str,
    *,
    sink: EventSink,
    clock: Clock,
    hooks: RolloutHooks,
) -> bool:
    """Ask `approver` about `wave` (`reason`: why a person is needed); the request and the
    answer are events, the request saying how to give the approval. The request is
    recorded (`hooks.before_approval`) before anyone is told of it: whoever reads "waiting
    for approval" and runs `orchestrator status` or `approve` finds the run waiting."""
    how = approver.describe(run_id, wave.name)
    request = ApprovalRequested(run_id, wave.index, wave.name, reason, how, clock.now())
    await hooks.before_approval(request)
    sink(request)
    if await approver.wait(run_id, wave.name):
        sink(ApprovalGranted(wave.index, wave.name, clock.now()))
        return True
    sink(ApprovalDenied(wave.index, wave.name, clock.now()))
    return False
