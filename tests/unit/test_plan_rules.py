"""Every rule, at its boundary: at the limit passes, one over fails with the right code."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from orchestrator import api
from orchestrator.errors import PlanError
from orchestrator.plan import parse_plan

BASE: dict[str, Any] = {
    "name": "rules",
    "targets": {"tags": {"app": "web"}},
    "command": {"content": "echo hi"},
}


def _plan(**sections: dict[str, Any] | Any) -> dict[str, Any]:
    """BASE with `sections` merged in one level deep (`command={...}` adds command keys)."""
    doc = copy.deepcopy(BASE)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key].update(value)
        else:
            doc[key] = value
    return doc


def _codes(doc: dict[str, Any]) -> list[str]:
    """The codes of the plan's problems ([] when it is valid)."""
    try:
        parse_plan(yaml.safe_dump(doc, sort_keys=False, width=10**6))
    except PlanError as error:
        return [p.code for p in error.problems]
    return []


def _cmd(**keys: Any) -> dict[str, Any]:
    return _plan(command=keys)


def _wave(**keys: Any) -> dict[str, Any]:
    """A canary wave with the gate `keys`, then the rest."""
    return _plan(waves=[{"name": "canary", "size": 1, **keys}, "100%"])


WINDOWS = {"type": "RunPowerShellScript", "username": "deploy"}
HEX64 = "ab141ddfbacfe02d9dbc25966ed971536124527097398d419a6746873fea0123"
NAMES_20 = " ".join(f"{{{{p{i}}}}}" for i in range(20))
NAMES_21 = " ".join(f"{{{{p{i}}}}}" for i in range(21))
NAMES_10 = " ".join(f"{{{{p{i}}}}}" for i in range(10))
NAMES_11 = " ".join(f"{{{{p{i}}}}}" for i in range(11))

CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    # --- lengths (characters) ---
    ("name 128", _plan(name="n" * 128), []),
    ("name 129", _plan(name="n" * 129), ["CmdName.ExceedLimit"]),
    ("command name 128", _cmd(name="n" * 128), []),
    ("command name 129", _cmd(name="n" * 129), ["CmdName.ExceedLimit"]),
    ("long plan name, short command name", _plan(name="n" * 200, command={"name": "ok"}), []),
    ("description 512", _plan(description="d" * 512), []),
    ("description 513", _plan(description="d" * 513), ["CmdDesc.ExceedLimit"]),
    ("command description 513", _cmd(description="d" * 513), ["CmdDesc.ExceedLimit"]),
    ("working_dir 200", _cmd(working_dir="/" + "w" * 199), []),
    ("working_dir 201", _cmd(working_dir="/" + "w" * 200), ["InvalidParameter.WorkingDir"]),
    ("username 255", _cmd(username="u" * 255), []),
    ("username 256", _cmd(username="u" * 256), ["Username.ExceedLimit"]),
    ("password name 255", _cmd(**WINDOWS, windows_password_name="p" * 255), []),
    (
        "password name 256",
        _cmd(**WINDOWS, windows_password_name="p" * 256),
        ["WindowsPasswordName.ExceedLimit"],
    ),
    ("launcher 1024 bytes", _cmd(launcher="é" * 512), []),
    ("launcher 1025 bytes", _cmd(launcher="é" * 512 + "x"), ["InvalidParameter"]),
    # --- Windows password ---
    ("windows user without password name", _cmd(**WINDOWS), ["WindowsPasswordName.Missed"]),
    (
        "bat user without password name",
        _cmd(type="RunBatScript", username="deploy"),
        ["WindowsPasswordName.Missed"],
    ),
    ("windows as System", _cmd(type="RunPowerShellScript", username="System"), []),
    ("windows as system", _cmd(type="RunPowerShellScript", username="system"), []),
    ("windows default user", _cmd(type="RunPowerShellScript"), []),
    ("linux user needs no password name", _cmd(username="deploy"), []),
    # --- enumerations ---
    ("type bat", _cmd(type="RunBatScript"), []),
    ("type lower case", _cmd(type="runshellscript"), ["InvalidCmdType.NotFound"]),
    ("repeat Once", _cmd(repeat_mode="Once"), []),
    ("repeat NextRebootOnly", _cmd(repeat_mode="NextRebootOnly"), []),
    ("repeat EveryReboot", _cmd(repeat_mode="EveryReboot"), []),
    ("repeat DryRun", _cmd(repeat_mode="DryRun"), []),
    ("repeat unknown", _cmd(repeat_mode="Always"), ["InvalidRepeatMode.NotFound"]),
    ("Period without frequency", _cmd(repeat_mode="Period"), ["MissingParam.Frequency"]),
    ("Period with frequency", _cmd(repeat_mode="Period", frequency="rate(5m)"), []),
    ("DryRun with frequency", _cmd(repeat_mode="DryRun", frequency="rate(5m)"), []),
    (
        "EveryReboot with frequency",
        _cmd(repeat_mode="EveryReboot", frequency="rate(5m)"),
        ["frequency-needs-period"],
    ),
    ("termination Process", _cmd(termination_mode="Process"), []),
    ("termination ProcessTree", _cmd(termination_mode="ProcessTree"), []),
    ("termination unknown", _cmd(termination_mode="Kill"), ["InvalidParameter"]),
    # --- timeout ---
    ("timeout 0", _cmd(timeout=0), []),
    ("timeout long max", _cmd(timeout=2**63 - 1), []),
    ("timeout over long", _cmd(timeout=2**63), ["InvalidParameter"]),
    ("timeout negative", _cmd(timeout=-1), ["InvalidParameter"]),
    ("timeout string", _cmd(timeout="60"), ["InvalidParameter"]),
    ("timeout bool", _cmd(timeout=True), ["InvalidParameter"]),
    ("timeout float", _cmd(timeout=1.5), ["InvalidParameter"]),
    # --- containers ---
    ("container id", _cmd(container_id=HEX64), []),
    ("container id docker", _cmd(container_id="docker://" + HEX64), []),
    ("container id containerd", _cmd(container_id="containerd://" + HEX64), []),
    ("container id cri-o", _cmd(container_id="cri-o://" + HEX64.upper()), []),
    ("container id 63", _cmd(container_id=HEX64[:63]), ["InvalidContainerId.Malformed"]),
    ("container id 65", _cmd(container_id=HEX64 + "a"), ["InvalidContainerId.Malformed"]),
    ("container id not hex", _cmd(container_id="g" * 64), ["InvalidContainerId.Malformed"]),
    (
        "container id podman",
        _cmd(container_id="podman://" + HEX64),
        ["InvalidContainerId.Malformed"],
    ),
    ("container name", _cmd(container_name="web_1.a-b"), []),
    ("container name 255", _cmd(container_name="c" * 255), []),
    ("container name 256", _cmd(container_name="c" * 256), ["InvalidContainerName.Malformed"]),
    ("container name dash", _cmd(container_name="-web"), ["InvalidContainerName.Malformed"]),
    ("container name slash", _cmd(container_name="a/b"), ["InvalidContainerName.Malformed"]),
    (
        "container with powershell",
        _cmd(container_name="web", type="RunPowerShellScript"),
        ["InvalidInstance.NotMatch"],
    ),
    (
        "container with interpreter",
        _cmd(container_name="web", content="#!/bin/bash\necho hi"),
        ["Operation.Forbidden"],
    ),
    ("interpreter without container", _cmd(content="#!/bin/bash\necho hi"), []),
    # --- command tags ---
    # 20 in all: orchestrator adds the run's tag and the plan's two.
    ("17 tags", _cmd(tags={f"t{i}": "v" for i in range(17)}), []),
    ("18 tags", _cmd(tags={f"t{i}": "v" for i in range(18)}), ["NumberExceed.Tags"]),
    ("tag key 64", _cmd(tags={"k" * 64: "v"}), []),
    ("tag key 65", _cmd(tags={"k" * 65: "v"}), ["InvalidTagKey.Malformed"]),
    ("tag value 128", _cmd(tags={"k": "v" * 128}), []),
    ("tag value 129", _cmd(tags={"k": "v" * 129}), ["InvalidTagValue.Malformed"]),
    ("tag value empty", _cmd(tags={"k": ""}), []),
    ("tag key aliyun", _cmd(tags={"aliyun-owner": "v"}), ["InvalidTagKey.Malformed"]),
    ("tag key Aliyun", _cmd(tags={"Aliyun": "v"}), ["InvalidTagKey.Malformed"]),
    ("tag key acs:", _cmd(tags={"acs:x": "v"}), ["InvalidTagKey.Malformed"]),
    ("tag key acs without colon", _cmd(tags={"acsx": "v"}), []),
    ("tag key url", _cmd(tags={"see-http://x": "v"}), ["InvalidTagKey.Malformed"]),
    ("tag value url", _cmd(tags={"k": "HTTPS://x"}), ["InvalidTagValue.Malformed"]),
    ("tag key empty", _cmd(tags={"": "v"}), ["MissingParameter.TagKey"]),
    ("tag key reserved", _cmd(tags={"orchestrator-run": "v"}), ["Duplicate.TagKey"]),
    ("plan tag reserved", _cmd(tags={"orchestrator-plan": "v"}), ["Duplicate.TagKey"]),
    ("digest tag reserved", _cmd(tags={"orchestrator-plan-sha256": "v"}), ["Duplicate.TagKey"]),
    ("tag value number", _cmd(tags={"k": 1}), ["InvalidTagValue.Malformed"]),
    # --- content size: Base64 of 18432 bytes is 24576 ---
    ("content 24 KB", _cmd(content="x" * 18432), []),
    ("content over 24 KB", _cmd(content="x" * 18433), ["CmdContent.ExceedLimit"]),
    ("kept content 18 KB", _cmd(content="x" * 13824, keep_command=True), []),
    (
        "kept content over 18 KB",
        _cmd(content="x" * 13825, keep_command=True),
        ["CmdContent.ExceedLimit"],
    ),
    ("content multibyte counts bytes", _cmd(content="é" * 9217), ["CmdContent.ExceedLimit"]),
    (
        "substituted content 24 KB",
        _cmd(content="{{p}}", parameters={"p": "x" * 18432}),
        [],
    ),
    (
        "substituted content over 24 KB",
        _cmd(content="{{p}}", parameters={"p": "x" * 18433}),
        ["CmdContent.ExceedLimit"],
    ),
    (
        "substituted many times",
        _cmd(content=" ".join(["{{p}}"] * 100), parameters={"p": "x" * 200}),
        ["CmdContent.ExceedLimit"],
    ),
    ("empty content", _cmd(content=""), ["MissingParameter"]),
    # --- the {{ }} grammar ---
    ("spaces around name", _cmd(content="echo {{ p }}", parameters={"p": "1"}), []),
    ("newline around name", _cmd(content="echo {{\n p \n}}", parameters={"p": "1"}), []),
    ("name chars", _cmd(content="{{a-B_9}}", parameters={"a-B_9": "1"}), []),
    ("builtins", _cmd(content="{{ACS::InstanceId}} {{ACS::RegionId}} {{ACS::AccountId}}"), []),
    (
        "more builtins",
        _cmd(content="{{ACS::InstanceName}} {{ACS::InvokeId}} {{ACS::CommandId}}"),
        [],
    ),
    ("builtin any case", _cmd(content="{{acs::instanceid}}"), []),
    ("unknown builtin", _cmd(content="{{ACS::ZoneId}}"), ["CmdParam.InvalidParamName"]),
    ("store", _cmd(content="{{oos:db-host}} {{oos-secret:db-pass}}"), []),
    ("store without name", _cmd(content="{{oos:}}"), ["CmdParam.InvalidParamName"]),
    ("empty reference", _cmd(content="{{p}} {{}}", parameters={"p": "1"}), ["CmdParam.EmptyKey"]),
    (
        "dot in name",
        _cmd(content="{{a.b}}", parameters={"x": "1"}),
        [
            "CmdParam.InvalidParamName",
            "Parameter.NotMatched",
        ],
    ),
    ("name 64 bytes", _cmd(content="{{" + "n" * 64 + "}}", parameters={"n" * 64: "1"}), []),
    (
        "name 65 bytes",
        _cmd(content="{{p}} {{" + "n" * 65 + "}}", parameters={"p": "1"}),
        ["CmdParamName.ExceedLimit"],
    ),
    ("20 names", _cmd(content=NAMES_20, parameters={"p0": "1"}), []),
    ("21 names", _cmd(content=NAMES_21, parameters={"p0": "1"}), ["CmdParamCount.ExceedLimit"]),
    ("names fold case", _cmd(content=NAMES_20 + " {{P0}}", parameters={"p0": "1"}), []),
    (
        "bad name reported once",
        _cmd(content="{{a b}} {{a b}}", parameters={"x": "1"}),
        [
            "CmdParam.InvalidParamName",
            "Parameter.NotMatched",
        ],
    ),
    # --- parameters ---
    ("10 pairs", _cmd(content=NAMES_10, parameters={f"p{i}": "v" for i in range(10)}), []),
    (
        "11 pairs",
        _cmd(content=NAMES_11, parameters={f"p{i}": "v" for i in range(11)}),
        ["ParameterCount.ExceedLimit"],
    ),
    (
        "key 65",
        _cmd(content="{{p}}", parameters={"p": "1", "k" * 65: "2"}),
        ["ParameterKey.ExceedLimit"],
    ),
    ("key other case", _cmd(content="{{version}}", parameters={"Version": "1"}), []),
    (
        "key twice in two cases",
        _cmd(content="{{version}}", parameters={"version": "1", "VERSION": "2"}),
        ["ParameterKey.Duplicate"],
    ),
    ("value empty", _cmd(content="{{p}}", parameters={"p": ""}), []),
    ("value null is empty", _cmd(content="{{p}}", parameters={"p": None}), []),
    ("value int", _cmd(content="{{p}}", parameters={"p": 1}), ["ParameterType.NotSupported"]),
    ("value bool", _cmd(content="{{p}}", parameters={"p": True}), ["ParameterType.NotSupported"]),
    ("value list", _cmd(content="{{p}}", parameters={"p": ["a"]}), ["ParameterType.NotSupported"]),
    ("not matched", _cmd(content="{{p}}", parameters={"q": "1"}), ["Parameter.NotMatched"]),
    ("no names at all", _cmd(content="echo", parameters={"q": "1"}), ["Parameter.NotMatched"]),
    ("a name without value", _cmd(content="{{p}} {{q}}", parameters={"p": "1"}), []),
    (
        "disabled with parameters",
        _cmd(content="{{p}}", parameters={"p": "1"}, enable_parameter=False),
        ["Parameter.Disabled"],
    ),
    ("enabled, no parameters", _cmd(content="{{p}}", enable_parameter=True), []),
    ("go template, not enabled", _cmd(content="docker inspect -f '{{.State}}' x"), []),
    (
        "go template, enabled by a builtin",
        _cmd(content="{{.State}} {{ACS::InstanceId}}"),
        ["CmdParam.InvalidParamName"],
    ),
    # --- targets ---
    ("instances only", _plan(targets={"instances": ["i-abc", "i-def0"]}), []),
    ("both selectors", _plan(targets={"instances": ["i-abc"], "tags": {"a": "b"}}), []),
    ("upper-case id", _plan(targets={"instances": ["i-ABC"]}), ["instance-id"]),
    ("id without prefix", _plan(targets={"instances": ["abc"]}), ["instance-id"]),
    ("id twice", _plan(targets={"instances": ["i-a", "i-a"]}), ["duplicate-id"]),
    ("bad exclude", _plan(targets={"exclude": ["web-1"]}), ["instance-id"]),
    ("20 target tags", _plan(targets={"tags": {f"t{i}": "v" for i in range(20)}}), []),
    (
        "21 target tags",
        _plan(targets={"tags": {f"t{i}": "v" for i in range(21)}}),
        ["InvalidTagCount"],
    ),
    ("empty selectors", _plan(targets={"tags": {}, "instances": []}), ["no-targets"]),
    ("zones only", {**_plan(), "targets": {"zones": ["z"]}}, ["no-targets"]),
    ("zones not a list", _plan(targets={"zones": "cn-hangzhou-h"}), ["type"]),
    ("empty zone", _plan(targets={"zones": [""]}), ["type"]),
    # --- waves ---
    ("wave 100%", _plan(waves=["100%"]), []),
    ("wave 0.1%", _plan(waves=["0.1%", "100%"]), []),
    ("wave over 100%", _plan(waves=["100.5%"]), ["wave-size"]),
    ("wave 0%", _plan(waves=["0%"]), ["wave-size"]),
    ("wave count 1", _plan(waves=[1]), []),
    ("wave count 0", _plan(waves=[0]), ["wave-size"]),
    ("wave count string", _plan(waves=["5"]), ["wave-size"]),
    ("wave bool", _plan(waves=[True]), ["wave-size"]),
    ("waves not a list", _plan(waves="100%"), ["type"]),
    ("waves empty", _plan(waves=[]), ["no-waves"]),
    ("percentages under 100 then more", _plan(waves=["50%", "49%", 1]), []),
    ("percentages at 100 then more", _plan(waves=["50%", "50%", 1]), ["empty-wave"]),
    ("counts never fill", _plan(waves=[1000, 1000, "100%"]), []),
    ("two waves after full", _plan(waves=["100%", 1, 2]), ["empty-wave", "empty-wave"]),
    ("wave name 64", _plan(waves=[{"name": "w" * 64, "size": 1}]), []),
    ("wave name 65", _plan(waves=[{"name": "w" * 65, "size": 1}]), ["wave-name"]),
    ("wave name empty", _plan(waves=[{"name": "", "size": 1}]), ["required"]),
    (
        "wave name twice",
        _plan(waves=[{"name": "a", "size": 1}, {"name": "a", "size": 1}]),
        ["duplicate-wave"],
    ),
    ("wave unknown key", _plan(waves=[{"name": "a", "sise": 1}]), ["required", "unknown-key"]),
    # --- gates ---
    ("max_errors 0", _wave(max_errors=0), []),
    ("max_errors 1000", _wave(max_errors=1000), []),  # beyond any wave: legal, never breaches
    ("max_errors 0%", _wave(max_errors="0%"), []),
    ("max_errors 100%", _wave(max_errors="100%"), []),
    ("max_errors 2.5%", _wave(max_errors="2.5%"), []),
    ("max_errors 100.5%", _wave(max_errors="100.5%"), ["max-errors"]),
    ("max_errors -1", _wave(max_errors=-1), ["max-errors"]),
    ("max_errors -5%", _wave(max_errors="-5%"), ["max-errors"]),
    ("max_errors 1.5", _wave(max_errors=1.5), ["max-errors"]),
    ("max_errors bool", _wave(max_errors=True), ["max-errors"]),
    ("max_errors '3'", _wave(max_errors="3"), ["max-errors"]),
    ("wave concurrency 1", _wave(max_concurrency=1), []),
    ("wave concurrency 100%", _wave(max_concurrency="100%"), []),
    ("wave concurrency 0", _wave(max_concurrency=0), ["max-concurrency"]),
    ("wave concurrency 0%", _wave(max_concurrency="0%"), ["max-concurrency"]),
    ("pause 0", _wave(pause=0), []),
    ("pause 0.5", _wave(pause=0.5), []),
    ("pause 86400", _wave(pause=86400), []),
    ("pause 86401", _wave(pause=86401), ["pause"]),
    ("pause 24h", _wave(pause="24h"), []),
    ("pause 23h59m60s", _wave(pause="23h59m60s"), []),
    ("pause 24h1s", _wave(pause="24h1s"), ["pause"]),
    ("pause 1d", _wave(pause="1d"), ["pause"]),
    ("pause -1", _wave(pause=-1), ["pause"]),
    ("pause 5 minutes", _wave(pause="5 minutes"), ["pause"]),
    ("pause 30 as text", _wave(pause="30"), ["pause"]),
    ("pause 5m30", _wave(pause="5m30"), ["pause"]),
    ("pause m5", _wave(pause="m5"), ["pause"]),
    ("pause bool", _wave(pause=True), ["pause"]),
    ("pause approval", _wave(pause="approval"), ["pause"]),
    ("approval true", _wave(approval=True), []),
    ("approval string", _wave(approval="yes"), ["type"]),
    ("verify content", _wave(verify={"content": "true"}), []),
    ("verify false", _wave(verify=False), []),
    ("verify true", _wave(verify=True), ["type"]),
    ("verify string", _wave(verify="curl"), ["type"]),
    ("verify empty", _wave(verify={"content": ""}), ["MissingParameter"]),
    ("verify neither", _wave(verify={"timeout": 5}), ["content-or-script"]),
    ("verify both", _wave(verify={"content": "x", "script": "x.sh"}), ["content-or-script"]),
    ("verify missing script", _wave(verify={"script": "nowhere.sh"}), ["script"]),
    ("verify unknown key", _wave(verify={"content": "x", "user": "root"}), ["unknown-key"]),
    ("verify timeout 0", _wave(verify={"content": "x", "timeout": 0}), []),
    ("verify timeout -1", _wave(verify={"content": "x", "timeout": -1}), ["InvalidParameter"]),
    ("verify timeout text", _wave(verify={"content": "x", "timeout": "9"}), ["InvalidParameter"]),
    ("verify type bad", _wave(verify={"content": "x", "type": "sh"}), ["InvalidCmdType.NotFound"]),
    (
        "verify type windows",
        _wave(verify={"content": "x", "type": "RunBatScript"}),
        ["verify-type"],
    ),
    (
        "verify type both windows",
        _plan(
            command={"type": "RunPowerShellScript"},
            waves=[{"size": 1, "verify": {"content": "x", "type": "RunBatScript"}}],
        ),
        [],
    ),
    (
        "verify 24 KB",
        _wave(verify={"content": "a" * (api.CONTENT_MAX_BYTES // 4 * 3)}),
        [],
    ),
    (
        "verify over 24 KB",
        _wave(verify={"content": "a" * (api.CONTENT_MAX_BYTES // 4 * 3 + 1)}),
        ["CmdContent.ExceedLimit"],
    ),
    ("verify builtin", _wave(verify={"content": "{{ACS::InstanceId}}"}), ["verify-parameters"]),
    ("verify store", _wave(verify={"content": "{{oos:token}}"}), ["verify-parameters"]),
    ("verify no such parameter", _wave(verify={"content": "{{v}}"}), ["verify-parameters"]),
    ("verify go template", _wave(verify={"content": "docker inspect -f '{{.State}}' x"}), []),
    (
        "verify uses the command's parameter",
        _plan(
            command={"content": "echo {{v}}", "parameters": {"v": "1"}},
            waves=[{"size": 1, "verify": {"content": "test {{ V }} = 1"}}],
        ),
        [],
    ),
    (
        "verify #! with a container command",  # the verify runs on the host, not in it
        _plan(
            command={"container_name": "web"},
            waves=[{"size": 1, "verify": {"content": "#!/bin/sh\ntrue"}}],
        ),
        [],
    ),
    ("defaults", _plan(wave_defaults={"max_errors": "5%", "pause": "1m", "approval": True}), []),
    ("defaults without waves", _plan(wave_defaults={"verify": {"content": "true"}}), []),
    ("defaults bad", _plan(wave_defaults={"max_errors": "150%"}), ["max-errors"]),
    ("defaults name", _plan(wave_defaults={"name": "x"}), ["unknown-key"]),
    ("defaults a list", _plan(wave_defaults=[1]), ["type"]),
    ("on_breach stop", _plan(on_breach="stop_in_flight"), []),
    ("on_breach finish", _plan(on_breach="finish_in_flight"), []),
    ("on_breach other", _plan(on_breach="drain"), ["on-breach"]),
    ("on_breach bool", _plan(on_breach=True), ["type"]),
    ("order spread", _plan(order="spread"), []),
    ("order by_zone", _plan(order="by_zone"), []),
    ("order other", _plan(order="random"), ["order"]),
    ("count_undelivered false", _plan(count_undelivered=False), []),
    ("count_undelivered text", _plan(count_undelivered="false"), ["type"]),
    # --- limits ---
    ("batch 1", _plan(limits={"batch_size": 1}), []),
    ("batch 50", _plan(limits={"batch_size": 50}), []),
    ("batch 51", _plan(limits={"batch_size": 51}), ["InstanceIds.ExceedLimit"]),
    ("batch 0", _plan(limits={"batch_size": 0}), ["batch-size"]),
    ("batch 51 with quota", _plan(limits={"batch_size": 51, "instance_quota": 100}), []),
    ("batch 100 with quota", _plan(limits={"batch_size": 100, "instance_quota": 100}), []),
    (
        "batch 101 with quota",
        _plan(limits={"batch_size": 101, "instance_quota": 100}),
        ["InstanceIds.ExceedLimit"],
    ),
    (
        "batch over a quota of 60",
        _plan(limits={"batch_size": 61, "instance_quota": 60}),
        ["InstanceIds.ExceedLimit"],
    ),
    ("quota 49", _plan(limits={"instance_quota": 49}), ["instance-quota"]),
    ("quota 101", _plan(limits={"instance_quota": 101}), ["instance-quota"]),
    ("concurrency count", _plan(limits={"max_concurrency": 1}), []),
    ("concurrency percent", _plan(limits={"max_concurrency": "100%"}), []),
    ("concurrency 0", _plan(limits={"max_concurrency": 0}), ["max-concurrency"]),
    ("qps all", _plan(limits={"qps": {"RunCommand": 1, "Describe": 0.5, "StopInvocation": 2}}), []),
    ("qps zero", _plan(limits={"qps": {"Describe": 0}}), ["qps"]),
    ("qps negative", _plan(limits={"qps": {"RunCommand": -1}}), ["qps"]),
    ("qps string", _plan(limits={"qps": {"RunCommand": "10"}}), ["type"]),
    ("qps unknown action", _plan(limits={"qps": {"DescribeInstances": 1}}), ["unknown-key"]),
    ("delivery 0.5", _plan(limits={"delivery_timeout": 0.5}), []),
    ("delivery 0", _plan(limits={"delivery_timeout": 0}), ["delivery-timeout"]),
    ("ignore_quota yes", _plan(limits={"ignore_quota": True}), []),
    ("ignore_quota string", _plan(limits={"ignore_quota": "yes"}), ["type"]),
    ("limits empty", _plan(limits=None), []),
    ("limits a list", _plan(limits=[1]), ["type"]),
    # --- top level ---
    ("region", _plan(region="ap-southeast-1"), []),
    ("region upper", _plan(region="CN-HANGZHOU"), ["region"]),
    ("name empty", _plan(name=" "), ["required"]),
    ("name number", _plan(name=5), ["type"]),
    ("unknown top-level key", _plan(nmae="x"), ["unknown-key"]),
    ("content and script", _cmd(script="x.sh"), ["content-or-script"]),
    ("neither content nor script", _plan(command={"content": None}), ["content-or-script"]),
    ("command not a mapping", {**_plan(), "command": "echo hi"}, ["type"]),
]


@pytest.mark.parametrize(("doc", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule(doc: dict[str, Any], expected: list[str]) -> None:
    """The plan breaks exactly the expected rules (none: it loads)."""
    assert _codes(doc) == expected


# --- Frequency ------------------------------------------------------------------------------

FREQUENCIES: list[tuple[str, int, bool]] = [
    # Each: the expression, the timeout, whether it is valid.
    ("rate(60s)", 59, True),
    ("rate(60s)", 60, False),  # must be longer than the timeout
    ("rate(59s)", 0, False),
    ("rate(1m)", 30, True),
    ("rate(7d)", 60, True),
    ("rate(168h)", 60, True),
    ("rate(10081m)", 60, False),
    ("rate(8d)", 60, False),
    ("RATE(5M)", 60, True),
    ("rate(5 m)", 60, True),
    ("rate(5w)", 60, False),
    ("rate(-5m)", 60, False),
    ("rate5m", 60, False),
    ("at(2030-06-06 13:15:30)", 60, True),
    ("at(2030-06-06 13:15:30 Asia/Shanghai)", 60, True),
    ("at(2030-06-06 13:15:30 GMT-7:00)", 60, True),
    ("at(2030-06-06 13:15:30 UTC)", 60, True),
    ("at(2030-06-06 25:15:30)", 60, False),
    ("at(2030-02-29 10:00:00)", 60, False),
    ("at(2028-02-29 10:00:00)", 60, True),
    ("at(2030-6-6 13:15:30)", 60, False),
    ("at(2030-06-06 13:15:30 CST)", 60, False),
    ("at(2030-06-06 13:15:30 GMT+08:00)", 60, False),
    ("0 15 10 ? * *", 60, True),
    ("0 15 10 ? * * 2030", 60, True),
    ("0 15 10 ? * * Asia/Shanghai", 60, True),
    ("0 15 10 ? * * 2030 Asia/Shanghai", 60, True),
    ("0 15 10 ? * * 2030 GMT+8:00", 60, True),
    ("0 15 10 ? * * 2030 GMT+14:00", 60, True),
    ("0 15 10 ? * * 2030 GMT-12:00", 60, True),
    ("0 15 10 ? * * 2030 GMT-13:00", 60, False),
    ("0 15 10 ? * * 2030 GMT+15:00", 60, False),
    ("0 15 10 ? * * 2030 Europe/Atlantis", 60, False),
    ("0 0/30 10-11 * * ? 2030 GMT+8:00", 60, True),  # SEED's examples
    ("0 0/5 14 * 10 ? 2030/2 UTC", 60, True),
    ("0 */20 * * * ?", 60, True),
    ("0 */20 * * * *", 60, False),  # both day fields given
    ("0 0 12 ? * ?", 60, False),  # both `?`
    ("0 0 12 ? * MON-FRI", 60, True),
    ("0 0 12 ? * FRI-MON", 60, True),
    ("0 0 12 ? JAN,JUL *", 60, True),
    ("0 0 12 * JAN,JUL ?", 60, True),
    ("0 0 12 L * ?", 60, True),
    ("0 0 12 LW * ?", 60, True),
    ("0 0 12 L-3 * ?", 60, True),
    ("0 0 12 L-31 * ?", 60, False),
    ("0 0 12 15W * ?", 60, True),
    ("0 0 12 32W * ?", 60, False),
    ("0 0 12 ? * 6L", 60, True),
    ("0 0 12 ? * 6#3", 60, True),
    ("0 0 12 ? * 6#6", 60, False),
    ("60 0 12 * * ?", 60, False),
    ("0 60 12 * * ?", 60, False),
    ("0 0 24 * * ?", 60, False),
    ("0 0 12 0 * ?", 60, False),
    ("0 0 12 * 13 ?", 60, False),
    ("0 0 12 ? * 8", 60, False),
    ("0 0 12 * * ? 1969", 60, False),
    ("0 0 12 * * ? 2100", 60, False),
    ("0 0/0 12 * * ?", 60, False),
    ("0 0 12 * *", 60, False),
    ("0 0 12 * * ? 2030 UTC extra", 60, False),
    ("0/10 * * * * ?", 10, True),  # every 10 s: the floor
    ("0/10 * * * * ?", 11, False),  # … and at least the timeout
    ("0/9 * * * * ?", 0, False),
    ("0,5 * * * * ?", 0, False),
    ("0 * * * * ?", 60, True),
    ("0 * * * * ?", 61, False),
    ("0 0 0,23 * * ?", 3600, True),  # 23:00 → 00:00 the next day is an hour
    ("0 0 0,23 * * ?", 3601, False),
    ("0 0 0,23 ? * MON", 3601, True),  # no two days in a row: no midnight gap
    ("0 0 0,23 ? * SAT,SUN", 3601, False),  # SAT → SUN wraps the week
    ("0 0 0,23 1,2 * ?", 3601, False),
    ("0 0 0,23 1,3 * ?", 3601, True),
]


@pytest.mark.parametrize(("expression", "timeout", "valid"), FREQUENCIES)
def test_frequency(expression: str, timeout: int, valid: bool) -> None:
    """rate(), at() and Quartz cron with optional year and zone, against the timeout."""
    codes = _codes(_cmd(frequency=expression, timeout=timeout, repeat_mode="Period"))
    assert codes == ([] if valid else ["InvalidParam.Frequency"])


# --- credentials ----------------------------------------------------------------------------

SECRET = "LTAI5tQx8mZr2nVbK7pLw3Yd"
STS = "STS.NUgYrLnoC37mZZCNnAbez2F"


@pytest.mark.parametrize(
    "doc",
    [
        _cmd(content=f"export ALIBABA_CLOUD_ACCESS_KEY_ID={SECRET}"),
        _plan(description=f"key {SECRET}"),
        _cmd(tags={"owner": STS}),
        _plan(targets={"tags": {"app": "web", "key": SECRET}}),
        _plan(waves=[{"name": "a", "size": 1}], extra=[SECRET]),
        _cmd(content="echo {{password}}", parameters={"password": "hunter2-" + SECRET[4:]}),
        _cmd(content="echo {{AccessKeySecret}}", parameters={"AccessKeySecret": SECRET[4:]}),
        _cmd(content="echo {{security-token}}", parameters={"security-token": SECRET[4:]}),
        _cmd(content="echo {{db_passwd}}", parameters={"db_passwd": SECRET[4:]}),
        _cmd(content="echo {{x}}", parameters={"x": "1", SECRET: "v"}),
        _plan(**{SECRET: "v"}),
    ],
    ids=[
        "id in content",
        "id in description",
        "sts id in a tag",
        "id in a target tag",
        "id under an unknown key",
        "password parameter",
        "camel-case secret",
        "security token",
        "passwd",
        "id as a parameter name",
        "id as an unknown key",
    ],
)
def test_credentials_are_refused_without_repeating_them(doc: dict[str, Any]) -> None:
    """A credential anywhere is a `no-credentials` problem whose text never holds it."""
    with pytest.raises(PlanError) as caught:
        parse_plan(yaml.safe_dump(doc))
    assert "no-credentials" in [p.code for p in caught.value.problems]
    everything = str(caught.value) + repr(caught.value.problems)
    assert SECRET not in everything
    assert SECRET[4:] not in everything
    assert STS[4:] not in everything


def test_a_credential_in_the_script_file_is_refused(tmp_path: Any) -> None:
    """The script file is part of the plan: the same rule applies to it."""
    (tmp_path / "run.sh").write_text(f"aliyun configure set --access-key-id {SECRET}\n")
    doc = _plan(command={"content": None, "script": "run.sh"})
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(PlanError) as caught:
        parse_plan(path.read_text(), source=path)
    assert [(p.field, p.code) for p in caught.value.problems] == [
        ("command.script", "no-credentials")
    ]
    assert SECRET not in str(caught.value)


def test_a_credential_in_a_bad_value_is_not_echoed() -> None:
    """Messages that quote a value (an unknown type) redact one that looks like a key."""
    with pytest.raises(PlanError) as caught:
        parse_plan(yaml.safe_dump(_cmd(type=SECRET)))
    assert SECRET not in str(caught.value)
    assert "InvalidCmdType.NotFound" in [p.code for p in caught.value.problems]


@pytest.mark.parametrize(
    "doc",
    [
        _cmd(content="echo {{password}}", parameters={"password": "{{oos-secret:db-password}}"}),
        _cmd(content="echo {{password}}", parameters={"password": ""}),
        _cmd(**WINDOWS, windows_password_name="deploy-password"),
        _cmd(content="echo LTAI-is-a-prefix LTAIshort"),
        _cmd(content="passwd deploy  # changing a password is not holding one"),
    ],
    ids=["store reference", "empty value", "password name", "short LTAI words", "passwd command"],
)
def test_things_that_only_look_like_credentials_pass(doc: dict[str, Any]) -> None:
    """References, names of stored passwords and ordinary words are not credentials."""
    assert "no-credentials" not in _codes(doc)
