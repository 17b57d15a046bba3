"""A run keeps what the targets step built out of the garbage collector's full scans
(`cli/_heap.py`): a real `orchestrator run` in its own process, watched from inside by a
collector callback, has a frozen heap while it runs and none once it is over."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
SMALL = ROOT / "plans" / "fleets" / "small.yaml"
PLAN = """\
name: heap-check
region: cn-hangzhou
targets: {tags: {app: web, env: prod}}
command: {content: "echo ok", timeout: 60}
"""
# The CLI's commands as `orchestrator` dispatches them, in a process that goes on after
# the run (as a test or a library user does), with a collector callback that notes how
# many objects are frozen at each collection. (`cli.main` itself freezes the heap once
# more as the process ends, to spare the interpreter's shutdown a walk of it: not this.)
WATCHER = """\
import gc, sys
from orchestrator.cli._commands import dispatch
seen = []
def note(phase, info):
    if phase == "start":
        seen.append(gc.get_freeze_count())
gc.callbacks.append(note)
code = dispatch(sys.argv[1:])
print(
    f"frozen during the run: {max(seen, default=0)}, after it: {gc.get_freeze_count()}",
    file=sys.stderr,
)
sys.exit(code)
"""
_SAID = re.compile(r"frozen during the run: (\d+), after it: (\d+)")


def test_a_run_freezes_its_long_lived_objects_and_thaws_them_after(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    (tmp_path / "watcher.py").write_text(WATCHER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env["HOME"] = str(tmp_path)
    command = [sys.executable, str(tmp_path / "watcher.py"), "run", str(tmp_path / "plan.yaml")]
    command += ["--sim", str(SMALL), "--state-dir", str(tmp_path / "state")]
    command += ["--report-dir", str(tmp_path / "reports")]
    done = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        command,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    said = _SAID.search(done.stderr)
    assert said is not None, done.stderr
    during, after = int(said.group(1)), int(said.group(2))
    assert during > 0  # the collections of the run did not scan what was frozen
    assert after == 0  # and the process got them back when the run was over
    assert (tmp_path / "reports" / "report.json").is_file()
