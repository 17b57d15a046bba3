"""One process at a time per run: an exclusive `flock` on `<run_dir>/lock`.

`orchestrator run`/`resume` hold the lock for their whole life, so a second `run`,
`resume` or `stop` of the same run refuses instead of sending commands twice. The lock is
a kernel `flock` held on an open file descriptor: the kernel drops it when the process
dies, however it dies (SIGKILL, OOM killer, a CI runner's container powered off), so a
lock left behind is never mistaken for a live one and no pid has to be guessed at.

The file's content is JSON `{pid, host, run_id, since}`, written by each holder once it
has the lock and emptied again when it releases it. It only feeds messages: the `flock`
alone says whether the run is in use. Content in a file whose lock nobody holds was left
by a process that died holding it; the next holder takes over and reports it
(`RunLock.took_over`).

The same technique keeps two runs of one plan apart in a state dir (`_plan_lock.py`):
`take_lock` and `read_holder` are shared by both.

`flock` is advisory and local: it keeps apart the processes of one machine that all use
this module. A state dir on NFS (or any network file system) is not supported, and
neither is Windows (POSIX only).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Self

from orchestrator.errors import OrchestratorError

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

LOCK_FILE = "lock"

# The content is a few dozen bytes; anything longer is not ours and reads as unknown.
_MAX_CONTENT = 4096


@dataclass(frozen=True, slots=True)
class LockHolder:
    """Who holds (or held) a lock, as its lock file says: which process, for which run."""

    pid: int
    host: str
    since: datetime
    # Which run the holder works for: a label for messages, not part of who holds it.
    run_id: str = field(default="", compare=False)

    def describe(self) -> str:
        """`pid P on HOST since T`, for messages."""
        return f"pid {self.pid} on {self.host} since {self.since.isoformat(timespec='seconds')}"


class LockHeld(Exception):  # an internal signal: callers raise their own typed error
    """`take_lock` found the lock held; `holder` is None when its file is unreadable."""

    def __init__(self, holder: LockHolder | None) -> None:
        super().__init__("held")
        self.holder = holder


class RunLocked(OrchestratorError):
    """Another process holds the run's lock; `holder` is None when its file is unreadable."""

    def __init__(self, run_id: str, holder: LockHolder | None) -> None:
        who = holder.describe() if holder else "another process"
        super().__init__(
            f"run {run_id} is in use by {who}; wait for it to end, or `orchestrator stop {run_id}`"
        )
        self.run_id = run_id
        self.holder = holder


class HeldLock:
    """A held lock (`take_lock`); `release` it (or leave the `with` block) when done.

    Not released, it stays held until the process ends: the descriptor is deliberately
    not closed by garbage collection, so a forgotten reference cannot free it early.
    """

    def __init__(self, fd: int, took_over: LockHolder | None) -> None:
        self._fd: int | None = fd
        self.took_over = took_over

    def release(self) -> None:
        """Unlock and close; the file stays (unlinking it would race a new holder)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # Emptied first, so the next holder does not report a clean exit as a takeover.
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the last descriptor of the description unlocks it

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class RunLock(HeldLock):
    """The held lock of one run."""

    @classmethod
    def acquire(cls, run_dir: Path, run_id: str) -> RunLock:
        """Take the run's lock, creating `run_dir` if missing; raise RunLocked if held."""
        try:
            fd, took_over = take_lock(run_dir / LOCK_FILE, run_id)
        except LockHeld as held:
            raise RunLocked(run_id, held.holder) from None
        return cls(fd, took_over)


def lock_holder(run_dir: Path) -> LockHolder | None:
    """The live holder, if a live process holds the lock; None otherwise (no lock file,
    or a stale one).

    Also None while a live holder's details cannot be read: in the instant between its
    `flock` and its write, or if its file was garbled. `RunLock.acquire` still refuses
    then. Creates nothing; takes the lock only for an instant, on a fresh descriptor, when
    nobody holds it.
    """
    return holder_of(run_dir / LOCK_FILE)


def holder_of(path: Path) -> LockHolder | None:
    """`lock_holder` of any lock file `take_lock` takes."""
    try:
        # Read-only is enough for flock on a local file system, and creates nothing.
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return read_holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def take_lock(path: Path, run_id: str) -> tuple[int, LockHolder | None]:
    """Take the `flock` on `path` (its directory is created), write our holder content;
    the open descriptor and the holder a dead process left, if any. Raises `LockHeld`.

    Two acquires in one process conflict as well: each opens its own file description,
    and flock locks belong to the description, not the process.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # os.open descriptors are not inherited (O_CLOEXEC): a command we spawn must not
    # keep the lock held after we die.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = read_holder(fd)
        # Closing this second descriptor leaves the holder's lock alone (unlike
        # fcntl/lockf locks, which any close by the process would drop).
        os.close(fd)
        raise LockHeld(holder) from None
    except BaseException:
        os.close(fd)
        raise
    try:
        took_over = read_holder(fd)
        _write_content(fd, _content(run_id))
    except BaseException:
        os.close(fd)
        raise
    return fd, took_over


def _content(run_id: str) -> bytes:
    since = datetime.now(UTC).isoformat(timespec="seconds")
    return json.dumps(
        {"pid": os.getpid(), "host": socket.gethostname(), "run_id": run_id, "since": since}
    ).encode()


def _write_content(fd: int, data: bytes) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def read_holder(fd: int) -> LockHolder | None:
    """The holder the file names, or None when it is empty, garbled or not ours."""
    try:
        raw = os.pread(fd, _MAX_CONTENT + 1, 0)
        data = json.loads(raw) if len(raw) <= _MAX_CONTENT else None
    except (ValueError, OSError):
        return None
    if not isinstance(data, dict):
        return None
    pid, host, since = data.get("pid"), data.get("host"), data.get("since")
    if type(pid) is not int or not isinstance(host, str) or not isinstance(since, str):
        return None
    run_id = data.get("run_id", "")
    run_id = run_id if isinstance(run_id, str) else ""
    try:
        when = datetime.fromisoformat(since)
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return LockHolder(pid=pid, host=host, since=when, run_id=run_id)
