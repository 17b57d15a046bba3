"""Whatever the document, loading a plan ends in a `Plan` or a `PlanError` whose every
problem prints as one UTF-8 line: never another exception, and within bounded work.

Documents are built three ways: a valid plan with random values put at random keys
(scalars including NaN, infinity, huge integers, NUL, surrogates and odd unicode; lists
and mappings of them), YAML text with random lines spliced in, and random YAML-ish text.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import tracemalloc
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.plan import Plan, PlanError, parse_plan

if TYPE_CHECKING:
    from pathlib import Path

VALID: dict[str, Any] = {
    "name": "props",
    "description": "property test",
    "targets": {"tags": {"app": "web"}, "instances": ["i-abc1"], "zones": ["cn-hangzhou-h"]},
    "command": {
        "content": "echo {{x}} {{ACS::InstanceId}}",
        "parameters": {"x": "1"},
        "timeout": 60,
        "tags": {"team": "ops"},
    },
    "waves": [
        {"name": "canary", "size": 1, "max_errors": 0, "pause": "30s"},
        {"name": "rest", "size": "100%", "max_errors": "5%", "verify": {"content": "true"}},
    ],
    "wave_defaults": {"max_concurrency": "50%"},
    "limits": {"batch_size": 50, "qps": {"RunCommand": 10}, "delivery_timeout": 300},
    "on_breach": "stop_in_flight",
    "order": "spread",
}
SETTINGS = settings(
    max_examples=150,
    deadline=timedelta(seconds=5),  # generous: the machine is shared; a hang still fails
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,  # the same examples every run: a failure here is reproducible
)

odd_text = st.lists(
    st.one_of(
        st.characters(),  # surrogates included
        st.sampled_from(["\x00", "\ud800", "\udfff", "\u2028", "\ufeff", "{{", "}}", "%", "\n"]),
    ),
    max_size=30,
).map("".join)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**62, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 10**400, -(10**30)]),
    odd_text,
    st.sampled_from(["1h30m", "5 minutes", "10%", "101%", "-1%", "9" * 400 + "h", "2024-13-45"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*prefix, i))
    return found


PATHS = [p for p in _paths(VALID) if p]


def _put(document: dict[str, Any], path: tuple[Any, ...], value: object) -> None:
    where: Any = document
    for step in path[:-1]:
        where = where[step]
    where[path[-1]] = value


def _dump(document: object) -> str:
    # allow_unicode=False: PyYAML writes NUL, surrogates and the rest as escapes.
    return yaml.safe_dump(document, allow_unicode=False, sort_keys=False)


def _assert_outcome(text: str) -> None:
    try:
        plan = parse_plan(text)
    except PlanError as error:
        problems = error.problems
    else:
        assert isinstance(plan, Plan)
        return
    assert problems
    for problem in problems:
        line = str(problem)
        line.encode("utf-8")  # printable: no surrogate survives into a message
        assert "\n" not in line.removeprefix(problem.file)
        assert "\x00" not in line


@SETTINGS
@given(
    changes=st.lists(st.tuples(st.sampled_from(PATHS), values), min_size=1, max_size=4),
    extra=st.dictionaries(st.text(max_size=10), values, max_size=2),
)
def test_a_mutated_plan_loads_or_is_refused(
    changes: list[tuple[tuple[Any, ...], object]], extra: dict[str, object]
) -> None:
    document = copy.deepcopy(VALID)
    for path, value in changes:
        try:
            _put(document, path, value)
        except (KeyError, IndexError, TypeError):  # an earlier change replaced the parent
            continue
    document.update(extra)
    _assert_outcome(_dump(document))


@SETTINGS
@given(
    line=st.integers(min_value=0, max_value=40),
    inserted=st.lists(
        st.one_of(
            odd_text,
            st.sampled_from(
                ["&a [1, 2]", "*a", "<<: *a", "!!python/object:os.system", "? [x]", "- [", "'",
                 '"\\ud800"', '"\\0"', ".nan", "-.inf", "{" * 50, "  - &b {x: *b}", "\t"]
            ),
        ),
        min_size=1,
        max_size=4,
    ),
)  # fmt: skip
def test_spliced_yaml_text_loads_or_is_refused(line: int, inserted: list[str]) -> None:
    lines = _dump(VALID).splitlines()
    lines[line:line] = inserted
    _assert_outcome("\n".join(lines))


@SETTINGS
@given(text=st.text(alphabet=st.sampled_from(list("[]{}:-&*!<>|'\" \n\tax0.%#?,\\")), max_size=200))
def test_yaml_ish_noise_loads_or_is_refused(text: str) -> None:
    _assert_outcome(text)


def _bomb(levels: int) -> str:
    lines = [_dump(VALID), "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines)


def _merge_bomb(levels: int) -> str:
    lines = [_dump(VALID), "m0: &m0\n  k: v"]
    lines += [f"m{i}: &m{i}\n  <<: [*m{i - 1}, *m{i - 1}]" for i in range(1, levels)]
    return "\n".join(lines)


def test_expensive_yaml_is_refused_within_bounded_memory() -> None:
    """An alias bomb of 10**12 values, and merges doubling 60 times, cost little memory."""
    for text, expected in ((_bomb(12), "aliases expand"), (_merge_bomb(60), "unknown key")):
        tracemalloc.start()
        try:
            with pytest.raises(PlanError, match=expected):
                parse_plan(text)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 200 * 1024 * 1024


@settings(max_examples=3, deadline=None, derandomize=True)
@given(
    documents=st.lists(
        st.lists(st.tuples(st.sampled_from(PATHS), values), min_size=1, max_size=3),
        min_size=8,
        max_size=8,
    )
)
def test_validate_exits_0_or_2_on_generated_plans(
    tmp_path_factory: Any, documents: list[list[tuple[tuple[Any, ...], object]]]
) -> None:
    """The CLI on generated files, one subprocess for eight: exit 0 or 2, no traceback."""
    directory: Path = tmp_path_factory.mktemp("generated")
    names = []
    for n, changes in enumerate(documents):
        document = copy.deepcopy(VALID)
        for path, value in changes:
            try:
                _put(document, path, value)
            except (KeyError, IndexError, TypeError):
                continue
        (directory / f"plan-{n}.yaml").write_text(_dump(document))
        names.append(str(directory / f"plan-{n}.yaml"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    done = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "orchestrator", "validate", *names],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode in {0, 2}, done.stderr
    assert "Traceback" not in done.stderr
