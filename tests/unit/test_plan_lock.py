"""The plan lock: one live run per plan name in a state dir, whatever the file; the
refusal names the run that holds it; a killed holder leaves it free."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from orchestrator.errors import ConcurrentRun
from orchestrator.journal import (
    PLANS_DIR,
    PlanLock,
    PlanLocked,
    RunLock,
    plan_holder,
    plan_lock_path,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).parents[2]

CHILD = """
import sys
from pathlib import Path
from orchestrator.journal import PlanLock
with PlanLock.acquire(Path(sys.argv[1]), sys.argv[2], "run-of-child"):
    print("locked", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def child(state: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock of plan `web`."""
    proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-c", CHILD, str(state), "web"],
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


def test_a_second_run_of_the_plan_is_refused_naming_the_first(
    state: Path, child: subprocess.Popen[str]
):
    with pytest.raises(PlanLocked) as refused:
        PlanLock.acquire(state, "web", "run-2")
    error = refused.value
    assert isinstance(error, ConcurrentRun)
    assert error.other_run == "run-of-child"
    assert error.holder is not None
    assert error.holder.pid == child.pid
    text = str(error)
    assert f"plan web is in use by run run-of-child (pid {child.pid}" in text
    assert "orchestrator status run-of-child" in text
    assert "--allow-concurrent" in text
    holder = plan_holder(state, "web")
    assert holder is not None
    assert holder.run_id == "run-of-child"


def test_another_plan_is_not_held(state: Path, child: subprocess.Popen[str]):
    assert child.poll() is None
    with PlanLock.acquire(state, "db", "run-2"):
        assert plan_holder(state, "db") is not None


def test_a_killed_holder_leaves_the_plan_free(state: Path, child: subprocess.Popen[str]):
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert plan_holder(state, "web") is None
    with PlanLock.acquire(state, "web", "run-2") as lock:
        assert lock.took_over is not None
        assert lock.took_over.run_id == "run-of-child"


def test_two_acquires_in_one_process_conflict_and_release_frees(state: Path):
    with PlanLock.acquire(state, "web", "run-1"), pytest.raises(PlanLocked):
        PlanLock.acquire(state, "web", "run-2")
    PlanLock.acquire(state, "web", "run-2").release()
    assert plan_holder(state, "web") is None


def test_the_plan_lock_and_the_run_lock_are_apart(state: Path):
    with (
        PlanLock.acquire(state, "web", "run-1"),
        RunLock.acquire(state / "runs" / "run-1", "run-1"),
    ):
        assert plan_holder(state, "web") is not None


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b", "x" * 300, "über plan", "..", ""])
def test_any_name_is_one_file_in_the_plans_dir(state: Path, name: str):
    path = plan_lock_path(state, name)
    assert path.parent == state / PLANS_DIR
    assert path.name.endswith(".lock")
    assert len(path.name) < 80
    with PlanLock.acquire(state, name, "run-1"):
        assert path.is_file()


def test_names_that_differ_only_in_unsafe_characters_have_their_own_locks(state: Path):
    assert plan_lock_path(state, "web/deploy") != plan_lock_path(state, "web deploy")
    with PlanLock.acquire(state, "web/deploy", "run-1"):
        PlanLock.acquire(state, "web deploy", "run-2").release()
