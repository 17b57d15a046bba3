"""No secret ever leaves the process: known secret values (an STS key's secret and its
security token) are fed through every output orchestrator has, and none may appear.

The outputs: the JSON log lines at every level (-v), the console lines, the summary, the
reports (report.json, junit.xml, summary.md, the step summary), the kept outputs, the
journal (its SQLite file and WAL), the lock, `status` and `runs`, and the messages and
tracebacks of forced errors (a wrong secret, an unreachable endpoint), in a subprocess
and, for tracebacks, in-process with the logs at debug level.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import traceback
from typing import TYPE_CHECKING

import aiohttp
import anyio
import pytest

from orchestrator.cli._logging import configure_logging
from orchestrator.ecs import Credentials, EcsClient
from orchestrator.errors import OrchestratorError
from orchestrator.sim import RunningSimulator, load_fleet, serve
from orchestrator.testing import ManualClock
from tests.e2e.credential_modes import (
    MODES,
    OIDC_KEY,
    OWNER_SECRET,
    fleet_text,
    setup_mode,
)
from tests.e2e.credential_modes import PLAN as MODE_PLAN
from tests.e2e.credential_modes import cli as mode_cli

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.anyio

KEY_ID = "STS.secrets-test-key"
SECRET = "Sec-9f3e1c77b2-never-print-me"
TOKEN = "TOKEN-4b1d9ae0c3-never-print-me-either"
HUNTED = (SECRET, TOKEN)

FLEET = f"""
region: cn-hangzhou
seed: 2
time_scale: 0.001
keys:
  - {{access_key_id: {KEY_ID}, access_key_secret: {SECRET}, security_token: {TOKEN}}}
quotas: {{invocations_daily: 1000, commands: 50, max_instances_per_call: 50}}
instances:
  - {{id: i-good1, name: good-1, zone: cn-hangzhou-h, tags: {{app: s}}}}
  - {{id: i-good2, name: good-2, zone: cn-hangzhou-i, tags: {{app: s}}}}
  - {{id: i-bad1, name: bad-1, zone: cn-hangzhou-h, tags: {{app: s}}}}
behaviour:
  default: {{duration: 2, delivery_delay: 0.5, output: "ok\\n"}}
  rules:
    - match: {{instances: [i-bad1]}}
      fail_rate: 1
      fail_exit_code: 2
      fail_output: "failed on {{{{ACS::InstanceId}}}}\\n"
"""

PLAN = """\
name: secrets
targets: {tags: {app: s}}
command:
  content: echo ok
  timeout: 60
waves:
  - {name: first, size: 1, max_errors: 0}
  - {name: rest, size: 100%, max_errors: 1}
limits:
  qps: {RunCommand: 50, Describe: 100}
