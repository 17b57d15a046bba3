"""Reading one fleet-file mapping with its dotted path: typed getters that check each
value where it is read, so an error names its place (`fleet.generate[0].zones: ...`)."""

from __future__ import annotations

from typing import Any

from orchestrator.sim._agent import Span


class FleetError(ValueError):
    """A fleet file breaks a rule; the message starts with the field's path."""


class Node:
    """A mapping from the file plus its path, with typed, checked getters."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, dict):
            raise FleetError(f"{path}: must be a mapping")
        self.data: dict[str, Any] = data
        self.path = path

    def fail(self, key: str, rule: str) -> FleetError:
        return FleetError(f"{self.path}.{key}: {rule}")

    def only(self, *allowed: str) -> None:
        unknown = sorted(str(k) for k in self.data if k not in allowed)
        if unknown:
            raise self.fail(unknown[0], f"unknown key (allowed: {', '.join(allowed)})")

    def str_(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.fail(key, "must be a string")
        return str(value)

    def boolean(self, key: str, *, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false")
        return value

    def names(self, key: str) -> dict[str, str] | None:
        """A mapping of names to scalar values, or None when the key is absent."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(key, "must be a mapping of name to value")
        result = {}
        for name, item in value.items():
            if not isinstance(name, str) or not name:
                raise self.fail(key, f"name {name!r} must be a non-empty string")
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise self.fail(f"{key}.{name}", "must be a string")
            result[name] = str(item)
        return result

    def choice(self, key: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.str_(key, default)
        if value not in allowed:
            raise self.fail(key, f"must be one of {', '.join(allowed)}")
        return value

    def number(
        self, key: str, default: float, *, low: float = 0.0, high: float | None = None
    ) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, "must be a number")
        if value < low or (high is not None and value > high):
            bound = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
            raise self.fail(key, f"must be {bound}")
        return float(value)

    def integer(self, key: str, default: int, *, low: int = 0) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, "must be an integer")
        if value < low:
            raise self.fail(key, f"must be >= {low}")
        return value

    def rate(self, key: str) -> float:
        return self.number(key, 0.0, high=1.0)

    def child(self, key: str) -> Node:
        return Node(self.data.get(key) or {}, f"{self.path}.{key}")

    def items(self, key: str) -> list[Node]:
        value = self.data.get(key) or []
        if not isinstance(value, list):
            raise self.fail(key, "must be a list")
        return [Node(item, f"{self.path}.{key}[{i}]") for i, item in enumerate(value)]

    def strings(self, key: str, *, required: bool = False) -> list[str]:
        value = self.data.get(key)
        if value is None and not required:
            return []
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "must be a non-empty list" + (" of strings" if value else ""))
        return value

    def tags(self, key: str) -> tuple[tuple[str, str], ...]:
        value = self.data.get(key) or {}
        if not isinstance(value, dict):
            raise self.fail(key, "must be a mapping of tag key to value")
        pairs = []
        for k, v in value.items():
            if not isinstance(k, str) or not k or isinstance(v, bool | list | dict) or v is None:
                raise self.fail(key, f"tag {k!r} must have a non-empty string key and a value")
            pairs.append((k, str(v)))
        return tuple(pairs)

    def span(self, key: str, default: Span) -> Span:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, dict):
            node = Node(value, f"{self.path}.{key}")
            node.only("min", "max")
            low, high = node.number("min", 0.0), node.number("max", 0.0)
            if high < low:
                raise node.fail("max", "must be >= min")
            return Span(low, high)
        return Span(fixed := self.number(key, 0.0), fixed)
