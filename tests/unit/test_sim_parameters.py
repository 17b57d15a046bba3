"""The `{{ }}` custom-parameter grammar: names, built-ins, store references, rendering."""

from __future__ import annotations

import pytest

from orchestrator import api
from orchestrator.sim._parameters import custom_names, parse_values, render
from orchestrator.sim._protocol import SimApiError


def _code(excinfo: pytest.ExceptionInfo[SimApiError]) -> str:
    return excinfo.value.code


class TestCustomNames:
    def test_order_of_first_use_and_first_spelling(self) -> None:
        """Names are listed once, case-insensitively, as first written."""
        assert custom_names("{{ b }} {{A}} {{a}} {{B}} {{c_-1}}") == ("b", "A", "c_-1")

    def test_whitespace_and_newlines_around_the_name_are_ignored(self) -> None:
        """SEED: spaces and line breaks inside the braces do not count."""
        assert custom_names("echo {{\n  name \n}} {{\tother}}") == ("name", "other")

    def test_builtins_in_any_case_are_not_custom(self) -> None:
        """The six ACS:: built-ins are allowed and not listed."""
        content = " ".join(f"{{{{{name}}}}}" for name in api.BUILTIN_PARAMETERS)
        assert custom_names(content + " {{acs::instanceid}} {{x}}") == ("x",)

    def test_parameter_store_references_are_not_custom(self) -> None:
        """`{{oos:NAME}}` and `{{oos-secret:NAME}}` belong to the parameter store."""
        assert custom_names("{{oos:pw}} {{oos-secret:key}} {{ OOS:Other }}") == ()

    def test_content_without_references(self) -> None:
        """No braces, no names; single braces are shell syntax."""
        assert custom_names("echo ${HOME} {x} { {y} }") == ()

    @pytest.mark.parametrize(
        ("content", "code"),
        [
            ("echo {{}}", "CmdParam.EmptyKey"),
            ("echo {{  \n }}", "CmdParam.EmptyKey"),
            ("echo {{na me}}", "CmdParam.InvalidParamName"),
            ("echo {{name.x}}", "CmdParam.InvalidParamName"),
            ("echo {{名字}}", "CmdParam.InvalidParamName"),
            ("echo {{ACS::ZoneId}}", "CmdParam.InvalidParamName"),
            ("echo {{acs::}}", "CmdParam.InvalidParamName"),
            ("echo {{oos:}}", "CmdParam.InvalidParamName"),
            ("echo {{" + "a" * 65 + "}}", "CmdParamName.ExceedLimit"),
            ("echo {{" + "é" * 33 + "}}", "CmdParamName.ExceedLimit"),  # 66 bytes
            ("echo {{" + "é" * 32 + "}}", "CmdParam.InvalidParamName"),  # 64 bytes
            (" ".join(f"{{{{p{i}}}}}" for i in range(21)), "CmdParamCount.ExceedLimit"),
        ],
    )
    def test_refusals(self, content: str, code: str) -> None:
        """Each broken rule answers with its own code."""
        with pytest.raises(SimApiError) as excinfo:
            custom_names(content)
        assert _code(excinfo) == code

    def test_limits_exactly(self) -> None:
        """A 64-byte name and 20 distinct names (plus repeats and built-ins) pass."""
        assert custom_names("{{" + "a" * 64 + "}}") == ("a" * 64,)
        content = " ".join(f"{{{{p{i}}}}} {{{{P{i}}}}}" for i in range(20))
        assert len(custom_names(content + " {{ACS::RegionId}}")) == 20