"""


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with serve(load_fleet(FLEET)) as running:
        yield running


def env_for(home: Path, *, secret: str = SECRET) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    return env | {
        "HOME": str(home),
        "ORCHESTRATOR_STATE_DIR": str(home / "state"),
        "GITHUB_STEP_SUMMARY": str(home / "step-summary.md"),
        "ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret,
        "ALIBABA_CLOUD_SECURITY_TOKEN": TOKEN,
    }


async def cli(*args: str, home: Path, secret: str = SECRET) -> str:
    """Run the CLI; everything it printed, stdout and stderr."""

    def call() -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
            [sys.executable, "-m", "orchestrator", *args],
            capture_output=True,
            text=True,
            env=env_for(home, secret=secret),
            timeout=120,
            check=False,
        )

    done = await anyio.to_thread.run_sync(call)
    return done.stdout + done.stderr


def assert_clean(text: str | bytes, where: str) -> None:
    data = text.encode() if isinstance(text, str) else text
    for secret in HUNTED:
        assert secret.encode() not in data, f"a secret leaked into {where}"


async def test_no_secret_in_any_output_of_a_run(tmp_path: Path, sim: RunningSimulator):
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    where = ("--endpoint", sim.url, "--region", sim.region)
    printed = [
        await cli(
            "run", str(plan), "-v", "--log-format", "json", "--report-dir",
            str(tmp_path / "reports"), "--output-dir", str(tmp_path / "outputs"), *where,
            home=tmp_path,
        ),
        await cli("run", str(plan), "-v", "--log-format", "console", *where, home=tmp_path),
        await cli("runs", home=tmp_path),
        await cli("status", home=tmp_path),
        # Forced errors: a wrong secret (the right one must not be echoed either), and an
        # endpoint that is not there.
        await cli("run", str(plan), *where, home=tmp_path, secret=SECRET + "-wrong"),
        await cli(
            "run", str(plan), "--endpoint", "http://127.0.0.1:1", "--region", sim.region,
            home=tmp_path,
        ),
    ]  # fmt: skip
    assert '"event": "run.finished"' in printed[0]  # the run really ran, at debug level
    assert "SignatureDoesNotMatch" in printed[4]
    for n, text in enumerate(printed):
        assert_clean(text, f"the output of command {n}")
    assert_no_file_holds_a_secret(tmp_path)


def assert_no_file_holds_a_secret(home: Path) -> None:
    files = [path for path in home.rglob("*") if path.is_file()]
    names = {path.name for path in files}
    assert {"report.json", "junit.xml", "summary.md", "journal.sqlite", "lock"} <= names
    assert "step-summary.md" in names
    assert any(path.suffix == ".log" for path in files)  # the kept outputs
    for path in files:
        assert_clean(path.read_bytes(), str(path.relative_to(home)))


async def test_no_secret_in_logs_or_tracebacks_of_failing_calls(sim: RunningSimulator):
    """In-process, logs at debug level: a call refused for its signature and a call to
    nowhere; neither the errors, their tracebacks, nor the log lines hold a secret."""
    lines = io.StringIO()
    configure_logging(fmt="json", verbosity=1, stream=lines)
    clock = ManualClock(autojump=True)
    credentials = Credentials.of(KEY_ID, SECRET + "-wrong", TOKEN)
    failures: list[OrchestratorError] = []
    async with aiohttp.ClientSession() as session:
        for endpoint in (sim.url, "http://127.0.0.1:1"):
            client = EcsClient(endpoint, session, credentials, region_id=sim.region, clock=clock)
            assert_clean(repr(client), "the client's repr")
            try:
                await client.describe_account_attributes(["max-axt-invocation-daily"])
            except OrchestratorError as error:
                failures.append(error)
    assert len(failures) == 2
    for failure in failures:
        assert_clean(str(failure), "an error message")
        assert_clean(repr(failure), "an error repr")
        assert_clean("".join(traceback.format_exception(failure)), "a traceback")
    assert_clean(repr(credentials), "the credentials' repr")
    assert_clean(lines.getvalue(), "the log lines")


# --- every credential mode: role sessions, OIDC tokens, the metadata answer --------


@pytest.mark.parametrize("mode", MODES)
async def test_no_secret_of_any_credential_mode_in_any_output(tmp_path: Path, mode: str):
    """A run with `mode` (its credentials renewed on the way), at debug level with
    reports, then status and runs: no secret the mode handled appears in what was
    printed or in a file the runs wrote: the role session's secret and token of every
    refresh, the OIDC token, the metadata service's token and answer, the owner's key,
    the OIDC provider's key."""
    fleet = load_fleet(fleet_text(ttl=3, time_scale=0.5, duration=6))
    async with serve(fleet) as sim:
        plan = tmp_path / "plan.yaml"
        plan.write_text(MODE_PLAN)
        extra = setup_mode(mode, tmp_path, sim)
        where = ("--endpoint", sim.url, "--region", sim.region)
        printed = []
        for args in (
            ("run", str(plan), "-v", "--log-format", "json", "--report-dir",
             str(tmp_path / "reports"), "--output-dir", str(tmp_path / "outputs"), *where),
            ("status",),
            ("runs",),
        ):  # fmt: skip
            done = await mode_cli(*args, home=tmp_path, sim=sim, extra=extra)
            printed.append(done.stdout + done.stderr)
        assert '"event": "run.finished"' in printed[0], printed[0]
        assert '"event": "credentials.refreshed"' in printed[0]  # renewed during the run
        hunted = [OWNER_SECRET, OIDC_KEY, *sim.credential_services.tokens]
        for issued in sim.sts.issued:
            hunted += [issued.answer["AccessKeySecret"], issued.answer["SecurityToken"]]
        token_path = tmp_path / "oidc-token"
        if token_path.exists():
            hunted.append(token_path.read_text())
        assert len(sim.sts.issued) > 1
    for n, text in enumerate(printed):
        for secret in hunted:
            assert secret not in text, f"a secret leaked into the output of command {n}"
    # The files the mode itself reads hold secrets by design; everything else may not.
    own = {token_path, tmp_path / ".aliyun" / "config.json", plan}
    assert_no_other_file_holds(tmp_path, own, hunted)


def assert_no_other_file_holds(home: Path, own: set[Path], hunted: list[str]) -> None:
    files = [path for path in home.rglob("*") if path.is_file() and path not in own]
    assert any(path.name == "report.json" for path in files)
    for path in files:
        data = path.read_bytes()
        for secret in hunted:
            assert secret.encode() not in data, f"a secret leaked into {path}"
