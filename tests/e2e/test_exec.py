"""`orchestrator exec` through the real CLI in subprocesses, against a simulator the test
owns: bad flags (exit 2, the flag named with the plan's own message, no call at all),
`--print-plan` (no call; the text validates, and `run` of it cuts the same waves as the
exec run, whose journal keeps that very text), the plan name (the same command is one
plan: a second one while the first runs is refused; another command is another plan),
`--script FILE` (read as a plan's `script:` is, confined to the current directory), and
`stop` of a live exec run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import TYPE_CHECKING

import anyio
import pytest

from orchestrator.journal import journal_path, list_runs, read_journal
from orchestrator.sim import RunningSimulator, load_fleet, serve
from tests.e2e.cli_io import run_id_of, until_line

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


pytestmark = pytest.mark.anyio

FLEET = """
region: cn-hangzhou
seed: 4
time_scale: {scale}
quotas: {{invocations_daily: 100000, commands: 500, max_instances_per_call: 50}}
generate:
  - count: 12
    zones: [cn-hangzhou-h, cn-hangzhou-i]
    tags: {{app: web}}
behaviour:
  stop_delay: 1
  default: {{duration: {duration}, delivery_delay: 0.5, output: "ok\\n"}}
"""
WEB = ("--tag", "app=web")


def env_for(home: Path, sim: RunningSimulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env |= {"HOME": str(home), "PYTHONUNBUFFERED": "1", "ORCHESTRATOR_STATE_DIR": str(home)}
    env["ALIBABA_CLOUD_ACCESS_KEY_ID"] = sim.access_key_id
    env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = sim.access_key_secret
    return env


def command(*args: str, sim: RunningSimulator | None = None) -> list[str]:
    where = ["--endpoint", sim.url, "--region", sim.region] if sim is not None else []
    # The endpoint flags go before `--`: after it, every word is the script's.
    if "--" in args:
        cut = args.index("--")
        args = (*args[:cut], *where, *args[cut:])
        where = []
    return [sys.executable, "-m", "orchestrator", *args, *where]


async def cli(
    *args: str, home: Path, sim: RunningSimulator, endpoint: bool = True
) -> subprocess.CompletedProcess[str]:
    """The CLI in a worker thread (the simulator keeps serving), in `home`."""

    def call() -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
            command(*args, sim=sim if endpoint else None),
            capture_output=True,
            text=True,
            env=env_for(home, sim),
            cwd=home,
            timeout=120,
            check=False,
        )

    return await anyio.to_thread.run_sync(call)


@pytest.fixture
async def quick() -> AsyncIterator[RunningSimulator]:
    """Commands that finish in a few milliseconds."""
    async with serve(load_fleet(FLEET.format(scale=0.001, duration=2))) as sim:
        yield sim


@pytest.fixture
async def slow() -> AsyncIterator[RunningSimulator]:
    """Commands that run for hours: a run stays in flight until it is stopped."""
    async with serve(load_fleet(FLEET.format(scale=0.01, duration=10**6))) as sim:
        yield sim


BAD_FLAGS = [
    pytest.param(
        [*WEB, "--timeout", "1.5", "--", "uptime"],
        "--timeout 1.5: must be a whole number of seconds, e.g. 600, not a decimal number "
        "(InvalidParameter)",
        id="timeout-decimal",
    ),
    pytest.param(
        [*WEB, "--type", "Bash", "--", "uptime"],
        "--type Bash: 'Bash' is not one of RunShellScript, RunBatScript, RunPowerShellScript "
        "(InvalidCmdType.NotFound)",
        id="type-unknown",
    ),
    pytest.param(
        [*WEB, "--waves", "1,200%", "--", "uptime"],
        "--waves 1,200% (size 2: 200%): a percentage must be more than 0% and at most 100%, "
        "not 200% [wave-size]",
        id="waves-over-100",
    ),
    pytest.param(
        [*WEB, "--canary", "0", "--", "uptime"],
        "--canary 0: must be at least 1, not 0 [wave-size]",
        id="canary-zero",
    ),
    pytest.param(
        ["--tag", "appweb", "--", "uptime"],
        "--tag appweb: must be KEY=VALUE [key-value]",
        id="tag-syntax",
    ),
    pytest.param(
        [*WEB, "--param", "versoin=1.27", "--", "echo", "{{version}}"],
        "--param versoin=1.27: the content has no {{versoin}} (it uses: version) "
        "(Parameter.NotMatched)",
        id="param-unused",
    ),
    pytest.param(
        [*WEB, "--", "x" * 20_000],
        "-- SCRIPT: is 26668 bytes after Base64 (and parameters); at most 24576 without "
        "keep_command (CmdContent.ExceedLimit)",
        id="content-too-long",
    ),
    pytest.param(
        ["--instance", "web1", "--", "uptime"],
        "--instance web1: 'web1' is not an instance ID (i- then lowercase letters and digits) "
        "[instance-id]",
        id="instance-malformed",
    ),
    pytest.param(
        [*WEB, "--max-errors", "-1", "--", "uptime"],
        "--max-errors -1: must be 0 or more, not -1 [max-errors]",
        id="max-errors-negative",
    ),
    pytest.param(
        ["--zone", "cn-hangzhou-h", "--", "uptime"],
        "--tag/--instance: selects nothing: give instances or tags (or both) [no-targets]",
        id="no-selector",
    ),
    pytest.param(
        [*WEB, "--param", "db_password=hunter2", "--", "echo", "{{db_password}}"],
        "--param 'db_password=…': is named like a secret and holds a value",
        id="param-secret-never-shown",
    ),
    pytest.param([*WEB], "-- SCRIPT: give the script to run after --", id="no-script"),
    pytest.param(
        [*WEB, "uptime"],
        "error: the script goes after --: exec [OPTIONS] -- uptime",
        id="no-dashes",
    ),
]


@pytest.mark.parametrize(("flags", "expected"), BAD_FLAGS)
async def test_a_bad_flag_exits_2_naming_it_and_calls_nothing(
    tmp_path: Path, quick: RunningSimulator, flags: list[str], expected: str
):
    done = await cli("exec", "--yes", *flags, home=tmp_path, sim=quick)
    assert done.returncode == 2, done.stdout + done.stderr
    assert expected in done.stderr, done.stderr
    assert "hunter2" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert quick.stats.snapshot() == {}  # not even a DescribeInstances: nothing was sent
    assert list_runs(tmp_path) == []


def waves_of(home: Path, run_id: str) -> list[tuple[str, int, int]]:
    header = read_journal(journal_path(home, run_id)).header
    return [(w.name, w.size, w.batches) for w in header.waves]


async def test_print_plan_calls_nothing_and_is_the_plan_the_run_journals(
    tmp_path: Path, quick: RunningSimulator
):
    flags = (*WEB, "--canary", "2", "--waves", "50%,100%", "--max-errors", "1", "--timeout", "30")
    printed = await cli(
        "exec", *flags, "--print-plan", "--", "echo", "ok", home=tmp_path, sim=quick
    )
    assert printed.returncode == 0, printed.stderr
    assert quick.stats.snapshot() == {}  # no call at all
    text = printed.stdout
    assert text.startswith("# A plan made by `orchestrator exec`")
    assert "orchestrator exec --region cn-hangzhou --tag app=web --timeout 30 --canary 2" in text
    assert "- {name: canary, size: 2}" in text
    plan = tmp_path / "plan.yaml"
    plan.write_text(text)

    valid = await cli("validate", str(plan), home=tmp_path, sim=quick, endpoint=False)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert "ok (exec-" in valid.stdout
    assert "3 waves" in valid.stdout

    ran = await cli("run", str(plan), home=tmp_path, sim=quick)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    # Off a terminal nothing is asked, --yes or not: CI runs it as it is.
    executed = await cli("exec", *flags, "--", "echo", "ok", home=tmp_path, sim=quick)
    assert executed.returncode == 0, executed.stdout + executed.stderr

    from_file, adhoc = run_id_of(ran.stdout), run_id_of(executed.stdout)
    assert waves_of(tmp_path, adhoc) == waves_of(tmp_path, from_file)
    assert waves_of(tmp_path, adhoc) == [("canary", 2, 1), ("w1", 6, 1), ("w2", 4, 1)]
    header = read_journal(journal_path(tmp_path, adhoc)).header
    assert header.plan_text == text  # what --print-plan wrote is what the run keeps
    assert "[y/N]" not in executed.stdout
    assert header.plan_path == "(exec)"
    assert header.origin.kind == "exec"
    counts = quick.simulation.execution_counts()
    assert {sum(runs.values()) for runs in counts.values()} == {2}  # each: the two runs


def name_of(printed: subprocess.CompletedProcess[str]) -> str:
    assert printed.returncode == 0, printed.stderr
    found = re.search(r"^name: (\S+)$", printed.stdout, re.MULTILINE)
    assert found, printed.stdout
    return found.group(1)


async def test_the_same_command_is_one_plan_and_stop_works_on_it(
    tmp_path: Path, slow: RunningSimulator
):
    """The name is the command's: a second exec of it while the first runs is refused
    (exit 7, the plan's lock), another command is another plan; `stop` ends the run."""
    same = await cli("exec", *WEB, "--print-plan", "--", "sleep", "1", home=tmp_path, sim=slow)
    waved = await cli(
        "exec", *WEB, "--canary", "1", "--print-plan", "--", "sleep", "1", home=tmp_path, sim=slow
    )
    other = await cli("exec", *WEB, "--print-plan", "--", "sleep", "2", home=tmp_path, sim=slow)
    named = await cli(
        "exec", *WEB, "--name", "nightly", "--print-plan", "--", "ls", home=tmp_path, sim=slow
    )
    assert re.fullmatch(r"exec-[0-9a-f]{8}", name_of(same))
    assert name_of(waved) == name_of(same)  # waves are not what the command is
    assert name_of(other) != name_of(same)
    assert name_of(named) == "nightly"

    # A day's timeout: on the simulator's clock the default (60 s) ends in 0.6 s.
    long = ("--timeout", "86400")
    args = command(
        "exec", *WEB, *long, "--yes", "-v", "--log-format", "console", "--", "sleep", "1", sim=slow
    )
    async with await anyio.open_process(
        args, env=env_for(tmp_path, slow), stderr=subprocess.STDOUT, cwd=tmp_path
    ) as process:
        try:
            seen = await until_line(process, "batch ")
            run_id = run_id_of(seen)
            twice = await cli(
                "exec", *WEB, *long, "--yes", "--", "sleep", "1", home=tmp_path, sim=slow
            )
            assert twice.returncode == 7, twice.stdout + twice.stderr
            assert run_id in twice.stderr

            status = await cli("status", run_id, home=tmp_path, sim=slow, endpoint=False)
            plan_line = r"plan exec-[0-9a-f]{8} \(ad hoc: orchestrator exec\)"
            assert re.search(plan_line, status.stdout), status.stdout
            assert f"running (pid {process.pid}" in status.stdout

            stopped = await cli("stop", run_id, home=tmp_path, sim=slow, endpoint=False)
            assert stopped.returncode == 0, stopped.stdout + stopped.stderr
            assert await process.wait() == 3
        finally:
            if process.returncode is None:  # a failed check must not leave it running
                process.kill()
    record = read_journal(journal_path(tmp_path, run_id))
    assert record.halt is not None
    assert record.halt.reason == "stopped"
    assert slow.stats.count("StopInvocation") >= 1


async def test_a_script_file_is_read_as_a_plans_script_and_written_inline(
    tmp_path: Path, quick: RunningSimulator
):
    (tmp_path / "deploy.sh").write_text("#!/bin/sh\necho deployed\n")
    printed = await cli(
        "exec", *WEB, "--script", "deploy.sh", "--print-plan", home=tmp_path, sim=quick
    )
    assert printed.returncode == 0, printed.stderr
    assert "  content: |\n    #!/bin/sh\n    echo deployed\n" in printed.stdout
    assert "--script deploy.sh" in printed.stdout  # the header's command line

    outside = tmp_path.parent / f"{tmp_path.name}-outside.sh"
    outside.write_text("echo no\n")
    try:
        refused = await cli(
            "exec", *WEB, "--script", f"../{outside.name}", "--yes", home=tmp_path, sim=quick
        )
    finally:
        outside.unlink()
    assert refused.returncode == 2
    assert f"--script ../{outside.name}: " in refused.stderr
    assert "outside the plan's directory" in refused.stderr
    both = await cli(
        "exec", *WEB, "--script", "deploy.sh", "--yes", "--", "uptime", home=tmp_path, sim=quick
    )
    assert both.returncode == 2
    assert "-- SCRIPT: give the script after -- or with --script FILE, not both" in both.stderr
    assert quick.stats.snapshot() == {}
