"""action.yml, the composite GitHub Action, run for real: its steps' scripts in bash as
the runner runs them (`bash --noprofile --norc -eo pipefail`), with the runner's
environment (`GITHUB_ENV`, `RUNNER_TEMP`, the OIDC request URL and token), against a
token endpoint of the test's own and the simulator playing ECS and STS. The role is
assumed with the job's token, the plan runs to the end, the summary reaches the job
summary, and the token is in no output. And the Action's text is checked as the CI
guide's is: every `orchestrator` command parses, inputs reach scripts only through
`env:`, every input it reads is declared, and the guide uses it as declared."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import anyio
import pytest
import yaml
from aiohttp import web

from orchestrator.sim import load_fleet, oidc_provider_arn, oidc_token, serve
from tests.e2e.credential_modes import ACCOUNT, DEPLOYER, OWNER_SECRET, PLAN, fleet_text
from tests.unit.test_ci_guide import EXPRESSION, GUIDE_TEXT, Block, blocks, commands_in, parse

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

ROOT: Final = Path(__file__).parents[2]
ACTION: Final = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
STEPS: Final = {step.get("name", ""): step for step in ACTION["runs"]["steps"]}
REQUEST_TOKEN: Final = "gh-request-token-5d1e-never-print"
INPUT: Final = re.compile(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}")

pytestmark = pytest.mark.anyio


def scripts() -> list[tuple[str, str]]:
    return [(name, step["run"]) for name, step in STEPS.items() if "run" in step]


def test_the_action_is_a_composite_whose_scripts_take_inputs_through_env():
    assert ACTION["runs"]["using"] == "composite"
    for name, script in scripts():
        assert STEPS[name]["shell"] == "bash", name
        # An expression spliced into a script is an injection: inputs go through env.
        assert not EXPRESSION.search(script), (name, script)


def test_every_input_the_action_reads_is_declared_and_every_declared_one_read():
    text = (ROOT / "action.yml").read_text(encoding="utf-8")
    assert set(INPUT.findall(text)) == set(ACTION["inputs"])
    assert [n for n, i in ACTION["inputs"].items() if i.get("required")] == ["plan"]


def test_every_orchestrator_command_of_the_action_parses():
    block = Block("bash", "", 0)
    # $ARGS is split on purpose (several arguments): parse it as an example of them.
    found = [
        c
        for _, script in scripts()
        for c in commands_in(script.replace("$ARGS", "--approve-all --quiet"), block)
    ]
    assert found, "the action runs no orchestrator command"
    for command in found:
        assert parse(command).command == "run"


def test_the_guide_uses_the_action_with_its_inputs():
    """The guide's `uses: .../orchestrator@...` steps give only inputs the Action has
    (the required one included), and its input table lists them all with their defaults."""
    steps = [
        step
        for block in blocks(GUIDE_TEXT)
        if block.kind == "yaml"
        for step in _steps(yaml.safe_load(block.text))
        if str(step.get("uses", "")).split("@")[0].endswith("/orchestrator")
    ]
    assert steps, "the guide does not show the action"
    for step in steps:
        given = set(step.get("with", {}))
        assert given <= set(ACTION["inputs"]), given - set(ACTION["inputs"])
        assert "plan" in given
    table = dict(re.findall(r"^\| `([\w-]+)` \| ([^|]+) \|", GUIDE_TEXT, flags=re.MULTILINE))
    documented = {name for name in table if name in ACTION["inputs"]}
    assert documented == set(ACTION["inputs"])
    for name, spec in ACTION["inputs"].items():
        default = spec.get("default", "")
        if default:
            assert f"`{default}`" in table[name], (name, table[name])


def _steps(document: Any) -> list[dict[str, Any]]:
    """Every step of a workflow (or a job, or a steps list) in a parsed YAML block."""
    if isinstance(document, list):
        return [s for item in document for s in _steps(item)]
    if isinstance(document, dict):
        found = [document] if "uses" in document else []
        return found + [s for value in document.values() for s in _steps(value)]
    return []


# --- the steps, run ------------------------------------------------------------------


def bash(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A step's script as the runner runs it; in its own session, so that what it leaves
    in the background (the token refresher) is ended with it."""
    process = subprocess.Popen(  # noqa: S603 - the action's own script
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],  # noqa: S607
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=180)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@contextlib.asynccontextmanager
async def token_endpoint(token: str) -> AsyncIterator[str]:
    """GitHub's OIDC token request URL, as the runner gives it (`?api-version=...`)."""

    async def answer(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"bearer {REQUEST_TOKEN}":
            return web.Response(status=401)
        if request.query.get("audience") != "sts.aliyuncs.com":  # as RAM's provider expects
            return web.Response(status=400)
        return web.json_response({"value": token})

    app = web.Application()
    app.router.add_get("/token", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/token?api-version=2.0"
    finally:
        await runner.cleanup()


@pytest.mark.skipif(shutil.which("curl") is None, reason="the action fetches the token with curl")
async def test_the_action_assumes_the_role_with_the_jobs_token_and_runs_the_plan(tmp_path: Path):
    fleet = load_fleet(fleet_text())
    async with serve(fleet) as sim:
        provider = sim.simulation.fleet.sts.provider("ci")
        assert provider is not None
        token = oidc_token(provider, subject="repo:acme/app", now=datetime.now(UTC))
        (tmp_path / "plan.yaml").write_text(PLAN)
        github_env, summary = tmp_path / "github_env", tmp_path / "summary.md"
        runner = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
        runner |= {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(tmp_path),
            "RUNNER_TEMP": str(tmp_path),
            "GITHUB_ENV": str(github_env),
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_RUN_ID": "4242",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN,
        }
        async with token_endpoint(token) as url:
            exchange = STEPS["Exchange the job's OIDC token for the role"]["run"]
            env = runner | {
                "ACTIONS_ID_TOKEN_REQUEST_URL": url,
                "AUDIENCE": "sts.aliyuncs.com",
                "ROLE_ARN": DEPLOYER,
                "PROVIDER_ARN": oidc_provider_arn(ACCOUNT, "ci"),
            }
            fetched = await anyio.to_thread.run_sync(partial(bash, exchange, env))
        assert fetched.returncode == 0, fetched.stdout + fetched.stderr
        exported = exported_by(github_env, token)

        run = STEPS["Run the plan"]
        env = (
            runner
            | exported
            | {
                "PLAN": str(tmp_path / "plan.yaml"),
                "ALIBABA_CLOUD_REGION_ID": "",
                "REPORT_DIR": str(tmp_path / "reports"),
                "ORCHESTRATOR_STATE_DIR": str(tmp_path / "state"),
                "ARGS": f"--endpoint {sim.url} --region {sim.region} --approve-all",
                "ALIBABA_CLOUD_STS_ENDPOINT": sim.url,
            }
        )
        ran = await anyio.to_thread.run_sync(partial(bash, run["run"], env))
        issued = list(sim.sts.issued)
        executions = sim.simulation.execution_counts()
    said = ran.stdout + ran.stderr + fetched.stdout + fetched.stderr
    assert ran.returncode == 0, said
    assert issued, "the role was never assumed"
    assert set(executions) == {"i-c1", "i-c2"}
    assert all(list(runs.values()) == [1] for runs in executions.values())
    report = json.loads((tmp_path / "reports" / "report.json").read_text())
    assert report["exit_code"] == 0
    assert "modes" in summary.read_text()  # summary.md went to the job summary
    for secret in (token, REQUEST_TOKEN, OWNER_SECRET):
        assert secret not in said
        assert secret not in summary.read_text()


def exported_by(github_env: Path, token: str) -> dict[str, str]:
    """What the exchange step exported for the steps after it: the role, the provider
    and the token file, which holds the token and only its owner may read."""
    exported = dict(line.split("=", 1) for line in github_env.read_text().splitlines())
    assert exported["ALIBABA_CLOUD_ROLE_ARN"] == DEPLOYER
    token_file = Path(exported["ALIBABA_CLOUD_OIDC_TOKEN_FILE"])
    assert token_file.read_text() == token
    assert token_file.stat().st_mode & 0o077 == 0
    return exported


def test_without_a_role_the_exchange_step_is_skipped():
    assert STEPS["Exchange the job's OIDC token for the role"]["if"] == "inputs.role-arn != ''"
