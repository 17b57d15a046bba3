"""Plans cannot hurt the operator, through the real CLI in a subprocess: a script path
that reaches out of the plan's directory, and values no field can use, exit 2 with a
`FILE:LINE: field: rule` line and never a traceback, the same in `validate` and `run`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.journal import journal_path, list_runs, read_journal

ROOT = Path(__file__).parents[2]

HEAD = """\
name: safety
targets: {tags: {app: web}}
"""
COMMAND = HEAD + "command:\n  content: echo hi\n"


def orchestrator(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """`python -m orchestrator ARGS`, no credentials in reach, state in the test's dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env |= {"HOME": str(home), "ORCHESTRATOR_STATE_DIR": str(home / "state")}
    return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=60,
        check=False,
    )


def _refused(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr


def _script_plan(directory: Path, script: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "plan.yaml"
    path.write_text(HEAD + f"command:\n  script: {script}\n")
    return path


def _outside(tmp_path: Path) -> str:
    (tmp_path / "outside.sh").write_text("echo outside\n")
    return "../outside.sh"


def _symlink(tmp_path: Path) -> str:
    (tmp_path / "secret.txt").write_text("not for the fleet\n")
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "link.sh").symlink_to(tmp_path / "secret.txt")
    return "link.sh"


def _fifo(tmp_path: Path) -> str:
    (tmp_path / "plans").mkdir()
    os.mkfifo(tmp_path / "plans" / "pipe.sh")
    return "pipe.sh"


def _environ(tmp_path: Path) -> str:
    return "../" * (len(tmp_path.parts) + 1) + "proc/self/environ"


SCRIPT_CASES = [
    ("outside", _outside, "outside the plan's directory"),
    ("symlink-out", _symlink, "outside the plan's directory"),
    ("fifo", _fifo, "is a FIFO, not a regular file [script]"),
    ("proc-environ", _environ, "a file of the system (proc), not a script [script]"),
    ("dev-zero", lambda _: "/dev/zero", "'/dev/zero' is /dev/zero, a file of the system (dev)"),
]


@pytest.mark.parametrize(
    ("make", "expected"), [c[1:] for c in SCRIPT_CASES], ids=[c[0] for c in SCRIPT_CASES]
)
def test_validate_refuses_a_script_path(tmp_path: Path, make, expected: str) -> None:
    plan = _script_plan(tmp_path / "plans", make(tmp_path))
    stderr = _refused(orchestrator("validate", str(plan), home=tmp_path))
    assert f"{plan}:4: command.script: " in stderr
    assert expected in stderr
    assert "not for the fleet" not in stderr


def test_validate_and_run_accept_a_script_dir(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "deploy.sh").write_text("echo shared\n")
    plan = _script_plan(tmp_path / "plans", "../shared/deploy.sh")
    _refused(orchestrator("validate", str(plan), home=tmp_path))
    done = orchestrator("validate", str(plan), "--script-dir", str(shared), home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"{plan}: ok (safety, 1 waves)" in done.stdout
    refused = _refused(orchestrator("plan", str(plan), "--sim", home=tmp_path))
    assert "outside the plan's directory" in refused


LINKS = list(zip("abcdefgh", "bcdefghi", strict=True))  # each alias list 10x the one before
BAD_VALUES = [
    ("nan", "limits:\n  qps: {RunCommand: .nan}\n", ":6: limits.qps.RunCommand: NaN and"),
    ("inf-pause", "wave_defaults:\n  pause: .inf\n", ":6: wave_defaults.pause: NaN and"),
    ("huge-float", "limits:\n  delivery_timeout: 1.0e+400\n", ":6: limits.delivery_timeout: NaN"),
    ("huge-int", "limits:\n  batch_size: " + "9" * 30 + "\n", ":6: limits.batch_size: is out"),
    ("long-pause", "wave_defaults:\n  pause: " + "9" * 400 + "h\n", "is too long a duration"),
    ("nul", 'description: "a\\0b"\n', ":5: description: holds a NUL character"),
    ("surrogate", 'description: "a\\ud800b"\n', ":5: description: holds a lone surrogate"),
    ("bad-date", "description: 2024-13-45\n", ":5: description: not a valid date"),
    ("deep", "description: " + "[" * 100 + "]" * 100 + "\n", ":5: nested more than 32"),
    (
        "alias-bomb",
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in LINKS),
        "aliases expand to more than 100000 values [yaml]",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("tail", "expected"), [c[1:] for c in BAD_VALUES], ids=[c[0] for c in BAD_VALUES]
)
def test_validate_and_run_refuse_a_value_alike(tmp_path: Path, tail: str, expected: str) -> None:
    """Today's disagreement: `qps: .nan` passed validate and crashed run."""
    plan = tmp_path / "plan.yaml"
    plan.write_text(COMMAND + tail)
    checked = _refused(orchestrator("validate", str(plan), home=tmp_path))
    ran = _refused(orchestrator("run", str(plan), "--sim", home=tmp_path))
    assert expected in checked
    assert checked == ran
    assert not (tmp_path / "state").exists()  # nothing was journalled


def test_run_journals_the_text_it_checked_read_once(tmp_path: Path) -> None:
    """A plan given through a pipe (`<(…)`) is read once: the journal keeps the text that
    was checked (a second read found the pipe empty)."""
    plan = tmp_path / "plan.yaml"
    plan.write_text("name: piped\ntargets: {tags: {app: web}}\ncommand:\n  content: echo hi\n")
    fleet = ROOT / "plans" / "fleets" / "small.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env |= {"HOME": str(tmp_path), "ORCHESTRATOR_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run(  # noqa: S603 - our own CLI through bash, fixed arguments
        [  # noqa: S607 - bash from PATH: process substitution is the point
            "bash", "-c", 'exec "$0" -m orchestrator run <(cat "$1") --sim "$2"',
            sys.executable, str(plan), str(fleet),
        ],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode in {0, 1}, done.stdout + done.stderr  # it ran
    (run,) = list_runs(tmp_path / "state")
    header = read_journal(journal_path(tmp_path / "state", run.run_id)).header
    assert header.plan_text == plan.read_text()
