"""Reading the simulator's wire parameters and shaping common answer fields.

Both paging styles (MaxResults + an opaque NextToken, and PageNumber + PageSize), repeat
lists (`Name.N`), tag filters, booleans, output encoding (Base64 or PlainText) and the
two time formats the API uses. Shared by the Describe handlers.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator import api
from orchestrator.sim._protocol import SimApiError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import datetime


def api_time(moment: datetime | None) -> str:
    """Cloud Assistant times: UTC `yyyy-MM-ddTHH:mm:ssZ`; "" when unset."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else ""


def instance_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%MZ")  # DescribeInstances: no seconds (DOC21, SDK71)


# --- paging ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    offset: int
    size: int
    by_token: bool

    def fields(self, total: int) -> dict[str, Any]:
        end = self.offset + self.size
        token = encode_token(end) if self.by_token and end < total else ""
        return {
            "TotalCount": total,
            "PageNumber": self.offset // self.size + 1,
            "PageSize": self.size,
            "NextToken": token,
        }

    def slice(self, items: Iterable[Any]) -> list[Any]:
        return list(itertools.islice(items, self.offset, self.offset + self.size))


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"sim:{offset}".encode()).decode().rstrip("=")


def decode_token(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise SimApiError("InvalidParameter.NextToken") from None
    prefix, _, offset = text.partition(":")
    if prefix != "sim" or not offset.isdigit():
        raise SimApiError("InvalidParameter.NextToken")
    return int(offset)


def integer_param(params: Mapping[str, str], name: str, code: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise SimApiError(code) from None


def page_of(params: Mapping[str, str], *, maximum: int, clamp: bool = False) -> Page:
    """MaxResults + NextToken when either is given, else PageNumber + PageSize.
    `clamp` (DescribeInstances): MaxResults unset or < 10 → 10, > maximum → maximum;
    otherwise MaxResults outside 1..maximum is an error."""
    max_results = integer_param(params, "MaxResults", "InvalidParameter.MaxResults")
    token = params.get("NextToken", "")
    if max_results is not None or token:
        if clamp:
            size = min(max(max_results or 10, 10), maximum)
        elif max_results is None:
            size = 10
        elif not 1 <= max_results <= maximum:
            raise SimApiError("InvalidParameter.MaxResults")
        else:
            size = max_results
        return Page(decode_token(token) if token else 0, size, by_token=True)
    number = integer_param(params, "PageNumber", "InvalidParam.PageNumber") or 1
    size = integer_param(params, "PageSize", "InvalidParam.PageSize") or 10
    if number < 1:
        raise SimApiError("InvalidParam.PageNumber")
    if not 1 <= size <= maximum:
        raise SimApiError("InvalidParam.PageSize")
    return Page((number - 1) * size, size, by_token=False)


# --- parameter helpers -----------------------------------------------------------------


def repeated(params: Mapping[str, str], name: str) -> list[str]:
    """`Name.1`, `Name.2`, … in index order (gaps allowed), empty values dropped."""
    found = []
    prefix = name + "."
    for key, value in params.items():
        suffix = key[len(prefix) :] if key.startswith(prefix) else ""
        if suffix.isdigit() and value:
            found.append((int(suffix), value))
    return [value for _, value in sorted(found)]


def tag_filters(params: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """`Tag.N.Key` / `Tag.N.Value` pairs; a key without a value matches any value."""
    pattern = re.compile(r"^Tag\.(\d+)\.(Key|Value)$")
    by_index: dict[int, dict[str, str]] = {}
    for key, value in params.items():
        match = pattern.match(key)
        if match:
            by_index.setdefault(int(match[1]), {})[match[2]] = value
    if len(by_index) > api.TAGS_MAX:
        raise SimApiError("InvalidTagCount")
    filters = []
    for _, pair in sorted(by_index.items()):
        if not pair.get("Key"):
            raise SimApiError("MissingParameter.TagKey")
        filters.append((pair["Key"], pair.get("Value")))
    return filters


def tags_match(tags: Iterable[tuple[str, str]], filters: list[tuple[str, str | None]]) -> bool:
    own = list(tags)
    return all(
        any(k == key and (value is None or v == value) for k, v in own) for key, value in filters
    )


def flag(params: Mapping[str, str], name: str) -> bool:
    return params.get(name, "").lower() == "true"


def plain_text(params: Mapping[str, str]) -> bool:
    """ContentEncoding of the Describe calls: Base64 by default, PlainText on request."""
    encoding = params.get("ContentEncoding", "Base64").lower()
    if encoding not in {"base64", "plaintext"}:
        raise SimApiError("InvalidParameter.ContentEncoding")
    return encoding == "plaintext"


def encode_text(text: str, *, plain: bool) -> str:
    return text if plain else base64.b64encode(text.encode()).decode()


def tag_list(tags: Iterable[tuple[str, str]]) -> dict[str, Any]:
    return {"Tag": [{"TagKey": k, "TagValue": v} for k, v in tags]}


# --- DescribeInstances -----------------------------------------------------------------
