"""RunCommand validation: one refused request per rule, and valid requests of every shape."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from orchestrator import api
from orchestrator.sim._protocol import SimApiError
from orchestrator.sim._runcommand import parse_run_command

Params = dict[str, str]
HEX64 = "ab141ddfbacfe02d9dbc25966ed971536124527097398d419a6746873fea0123"
BASE = {
    "RegionId": "cn-hangzhou",
    "Type": "RunShellScript",
    "CommandContent": "echo hi",
    "InstanceId.1": "i-1",
}


def req(changes: dict[str, str] | None = None, *, drop: tuple[str, ...] = ()) -> dict[str, str]:
    """BASE with `changes` applied and the `drop` keys removed."""
    params = {**BASE, **(changes or {})}
    for key in drop:
        params.pop(key, None)
    return params


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


def tags(prefix: str, count: int) -> dict[str, str]:
    out: dict[str, str] = {}
    for i in range(1, count + 1):
        out[f"{prefix}.{i}.Key"] = f"k{i}"
        out[f"{prefix}.{i}.Value"] = f"v{i}"
    return out


def instances(count: int) -> dict[str, str]:
    return {f"InstanceId.{i}": f"i-{i}" for i in range(1, count + 1)}


def with_params(content: str, parameters: str) -> dict[str, str]:
    return req({"CommandContent": content, "EnableParameter": "true", "Parameters": parameters})


NO_INSTANCE = ("InstanceId.1",)
CONTAINER = {"ContainerId": HEX64}
PARAMS_11 = " ".join(f"{{{{p{i}}}}}" for i in range(11))

# (code, request): each request breaks exactly one rule.
REFUSALS: list[tuple[str, dict[str, str]]] = [
    ("MissingParameter", req(drop=("Type",))),
    ("MissingParameter", req({"Type": ""})),
    ("MissingParameter", req(drop=("CommandContent",))),
    ("InvalidParameter", req({"Timeout": "abc"})),
    ("InvalidParameter", req({"Timeout": "-1"})),
    ("InvalidParameter", req({"Timeout": "1.5"})),
    ("InvalidParameter", req({"KeepCommand": "yes"})),
    ("InvalidParameter", req({"EnableParameter": "1"})),
    ("InvalidParameter", req({"TerminationMode": "Kill"})),
    ("InvalidParameter", req({"Launcher": "x" * 1025})),
    ("InvalidCmdType.NotFound", req({"Type": "RunPythonScript"})),
    ("InvalidCmdType.NotFound", req({"Type": "runshellscript"})),
    ("InvalidRepeatMode.NotFound", req({"RepeatMode": "Daily"})),
    ("MissingParam.Frequency", req({"RepeatMode": "Period"})),
    ("NumberExceed.Tags", req({"Tag.21.Key": "k"})),
    ("MissingParameter.TagKey", req({"Tag.1.Value": "v"})),
    ("MissingParameter.TagKey", req({"Tag.1.Key": ""})),
    ("InvalidTagKey.Malformed", req({"Tag.1.Key": "k" * 65})),
    ("InvalidTagKey.Malformed", req({"Tag.1.Key": "aliyun-env"})),
    ("InvalidTagKey.Malformed", req({"Tag.1.Key": "acs:env"})),
    ("InvalidTagKey.Malformed", req({"Tag.1.Key": "see http://x"})),
    ("InvalidTagValue.Malformed", req({"Tag.1.Key": "k", "Tag.1.Value": "v" * 129})),
    ("InvalidTagValue.Malformed", req({"Tag.1.Key": "k", "Tag.1.Value": "https://x"})),
    ("Duplicate.TagKey", req({"Tag.1.Key": "k", "Tag.2.Key": "k"})),
    ("NumberExceed.ResourceTags", req({"ResourceTag.11.Key": "k"}, drop=NO_INSTANCE)),
    ("MissingParameter.ResourceTagKey", req({"ResourceTag.1.Value": "v"}, drop=NO_INSTANCE)),
    ("InvalidResourceTagKey.Malformed", req({"ResourceTag.1.Key": "acs:x"}, drop=NO_INSTANCE)),
    (
        "InvalidResourceTagValue.Malformed",
        req({"ResourceTag.1.Key": "k", "ResourceTag.1.Value": "v" * 129}, drop=NO_INSTANCE),
    ),
    (
        "Duplicate.ResourceTagKey",
        req({"ResourceTag.1.Key": "k", "ResourceTag.2.Key": "k"}, drop=NO_INSTANCE),
    ),
    ("InvalidResourceTag.ConflictWithInstanceIds", req({"ResourceTag.1.Key": "k"})),
    ("MissingParam.InstanceId", req(drop=NO_INSTANCE)),
    ("MissingParam.InstanceId", req({"InstanceId.1": ""})),
    ("InstanceIds.ExceedLimit", req(instances(51))),
    ("CmdName.ExceedLimit", req({"Name": "n" * 129})),
    ("CmdDesc.ExceedLimit", req({"Description": "d" * 513})),
    ("InvalidParameter.WorkingDir", req({"WorkingDir": "/" + "w" * 200})),
    ("Username.ExceedLimit", req({"Username": "u" * 256})),
    ("WindowsPasswordName.ExceedLimit", req({"WindowsPasswordName": "p" * 256})),
    ("WindowsPasswordName.Missed", req({"Type": "RunPowerShellScript", "Username": "admin"})),
    ("WindowsPasswordName.Missed", req({"Type": "RunBatScript", "Username": "Administrator"})),
    ("InvalidClientToken.Malformed", req({"ClientToken": "t" * 65})),
    ("InvalidClientToken.Malformed", req({"ClientToken": "tök"})),
    ("InvalidContainerId.Malformed", req({"ContainerId": HEX64[:-1]})),
    ("InvalidContainerId.Malformed", req({"ContainerId": "podman://" + HEX64})),
    ("InvalidContainerId.Malformed", req({"ContainerId": "g" * 64})),
    ("InvalidContainerName.Malformed", req({"ContainerName": "-web"})),
    ("InvalidContainerName.Malformed", req({"ContainerName": "web app"})),
    ("InvalidContainerName.Malformed", req({"ContainerName": "w" * 256})),
    ("InvalidInstance.NotMatch", req({**CONTAINER, "Type": "RunBatScript"})),
    ("Operation.Forbidden", req({**CONTAINER, "CommandContent": "#!/usr/bin/python\nprint(1)"})),
    ("CmdContent.DecodeError", req({"ContentEncoding": "Base64", "CommandContent": "not b64!"})),
    ("CmdContent.DecodeError", req({"ContentEncoding": "base64", "CommandContent": "ZWNobw"})),
    ("CmdContent.DecodeError", req({"ContentEncoding": "Base64", "CommandContent": b64(b"\xff")})),
    ("CmdParam.EmptyKey", with_params("echo {{ }}", "{}")),
    ("CmdParam.EmptyKey", with_params("echo {{a}}", '{"": "x"}')),
    ("CmdParam.InvalidParamName", with_params("echo {{na me}}", "{}")),
    ("CmdParam.InvalidParamName", with_params("echo {{acs::Zone}}", "{}")),
    ("CmdParamName.ExceedLimit", with_params("echo {{" + "a" * 65 + "}}", "{}")),
    ("CmdParamCount.ExceedLimit", with_params(" ".join(f"{{{{p{i}}}}}" for i in range(21)), "{}")),
    ("Parameter.Disabled", req({"Parameters": '{"a": "b"}'})),
    ("Parameter.Disabled", req({"Parameters": '{"a": "b"}', "EnableParameter": "false"})),
    ("ParameterType.NotSupported", with_params("echo {{a}}", '{"a": 1}')),
    ("ParameterType.NotSupported", with_params("echo {{a}}", '["a"]')),
    ("ParameterType.NotSupported", with_params("echo {{a}}", "a=b")),
    (
        "ParameterCount.ExceedLimit",
        with_params(PARAMS_11, json.dumps({f"p{i}": "v" for i in range(11)})),
    ),
    ("ParameterKey.ExceedLimit", with_params("echo {{a}}", json.dumps({"k" * 65: "v"}))),
    ("ParameterKey.Duplicate", with_params("echo {{a}}", '{"a": "1", "a": "2"}')),
    ("ParameterKey.Duplicate", with_params("echo {{a}}", '{"a": "1", "A": "2"}')),
    ("Parameter.NotMatched", with_params("echo {{a}}", '{"b": "x"}')),
    ("Parameter.NotMatched", with_params("echo {{ACS::InstanceId}}", '{"ACS::InstanceId": "x"}')),
    ("CmdContent.ExceedLimit", req({"CommandContent": "x" * 18433})),
    ("CmdContent.ExceedLimit", req({"CommandContent": "x" * 13825, "KeepCommand": "true"})),
    ("CmdContent.ExceedLimit", with_params("{{a}}", json.dumps({"a": "x" * 18433}))),
    ("InvalidParam.Frequency", req({"Frequency": "rate(30s)"})),
    ("InvalidParam.Frequency", req({"Frequency": "0 */20 * * * ?", "Timeout": "3600"})),
]

# Every code the validator can answer with (the stateful ones are the handler's).
STATELESS_CODES = {
    "MissingParameter",
    "InvalidParameter",
    "InvalidCmdType.NotFound",
    "InvalidRepeatMode.NotFound",
    "MissingParam.Frequency",
    "NumberExceed.Tags",
    "MissingParameter.TagKey",
    "InvalidTagKey.Malformed",
    "InvalidTagValue.Malformed",
    "Duplicate.TagKey",
    "NumberExceed.ResourceTags",
    "MissingParameter.ResourceTagKey",
    "InvalidResourceTagKey.Malformed",
    "InvalidResourceTagValue.Malformed",
    "Duplicate.ResourceTagKey",
    "InvalidResourceTag.ConflictWithInstanceIds",
    "MissingParam.InstanceId",
    "InstanceIds.ExceedLimit",
    "CmdName.ExceedLimit",
    "CmdDesc.ExceedLimit",
    "InvalidParameter.WorkingDir",
    "Username.ExceedLimit",
    "WindowsPasswordName.ExceedLimit",
    "WindowsPasswordName.Missed",
    "InvalidClientToken.Malformed",
    "InvalidContainerId.Malformed",
    "InvalidContainerName.Malformed",
    "InvalidInstance.NotMatch",
    "Operation.Forbidden",
    "CmdContent.DecodeError",
    "CmdParam.EmptyKey",
    "CmdParam.InvalidParamName",
    "CmdParamName.ExceedLimit",
    "CmdParamCount.ExceedLimit",
    "Parameter.Disabled",
    "ParameterType.NotSupported",
    "ParameterCount.ExceedLimit",
    "ParameterKey.ExceedLimit",
    "ParameterKey.Duplicate",
    "Parameter.NotMatched",
    "CmdContent.ExceedLimit",
    "InvalidParam.Frequency",
}


def refuse(params: dict[str, str], **kwargs: int) -> SimApiError:
    with pytest.raises(SimApiError) as excinfo:
        parse_run_command(params, **kwargs)
    return excinfo.value


class TestRefusals:
    def test_table_covers_every_stateless_code(self) -> None:
        """The table below reaches every code the validator owns, and only known api."""
        assert {code for code, _ in REFUSALS} == STATELESS_CODES
        assert set(api.ERRORS) >= STATELESS_CODES

    @pytest.mark.parametrize(("code", "params"), REFUSALS)
    def test_code_status_and_message(self, code: str, params: Params) -> None:
        """The one broken rule answers with its code, HTTP status and text."""
        error = refuse(params)
        spec = api.ERRORS[code]
        assert error.code == code
        assert error.http_status == spec.http_status
        if code not in {"MissingParameter", "InvalidParameter"}:
            assert error.message == spec.message

    def test_gateway_messages_name_the_parameter(self) -> None:
        """MissingParameter and InvalidParameter say which parameter, as the gateway does."""
        assert refuse(req(drop=("CommandContent",))).message == (
            'The input parameter "CommandContent" that is mandatory for processing this '
            "request is not supplied."
        )
        assert refuse(req({"Timeout": "x"})).message == (
            'The specified parameter "Timeout" is not valid.'
        )

    @pytest.mark.parametrize(
        ("params", "code"),
        [
            # Gateway checks come before the service's own.
            (req({"Type": "Bogus", "Timeout": "x"}), "InvalidParameter"),
            # Enumerations before targets.
            (req({"Type": "Bogus"}, drop=NO_INSTANCE), "InvalidCmdType.NotFound"),
            # Targets before strings.
            (req({"Name": "n" * 129}, drop=NO_INSTANCE), "MissingParam.InstanceId"),
            # Strings before content.
            (req({"Name": "n" * 129, "CommandContent": "x" * 30000}), "CmdName.ExceedLimit"),
            # Content before schedule.
            (req({"CommandContent": "x" * 30000, "Frequency": "bad"}), "CmdContent.ExceedLimit"),
        ],
    )
    def test_precedence(self, params: Params, code: str) -> None:
        """With two rules broken the documented order decides."""
        assert refuse(params).code == code


class TestValid:
    def test_plain_defaults(self) -> None:
        """A minimal request gets the documented defaults."""
        spec = parse_run_command(BASE)
        assert spec.type == "RunShellScript"
        assert spec.content == "echo hi"
        assert spec.timeout == 60
        assert spec.repeat_mode == "Once"
        assert spec.frequency is None
        assert spec.keep_command is False
        assert spec.enable_parameter is False
        assert spec.parameters == {}
        assert spec.parameter_names == ()
        assert spec.instance_ids == ("i-1",)
        assert (spec.name, spec.description) == ("", "")
        assert spec.working_dir is None
        assert spec.username is None
        assert spec.container_id is None
        assert spec.tags == ()
        assert spec.resource_tags == ()

    def test_all_optional_fields_pass_through(self) -> None:
        """Every optional parameter reaches the spec."""
        spec = parse_run_command(
            req(
                {
                    "Name": "n",
                    "Description": "d",
                    "WorkingDir": "/srv/app",
                    "Username": "app",
                    "Timeout": "0",
                    "KeepCommand": "True",
                    "ClientToken": "tok-1",
                    "ResourceGroupId": "rg-1",
                    "Launcher": 'python3 -u {{ACS::ScriptFileName|Ext(".py")}}',
                    "TerminationMode": "ProcessTree",
                    "OssOutputDelivery": "oss://bucket/prefix",
                    "Timed": "whatever",  # deprecated: ignored
                }
            )
        )
        assert (spec.name, spec.description, spec.working_dir) == ("n", "d", "/srv/app")
        assert (spec.username, spec.timeout, spec.keep_command) == ("app", 0, True)
        assert (spec.client_token, spec.resource_group_id) == ("tok-1", "rg-1")
        assert spec.launcher == 'python3 -u {{ACS::ScriptFileName|Ext(".py")}}'
        assert spec.termination_mode == "ProcessTree"
        assert spec.oss_output_delivery == "oss://bucket/prefix"

    @pytest.mark.parametrize("encoding", ["Base64", "base64", "BASE64"])
    def test_base64_any_case(self, encoding: str) -> None:
        """ContentEncoding is case-insensitive; the spec holds the decoded text."""
        spec = parse_run_command(
            req({"ContentEncoding": encoding, "CommandContent": b64("echo 你好\n")})
        )
        assert spec.content == "echo 你好\n"

    def test_unknown_encoding_is_plain_text(self) -> None:
        """Any other ContentEncoding is treated as PlainText (SEED)."""
        assert parse_run_command(req({"ContentEncoding": "gzip"})).content == "echo hi"

    def test_parameters_with_builtins_and_store(self) -> None:
        """Custom names, built-ins and store references live together."""
        spec = parse_run_command(
            with_params(
                "echo {{ name }} {{ACS::InstanceId}} {{oos:pw}} {{Other}} {{NAME}}",
                '{"NAME": "x", "other": ""}',
            )
        )
        assert spec.enable_parameter is True
        assert spec.parameter_names == ("name", "Other")
        assert spec.parameters == {"NAME": "x", "other": ""}
        assert spec.content.startswith("echo {{ name }}")  # not substituted here

    def test_parameters_subset_and_empty(self) -> None:
        """Fewer values than names is fine, and no Parameters at all too."""
        assert parse_run_command(with_params("{{a}} {{b}}", '{"a": "1"}')).parameters == {"a": "1"}
        spec = parse_run_command(
            req({"CommandContent": "{{a}}", "EnableParameter": "true"}, drop=())
        )
        assert spec.parameters == {}
        assert spec.parameter_names == ("a",)

    def test_legacy_sdk_dict_repr(self) -> None:
        """The legacy SDK's `str(dict)` Parameters are read (fastjson-style leniency)."""
        spec = parse_run_command(with_params("echo {{name}}", "{'name': 'x'}"))
        assert spec.parameters == {"name": "x"}

    def test_braces_are_literal_without_enable_parameter(self) -> None:
        """With EnableParameter=false `{{ }}` is plain text and an empty `{}` is allowed."""
        spec = parse_run_command(
            req({"CommandContent": "echo {{ bad name! }}", "Parameters": "{}"})
        )
        assert spec.parameter_names == ()
        assert spec.parameters == {}

    @pytest.mark.parametrize("mode", ["Once", "NextRebootOnly", "EveryReboot", "DryRun"])
    def test_repeat_modes_without_frequency(self, mode: str) -> None:
        """Each mode that needs no Frequency is kept as given."""
        spec = parse_run_command(req({"RepeatMode": mode}))
        assert spec.repeat_mode == mode
        assert spec.frequency is None

    @pytest.mark.parametrize(
        ("mode", "expected"),
        [
            (None, "Period"),
            ("Period", "Period"),
            ("Once", "Period"),
            ("EveryReboot", "Period"),
            ("DryRun", "DryRun"),
        ],
    )
    def test_frequency_makes_period(self, mode: str | None, expected: str) -> None:
        """SEED: with a Frequency the mode is Period whatever was asked; DryRun stays."""
        changes = {"Frequency": "rate(5m)"} | ({"RepeatMode": mode} if mode else {})
        spec = parse_run_command(req(changes))
        assert spec.repeat_mode == expected
        assert spec.frequency is not None

    @pytest.mark.parametrize(
        ("frequency", "kind"),
        [
            ("rate(5m)", "rate"),
            ("at(2022-06-06 13:15:30 GMT-7:00)", "at"),
            ("0 15 10 ? * * 2022 Asia/Shanghai", "cron"),
            ("0 0/30 10-11 * * ? 2022 GMT+8:00", "cron"),
            ("0 0/5 14 * 10 ? 2022/2 UTC", "cron"),
            ("0 */20 * * * ?", "cron"),
        ],
    )
    def test_every_frequency_form(self, frequency: str, kind: str) -> None:
        """rate, at and cron (seed examples) all pass with the default Timeout."""
        spec = parse_run_command(req({"Frequency": frequency}))
        assert spec.frequency is not None
        assert spec.frequency.kind == kind

    def test_frequency_fires(self) -> None:
        """The parsed Frequency computes fire times for the handler."""
        spec = parse_run_command(req({"Frequency": "at(2022-06-06 13:15:30 GMT-7:00)"}))
        assert spec.frequency is not None
        assert spec.frequency.next_after(datetime(2022, 1, 1, tzinfo=UTC)) == datetime(
            2022, 6, 6, 20, 15, 30, tzinfo=UTC
        )

    @pytest.mark.parametrize(
        "container",
        [
            {"ContainerId": HEX64},
            {"ContainerId": "docker://" + HEX64},
            {"ContainerId": "containerd://" + HEX64.upper()},
            {"ContainerId": "cri-o://" + HEX64},
            {"ContainerName": "web-1_a.b"},
            {"ContainerName": "w" * 255},
        ],
    )
    def test_containers(self, container: Params) -> None:
        """Every documented ContainerId form and a plausible ContainerName pass."""
        spec = parse_run_command(req(container | {"CommandContent": "echo '#!' in a container"}))
        assert (spec.container_id, spec.container_name) == (
            container.get("ContainerId"),
            container.get("ContainerName"),
        )

    def test_tags_and_resource_tags(self) -> None:
        """Tags come back in N order; ResourceTag alone selects instances."""
        spec = parse_run_command(
            req(
                {
                    "Tag.2.Key": "b",
                    "Tag.1.Key": "a",
                    "Tag.1.Value": "",
                    "ResourceTag.1.Key": "app",
                    "ResourceTag.1.Value": "web",
                    "ResourceTag.2.Key": "env",
                },
                drop=NO_INSTANCE,
            )
        )
        assert spec.tags == (("a", ""), ("b", ""))
        assert spec.resource_tags == (("app", "web"), ("env", ""))
        assert spec.instance_ids == ()

    def test_duplicate_instance_ids_run_once(self) -> None:
        """A repeated instance ID is dropped, first position kept."""
        spec = parse_run_command(req({"InstanceId.2": "i-2", "InstanceId.3": "i-1"}))
        assert spec.instance_ids == ("i-1", "i-2")

    @pytest.mark.parametrize(
        ("changes", "username"),
        [
            ({"Type": "RunPowerShellScript", "Username": "System"}, "System"),
            ({"Type": "RunBatScript", "Username": "admin", "WindowsPasswordName": "pw"}, "admin"),
            ({"Type": "RunShellScript", "Username": "app"}, "app"),
            ({"Type": "RunBatScript"}, None),
        ],
    )
    def test_users(self, changes: Params, username: str | None) -> None:
        """Default users and a Windows user with a password name need nothing more."""
        assert parse_run_command(req(changes)).username == username


