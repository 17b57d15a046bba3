"""Script paths a plan names may only reach regular files in the plan's directory (or a
`--script-dir`), checked for size before they are read: files built here, at run time
(symlinks, FIFOs and sparse files cannot be checked in)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.plan import PlanError, load_plan, parse_plan
from orchestrator.plan._script import SCRIPT_MAX_BYTES

PLAN = """\
name: scripts
targets: {{tags: {{app: web}}}}
command:
  script: {script}
"""
VERIFY_PLAN = """\
name: scripts
targets: {{tags: {{app: web}}}}
command:
  content: echo hi
waves:
  - name: all
    size: 100%
    verify: {{script: {script}}}
"""


def _plan(directory: Path, script: str, template: str = PLAN) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "plan.yaml"
    path.write_text(template.format(script=script))
    return path


def _refusal(path: Path, **kwargs: tuple[Path, ...]) -> str:
    with pytest.raises(PlanError) as caught:
        load_plan(path, **kwargs)
    problems = caught.value.problems
    assert len(problems) == 1, caught.value
    return str(problems[0])


def test_a_script_in_the_plans_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / "deploy.sh").write_text("echo deploy\n")
    plan = load_plan(_plan(tmp_path, "deploy.sh"))
    assert plan.command.content == "echo deploy\n"


def test_a_symlink_inside_the_directory_is_followed(tmp_path: Path) -> None:
    (tmp_path / "real.sh").write_text("echo real\n")
    (tmp_path / "link.sh").symlink_to(tmp_path / "real.sh")
    assert load_plan(_plan(tmp_path, "link.sh")).command.content == "echo real\n"


def test_a_path_out_of_the_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "outside.sh").write_text("echo outside\n")
    message = _refusal(_plan(tmp_path / "plans", "../outside.sh"))
    assert "plan.yaml:4: command.script: '../outside.sh' is" in message
    assert "outside the plan's directory" in message
    assert message.endswith("[script]")


def test_a_symlink_out_of_the_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("not for the fleet\n")
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "innocent.sh").symlink_to(tmp_path / "secret.txt")
    message = _refusal(_plan(plans, "innocent.sh"))
    assert f"is {tmp_path / 'secret.txt'}, outside the plan's directory" in message


def test_the_process_environment_is_never_read(tmp_path: Path) -> None:
    depth = "../" * len(tmp_path.parts)
    message = _refusal(_plan(tmp_path, f"{depth}proc/self/environ"))
    assert "a file of the system (proc), not a script [script]" in message


def test_a_system_file_is_refused_even_inside_a_script_dir(tmp_path: Path) -> None:
    message = _refusal(_plan(tmp_path, "/proc/self/environ"), script_dirs=(Path("/proc"),))
    assert "a file of the system (proc)" in message


def test_a_device_is_refused(tmp_path: Path) -> None:
    message = _refusal(_plan(tmp_path, "/dev/zero"), script_dirs=(Path("/dev"),))
    assert "command.script: '/dev/zero' is /dev/zero, a file of the system (dev)" in message


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.sh")  # nobody writes: a read would wait forever
    message = _refusal(_plan(tmp_path, "pipe.sh"))
    assert "command.script: 'pipe.sh' is a FIFO, not a regular file [script]" in message


def test_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    assert "'scripts' is a directory, not a regular file" in _refusal(_plan(tmp_path, "scripts"))


def test_a_large_file_is_refused_by_its_size_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.sh"
    with big.open("wb") as file:  # sparse: 3 GB that take no disk
        file.truncate(3 * 1024**3)
    message = _refusal(_plan(tmp_path, "big.sh"))
    assert f"'big.sh' is {3 * 1024**3} bytes" in message
    assert message.endswith("(CmdContent.ExceedLimit)")


def test_the_largest_sendable_script_is_read(tmp_path: Path) -> None:
    (tmp_path / "edge.sh").write_text("#" * SCRIPT_MAX_BYTES)
    assert len(load_plan(_plan(tmp_path, "edge.sh")).command.content) == SCRIPT_MAX_BYTES
    (tmp_path / "edge.sh").write_text("#" * (SCRIPT_MAX_BYTES + 1))
    assert "(CmdContent.ExceedLimit)" in _refusal(_plan(tmp_path, "edge.sh"))


def test_a_script_with_nul_bytes_is_refused(tmp_path: Path) -> None:
    (tmp_path / "binary.sh").write_bytes(b"echo \x00\x01\x02\n")
    assert "'binary.sh' holds NUL bytes" in _refusal(_plan(tmp_path, "binary.sh"))


def test_a_script_dir_allows_scripts_outside_the_plans_directory(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "deploy.sh").write_text("echo shared\n")
    path = _plan(tmp_path / "plans", "../shared/deploy.sh")
    assert "outside the plan's directory" in _refusal(path)
    plan = load_plan(path, script_dirs=(shared,))
    assert plan.command.content == "echo shared\n"
    absolute = _plan(tmp_path / "other", str(shared / "deploy.sh"))
    assert load_plan(absolute, script_dirs=(shared,)).command.content == "echo shared\n"


def test_a_verify_script_follows_the_same_rules(tmp_path: Path) -> None:
    (tmp_path / "check.sh").write_text("curl -fsS localhost\n")
    message = _refusal(_plan(tmp_path / "plans", "../check.sh", VERIFY_PLAN))
    assert "waves[0].verify.script: '../check.sh' is" in message
    assert "outside the plan's directory" in message
    plan = load_plan(_plan(tmp_path / "plans", "../check.sh", VERIFY_PLAN), script_dirs=(tmp_path,))
    assert plan.waves[0].verify is not None
    assert plan.waves[0].verify.content == "curl -fsS localhost\n"


def test_parse_plan_takes_the_script_dirs_too(tmp_path: Path) -> None:
    """`resume` parses the recorded text with the run's script dirs."""
    (tmp_path / "deploy.sh").write_text("echo again\n")
    text = PLAN.format(script="../deploy.sh")
    source = tmp_path / "plans" / "plan.yaml"
    source.parent.mkdir()
    with pytest.raises(PlanError):
        parse_plan(text, source=source)
    plan = parse_plan(text, source=source, script_dirs=(tmp_path,))
    assert plan.command.content == "echo again\n"
