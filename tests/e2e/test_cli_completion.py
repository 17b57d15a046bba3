"""`orchestrator completion bash|zsh`: a script the shell accepts, that completes.

The bash script is sourced in a real bash and its completion function called as bash
calls it on <TAB>: it offers sub-commands, and files where a plan file goes. The zsh one
is checked with `zsh -n` when zsh is installed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def completion(shell: str) -> str:
    done = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "orchestrator", "completion", shell],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def bash(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - a fixed bash, our own script
        ["/usr/bin/env", "bash", "--norc", "--noprofile", "-c", script],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def complete_in_bash(script: Path, words: list[str], cwd: Path) -> list[str]:
    """What bash would offer for the last of `words` (the completion function's reply)."""
    quoted = " ".join(f"'{word}'" for word in words)
    done = bash(
        f"source {script}; COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; "
        f"_shtab_orchestrator orchestrator '{words[-1]}' '{words[-2]}'; "
        'printf "%s\\n" "${COMPREPLY[@]}"',
        cwd,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_the_bash_script_is_valid_bash_and_completes_commands_and_plan_files(tmp_path: Path):
    script = tmp_path / "orchestrator.bash"
    script.write_text(completion("bash"))
    checked = bash(f"bash -n {script}", tmp_path)
    assert checked.returncode == 0, checked.stderr

    assert complete_in_bash(script, ["orchestrator", "sh"], tmp_path) == ["show"]
    assert "completion" in complete_in_bash(script, ["orchestrator", "c"], tmp_path)
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "canary.yaml").write_text("name: x\n")
    offered = complete_in_bash(script, ["orchestrator", "validate", "plans/"], tmp_path)
    assert offered == ["plans/canary.yaml"]
    flags = complete_in_bash(script, ["orchestrator", "runs", "--"], tmp_path)
    assert "--json" in flags
    assert "--state-dir" in flags


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_the_zsh_script_is_valid_zsh(tmp_path: Path):
    script = tmp_path / "_orchestrator"
    script.write_text(completion("zsh"))
    zsh = shutil.which("zsh")
    assert zsh is not None
    checked = subprocess.run(  # noqa: S603 - zsh on our own script
        [zsh, "-n", str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stderr


def test_the_zsh_script_is_a_compdef_for_orchestrator():
    script = completion("zsh")
    assert script.startswith("#compdef orchestrator")
    for command in ("show", "runs", "status", "completion"):
        assert command in script


def test_an_unknown_shell_is_a_usage_error():
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "completion", "fish"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "invalid choice: 'fish' (choose from 'bash', 'zsh')" in done.stderr
    assert done.stdout == ""
