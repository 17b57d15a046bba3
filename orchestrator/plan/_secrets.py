"""Plans may not hold credentials: find values that look like one, without repeating them.

Two signs (rule `no-credentials`): a string anywhere (content and script included) that
contains an Alibaba Cloud access key ID (`LTAI` + at least 12 letters or digits) or an STS
one (`STS.` + a long token); and a key named like a secret (`access_key_secret`,
`password`, `security_token`, `AccessKey`, …) that holds a literal value rather than a
parameter-store reference (`{{oos-secret:NAME}}`). The message names the field, never the
value: a plan's problems are printed in CI logs.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

RULE: Final = "no-credentials"
_ACCESS_KEY_ID: Final = re.compile(
    r"(?<![A-Za-z0-9])(?:LTAI[A-Za-z0-9]{12,}|STS\.[A-Za-z0-9]{16,})"
)
# Key names compared with case, `_`, `-`, `.` and spaces removed. `windows_password_name`
# ends in "name": a parameter-store name is not a secret.
_SECRET_KEY_ENDINGS: Final = (
    "secret",
    "password",
    "passwd",
    "securitytoken",
    "accesskey",
    "accesskeyid",
    "privatekey",
    "apikey",
)
_STORE_REFERENCE: Final = re.compile(r"\s*\{\{\s*oos(?:-secret)?:[^{}]+\}\}\s*", re.IGNORECASE)
_ADVICE: Final = (
    "plans may not hold credentials: keep secrets in the parameter store "
    "({{oos-secret:NAME}}) or in the environment of the machine that runs orchestrator"
)


def looks_like_credential(text: str) -> bool:
    """Whether `text` contains something shaped like an access key ID."""
    return _ACCESS_KEY_ID.search(text) is not None


def redact(text: str) -> str:
    """`text` with every access-key-shaped part replaced (field paths can hold keys)."""
    return _ACCESS_KEY_ID.sub("<redacted>", text)


def secret_key_name(key: str) -> bool:
    """Whether a mapping key is named like a secret (`db_password`, `AccessKeySecret`)."""
    folded = re.sub(r"[\s_.-]", "", key).lower()
    return folded.endswith(_SECRET_KEY_ENDINGS)


def _literal(value: object) -> bool:
    if value is None or value == "":
        return False
    return not (isinstance(value, str) and _STORE_REFERENCE.fullmatch(value))


def scan(value: object, path: str) -> Iterator[tuple[str, str]]:
    """Every credential-looking string and secret-named key under `value`: (path, message),
    each a finding of `RULE`."""
    if isinstance(value, str):
        if looks_like_credential(value):
            yield path, f"holds what looks like an access key ID; {_ADVICE}"
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            if looks_like_credential(key):
                yield child, f"key looks like an access key ID; {_ADVICE}"
            if secret_key_name(key) and _literal(item) and not isinstance(item, dict | list):
                yield child, f"is named like a secret and holds a value; {_ADVICE}"
                continue  # one problem per value is enough
            yield from scan(item, child)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from scan(item, f"{path}[{i}]")