class TestParseValues:
    def test_json_object(self) -> None:
        """A JSON object of strings comes back as a dict, keys as sent."""
        assert parse_values('{"Name": "x", "b": ""}', enabled=True, names=("name", "B")) == {
            "Name": "x",
            "b": "",
        }

    def test_legacy_python_repr_is_tolerated(self) -> None:
        """The legacy SDK's `str(dict)` is read like fastjson reads single quotes."""
        assert parse_values("{'name': 'x'}", enabled=True, names=("name",)) == {"name": "x"}

    def test_absent_or_empty_object_without_enable_parameter(self) -> None:
        """No Parameters, or `{}`, is fine with EnableParameter=false."""
        assert parse_values(None, enabled=False, names=()) == {}
        assert parse_values(" {} ", enabled=False, names=()) == {}

    @pytest.mark.parametrize(
        ("text", "enabled", "code"),
        [
            ('{"a": "b"}', False, "Parameter.Disabled"),
            ("not json", False, "Parameter.Disabled"),
            ('{"a": 1}', True, "ParameterType.NotSupported"),
            ('{"a": true}', True, "ParameterType.NotSupported"),
            ('{"a": null}', True, "ParameterType.NotSupported"),
            ('{"a": {"b": "c"}}', True, "ParameterType.NotSupported"),
            ('["a"]', True, "ParameterType.NotSupported"),
            ("not json", True, "ParameterType.NotSupported"),
            ("{'a': 1}", True, "ParameterType.NotSupported"),
            ("{**x}", True, "ParameterType.NotSupported"),
            ('{"": "x"}', True, "CmdParam.EmptyKey"),
            ('{"' + "a" * 65 + '": "x"}', True, "ParameterKey.ExceedLimit"),
            ('{"a": "1", "a": "2"}', True, "ParameterKey.Duplicate"),
            ('{"a": "1", "A": "2"}', True, "ParameterKey.Duplicate"),
            ("{'a': '1', 'a': '2'}", True, "ParameterKey.Duplicate"),
            ('{"zzz": "1"}', True, "Parameter.NotMatched"),
        ],
    )
    def test_refusals(self, text: str, enabled: bool, code: str) -> None:
        """Each broken rule answers with its own code."""
        with pytest.raises(SimApiError) as excinfo:
            parse_values(text, enabled=enabled, names=("a",))
        assert _code(excinfo) == code

    def test_count_limit(self) -> None:
        """Ten pairs pass, eleven are refused."""
        names = tuple(f"p{i}" for i in range(11))
        ten = "{" + ",".join(f'"p{i}": "v"' for i in range(10)) + "}"
        eleven = "{" + ",".join(f'"p{i}": "v"' for i in range(11)) + "}"
        assert len(parse_values(ten, enabled=True, names=names)) == 10
        with pytest.raises(SimApiError) as excinfo:
            parse_values(eleven, enabled=True, names=names)
        assert _code(excinfo) == "ParameterCount.ExceedLimit"


class TestRender:
    def test_custom_names_case_insensitive_and_missing_empty(self) -> None:
        """Values replace names in any case; a name without a value becomes ''."""
        out = render("a={{ NAME }} b={{\nname}} c={{other}}.", {"name": "x"}, {})
        assert out == "a=x b=x c=."

    def test_builtins_substituted_or_left(self) -> None:
        """Built-ins given are substituted (any case); others stay for the agent."""
        builtins = {"ACS::InstanceId": "i-1", "ACS::RegionId": "cn-hangzhou"}
        out = render("{{ACS::InstanceId}} {{acs::regionid}} {{ACS::InvokeId}}", {}, builtins)
        assert out == "i-1 cn-hangzhou {{ACS::InvokeId}}"

    def test_store_references_and_invalid_names_stay(self) -> None:
        """Parameter-store references and text that is no name are not touched."""
        content = "{{oos:pw}} {{ not a name }} {{x}}"
        assert render(content, {"x": "1"}, {}) == "{{oos:pw}} {{ not a name }} 1"

    def test_single_pass(self) -> None:
        """A value that looks like a reference is not expanded again."""
        assert render("{{a}}{{b}}", {"a": "{{b}}", "b": "B"}, {}) == "{{b}}B"
