"""The run lock: one holder at a time, in this process or another; a lock left by a
process that was killed is detected and taken over, and its holder reported."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from orchestrator.errors import OrchestratorError
from orchestrator.journal._lock import LOCK_FILE, LockHolder, RunLock, RunLocked, lock_holder

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).parents[2]

# Takes the lock, says so, then holds it until its stdin closes (or it is killed).
CHILD = """
import sys
from pathlib import Path
from orchestrator.journal._lock import RunLock
with RunLock.acquire(Path(sys.argv[1]), "r1"):
    print("locked", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "state" / "runs" / "r1"


@pytest.fixture
def child(run_dir: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock of `run_dir`, once it has said "locked"."""
    proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-c", CHILD, str(run_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline() == "locked\n"
        yield proc
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        if proc.stdin is not None:
            proc.stdin.close()


def write_stale(run_dir: Path, pid: int, host: str, since: str) -> None:
    """A lock file as a holder writes it, with no process holding the lock."""
    run_dir.mkdir(parents=True)
    content = {"pid": pid, "host": host, "run_id": "r1", "since": since}
    (run_dir / LOCK_FILE).write_text(json.dumps(content))


def test_second_acquire_in_the_same_process_refuses_until_released(run_dir: Path):
    """flock locks belong to the open file description: a second open conflicts too."""
    first = RunLock.acquire(run_dir, "r1")
    with pytest.raises(RunLocked) as refused:
        RunLock.acquire(run_dir, "r1")
    assert isinstance(refused.value, OrchestratorError)
    assert refused.value.run_id == "r1"
    assert refused.value.holder is not None
    assert refused.value.holder.pid == os.getpid()
    assert refused.value.holder.host == socket.gethostname()
    message = str(refused.value)
    assert message.startswith(f"run r1 is in use by pid {os.getpid()} on {socket.gethostname()}")
    assert "`orchestrator stop r1`" in message

    # The refused attempt closed its own descriptor without dropping the first lock.
    assert lock_holder(run_dir) is not None
    first.release()
    again = RunLock.acquire(run_dir, "r1")
    assert again.took_over is None  # a clean release is not a takeover
    again.release()


def test_content_names_the_holder(run_dir: Path):
    before = datetime.now(UTC).replace(microsecond=0)
    with RunLock.acquire(run_dir, "r1"):
        content = json.loads((run_dir / LOCK_FILE).read_text())
        holder = lock_holder(run_dir)
    assert content["pid"] == os.getpid()
    assert content["run_id"] == "r1"
    assert holder is not None
    assert holder.pid == os.getpid()
    assert holder.host == socket.gethostname()
    assert before <= holder.since <= datetime.now(UTC)
    assert holder.since.tzinfo is not None


def test_release_is_idempotent_and_leaves_an_empty_file(run_dir: Path):
    lock = RunLock.acquire(run_dir, "r1")
    lock.release()
    lock.release()
    assert (run_dir / LOCK_FILE).read_bytes() == b""
    assert lock_holder(run_dir) is None
    with RunLock.acquire(run_dir, "r1") as again:
        assert again.took_over is None


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts fds in /proc")
def test_no_descriptor_is_left_open(run_dir: Path):
    """A refused acquire, a release and a status read each close what they opened."""

    def open_fds() -> int:
        return sum(1 for _ in Path("/proc/self/fd").iterdir())

    before = open_fds()
    lock = RunLock.acquire(run_dir, "r1")
    with pytest.raises(RunLocked):
        RunLock.acquire(run_dir, "r1")
    assert lock_holder(run_dir) is not None
    assert open_fds() == before + 1
    lock.release()
    assert lock_holder(run_dir) is None
    assert open_fds() == before


def test_with_block_releases_on_error(run_dir: Path):
    with pytest.raises(KeyError), RunLock.acquire(run_dir, "r1"):
        raise KeyError
    assert lock_holder(run_dir) is None
    RunLock.acquire(run_dir, "r1").release()


def test_missing_run_dir_is_created(tmp_path: Path):
    run_dir = tmp_path / "state" / "runs" / "new"
    with RunLock.acquire(run_dir, "new"):
        assert (run_dir / LOCK_FILE).is_file()


def test_lock_holder_of_a_run_never_locked_creates_nothing(run_dir: Path):
    assert lock_holder(run_dir) is None
    assert not run_dir.exists()


def test_stale_lock_is_taken_over_and_its_holder_reported(run_dir: Path):
    """Content with no flock held: a process died holding it."""
    write_stale(run_dir, 4242, "ci-runner-7", "2026-01-02T03:04:05+00:00")
    assert lock_holder(run_dir) is None
    with RunLock.acquire(run_dir, "r1") as lock:
        assert lock.took_over == LockHolder(
            pid=4242, host="ci-runner-7", since=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        )
        holder = lock_holder(run_dir)
        assert holder is not None
        assert holder.pid == os.getpid()


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'{"pid": "12", "host": "h", "since": "2026-01-02T03:04:05+00:00"}',
        b'{"pid": true, "host": "h", "since": "2026-01-02T03:04:05+00:00"}',
        b'{"pid": 12, "host": "h", "since": "yesterday"}',
        b'{"pid": 12, "host": "h", "since": "2026-01-02T03:04:05"}',
        b'{"pid": 12, "host": "h"}',
        b'{"pid": 12, "host": "' + b"h" * 5000 + b'", "since": "2026-01-02T03:04:05+00:00"}',
    ],
)
def test_garbled_stale_content_is_taken_over_as_unknown(run_dir: Path, content: bytes):
    run_dir.mkdir(parents=True)
    (run_dir / LOCK_FILE).write_bytes(content)
    assert lock_holder(run_dir) is None
    with RunLock.acquire(run_dir, "r1") as lock:
        assert lock.took_over is None
        holder = lock_holder(run_dir)
        assert holder is not None
        assert holder.pid == os.getpid()


def test_garbled_content_of_a_held_lock_still_refuses(run_dir: Path):
    """The flock decides; unreadable content only makes the holder unknown."""
    with RunLock.acquire(run_dir, "r1"):
        (run_dir / LOCK_FILE).write_bytes(b"\x00garbage")
        with pytest.raises(RunLocked) as refused:
            RunLock.acquire(run_dir, "r1")
        assert refused.value.holder is None
        assert str(refused.value) == (
            "run r1 is in use by another process; wait for it to end, or `orchestrator stop r1`"
        )
        assert lock_holder(run_dir) is None
    RunLock.acquire(run_dir, "r1").release()


def test_other_runs_are_not_locked(tmp_path: Path):
    runs = tmp_path / "runs"
    with RunLock.acquire(runs / "a", "a"), RunLock.acquire(runs / "b", "b"):
        assert lock_holder(runs / "a") is not None
        assert lock_holder(runs / "b") is not None


def test_lock_of_a_killed_process_is_taken_over(run_dir: Path, child: subprocess.Popen[str]):
    """SIGKILL gives the child no chance to clean up: the kernel drops its flock."""
    holder = lock_holder(run_dir)
    assert holder is not None
    assert holder.pid == child.pid
    with pytest.raises(RunLocked) as refused:
        RunLock.acquire(run_dir, "r1")
    assert f"pid {child.pid}" in str(refused.value)

    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL
    with RunLock.acquire(run_dir, "r1") as lock:
        assert lock.took_over is not None
        assert lock.took_over.pid == child.pid
        assert lock.took_over.since == holder.since
        now = lock_holder(run_dir)
        assert now is not None
        assert now.pid == os.getpid()


def test_lock_released_by_another_process_is_not_a_takeover(
    run_dir: Path, child: subprocess.Popen[str]
):
    assert child.stdin is not None
    child.stdin.close()  # the child leaves its `with` block and exits
    assert child.wait() == 0
    assert lock_holder(run_dir) is None
    with RunLock.acquire(run_dir, "r1") as lock:
        assert lock.took_over is None
