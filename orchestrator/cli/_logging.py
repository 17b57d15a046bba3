"""How structured log lines look and where they go: one structlog setup for the process.

Every module logs through `structlog.get_logger(__name__)` (lazy proxies, so configuring
later still applies); the CLI calls `configure_logging` once, from its flags, before
anything logs. Loggers are never cached, so tests can reconfigure for each case.

Secrets must never reach a log line, whoever logs them: a processor just before the
renderer replaces the value of any key that names a secret (`secret`, `token`,
`password`, `signature`, `credential`) and every occurrence of a value registered with
`register_secret` (the CLI registers the access key secret and the security token it
resolved), also inside exception texts and nested values.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Final, Literal, TextIO

import structlog

if TYPE_CHECKING:
    from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED: Final = "[redacted]"
SECRET_KEY_PARTS: Final = ("secret", "token", "password", "signature", "credential")

_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Never let `value` appear in a log line from now on (empty values mean nothing)."""
    if value:
        _secrets.add(value)


def configure_logging(
    *,
    fmt: Literal["json", "console"],
    verbosity: int,
    stream: TextIO | None = None,
) -> None:
    """Configure structlog for this process: JSON lines (`json`) or readable lines
    (`console`), warnings and worse when `verbosity` < 0, info at 0, debug above.

    Lines go to `stream`; without one, to whatever `sys.stderr` is when each line is
    written, so a live display that redirects stderr keeps log lines above itself.
    """
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # Exceptions become text before redaction, so their messages are scrubbed too.
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_level(verbosity)),
        logger_factory=_PrintTo(stream),
        cache_logger_on_first_use=False,
    )


def _level(verbosity: int) -> int:
    if verbosity < 0:
        return logging.WARNING
    if verbosity == 0:
        return logging.INFO
    return logging.DEBUG


class _PrintTo:
    """A logger factory that prints to one stream, or to the current `sys.stderr`."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream

    def __call__(self, *args: object) -> structlog.PrintLogger:
        del args  # the logger's name: lines carry their own event names
        return structlog.PrintLogger(self._stream if self._stream is not None else sys.stderr)


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """The structlog processor that keeps secrets out of log lines."""
    return {key: _redact(key, value) for key, value in event_dict.items()}


def _redact(key: str, value: object) -> object:
    lowered = key.lower()
    if any(part in lowered for part in SECRET_KEY_PARTS):
        return REDACTED
    return _scrub(value)


def _scrub(value: object) -> object:
    match value:
        case None | bool() | int() | float():
            return value
        case str():
            return _scrub_text(value)
        case dict():
            return {k: _redact(k, v) if isinstance(k, str) else _scrub(v) for k, v in value.items()}
        case list() | tuple() | set() | frozenset():
            return [_scrub(item) for item in value]
        case _:
            # Any other object would be rendered through its text; scrub that text.
            return _scrub_text(str(value))


def _scrub_text(text: str) -> str:
    # Longest first, so a secret that contains another is replaced whole.
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text