def _lengths() -> list[tuple[dict[str, str], dict[str, str], str]]:
    """(at the limit, one over, code) for every length rule."""
    return [
        (req({"Name": "n" * 128}), req({"Name": "n" * 129}), "CmdName.ExceedLimit"),
        (
            req({"Description": "d" * 512}),
            req({"Description": "d" * 513}),
            "CmdDesc.ExceedLimit",
        ),
        (
            req({"WorkingDir": "w" * 200}),
            req({"WorkingDir": "w" * 201}),
            "InvalidParameter.WorkingDir",
        ),
        (req({"Username": "u" * 255}), req({"Username": "u" * 256}), "Username.ExceedLimit"),
        (
            req({"WindowsPasswordName": "p" * 255}),
            req({"WindowsPasswordName": "p" * 256}),
            "WindowsPasswordName.ExceedLimit",
        ),
        (
            req({"ClientToken": "t" * 64}),
            req({"ClientToken": "t" * 65}),
            "InvalidClientToken.Malformed",
        ),
        (req({"Launcher": "é" * 512}), req({"Launcher": "é" * 512 + "x"}), "InvalidParameter"),
        (req({"Tag.1.Key": "k" * 64}), req({"Tag.1.Key": "k" * 65}), "InvalidTagKey.Malformed"),
        (
            req({"Tag.1.Key": "k", "Tag.1.Value": "v" * 128}),
            req({"Tag.1.Key": "k", "Tag.1.Value": "v" * 129}),
            "InvalidTagValue.Malformed",
        ),
        (req(tags("Tag", 20)), req(tags("Tag", 21)), "NumberExceed.Tags"),
        (
            req(tags("ResourceTag", 10), drop=NO_INSTANCE),
            req(tags("ResourceTag", 11), drop=NO_INSTANCE),
            "NumberExceed.ResourceTags",
        ),
        (req(instances(50)), req(instances(51)), "InstanceIds.ExceedLimit"),
        # Base64 size: 24 KB = 24576 encoded = 18432 raw bytes; kept: 18 KB = 13824 raw.
        (
            req({"CommandContent": "x" * 18432}),
            req({"CommandContent": "x" * 18433}),
            "CmdContent.ExceedLimit",
        ),
        (
            req({"CommandContent": "x" * 13824, "KeepCommand": "true"}),
            req({"CommandContent": "x" * 13825, "KeepCommand": "true"}),
            "CmdContent.ExceedLimit",
        ),
        # Bytes, not characters: 6144 three-byte characters are 18432 bytes.
        (
            req({"CommandContent": "你" * 6144}),
            req({"CommandContent": "你" * 6144 + "x"}),
            "CmdContent.ExceedLimit",
        ),
        # The size counts the content after substitution.
        (
            with_params("{{a}}", json.dumps({"a": "x" * 18432})),
            with_params("{{a}}", json.dumps({"a": "x" * 18433})),
            "CmdContent.ExceedLimit",
        ),
        (
            with_params("{{" + "a" * 64 + "}}", "{}"),
            with_params("{{" + "a" * 65 + "}}", "{}"),
            "CmdParamName.ExceedLimit",
        ),
        (
            with_params(" ".join(f"{{{{p{i}}}}}" for i in range(20)), "{}"),
            with_params(" ".join(f"{{{{p{i}}}}}" for i in range(21)), "{}"),
            "CmdParamCount.ExceedLimit",
        ),
        (
            with_params(PARAMS_11, json.dumps({f"p{i}": "v" for i in range(10)})),
            with_params(PARAMS_11, json.dumps({f"p{i}": "v" for i in range(11)})),
            "ParameterCount.ExceedLimit",
        ),
        (
            with_params("{{" + "k" * 64 + "}}", json.dumps({"k" * 64: "v"})),
            with_params("{{" + "k" * 64 + "}}", json.dumps({"k" * 65: "v"})),
            "ParameterKey.ExceedLimit",
        ),
        (
            req({"ContainerName": "w" * 255}),
            req({"ContainerName": "w" * 256}),
            "InvalidContainerName.Malformed",
        ),
        (
            req({"Frequency": "rate(61s)"}),
            req({"Frequency": "rate(60s)"}),  # must exceed Timeout (60)
            "InvalidParam.Frequency",
        ),
    ]


@pytest.mark.parametrize(("at_limit", "over", "code"), _lengths())
def test_limits_exactly(at_limit: Params, over: Params, code: str) -> None:
    """Exactly at each limit passes; one over is refused with the rule's code."""
    parse_run_command(at_limit)
    assert refuse(over).code == code


def test_max_instances_is_a_setting() -> None:
    """A raised instance quota (SDK: up to 100) is honoured."""
    assert len(parse_run_command(req(instances(100)), max_instances=100).instance_ids) == 100
    assert refuse(req(instances(101)), max_instances=100).code == "InstanceIds.ExceedLimit"
