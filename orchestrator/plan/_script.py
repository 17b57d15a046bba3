"""Script files a plan names (`command.script`, a wave's `verify.script`): read and hashed.

A script is named relative to the plan file and read as UTF-8 text; its bytes are fed to
the plan's hash in the order the loader reads them (the command's script first, then the
verify scripts, `wave_defaults` first and the waves in order), so a run refuses to
resume when any of them changed.

What a script holds is sent to every instance, where anyone who may read invocations
reads it: a path must not reach what the operator did not mean to send
(`../../proc/self/environ` is the process's environment, credentials included). So a
script is refused (rule `script`) unless its real path, symlinks followed, is inside the
plan file's directory or a directory the operator names (`--script-dir`), and it is a
regular file: never a device (`/dev/zero` is endless), a FIFO (a read would block) or a
`/proc` entry. It is opened without following a last symlink and without blocking, and
the opened file must be the one checked (device and inode), so a swap between the check
and the open does not win. Its size is checked against the content limit before it is
read (CmdContent.ExceedLimit), and no more than that is read, should it grow meanwhile.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from orchestrator import api
from orchestrator.plan._findings import shown

if TYPE_CHECKING:
    from hashlib import _Hash

    from orchestrator.plan._reader import Section

RULE: Final = "script"
SIZE_CODE: Final = "CmdContent.ExceedLimit"
# The largest content RunCommand takes is CONTENT_MAX_BYTES after Base64: 3 bytes of
# text are 4 of Base64, so no script longer than this can be sent at all.
SCRIPT_MAX_BYTES: Final = api.CONTENT_MAX_BYTES // 4 * 3
# Files there are not files: /proc/self/environ reads as the environment (and says it is
# 0 bytes), /dev/zero never ends. Refused even inside a --script-dir.
_SPECIAL: Final = (Path("/proc"), Path("/sys"), Path("/dev"))
_OPEN_FLAGS: Final = (
    os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
)


@dataclass(frozen=True, slots=True)
class ScriptPlaces:
    """Where a plan's scripts are named from (`base`, the plan's directory) and where they
    may be (`base` and the operator's `--script-dir`s)."""

    base: Path
    allowed: tuple[Path, ...] = ()

    @classmethod
    def of(cls, base: Path, script_dirs: tuple[Path, ...] = ()) -> ScriptPlaces:
        """The places for a plan in `base`, allowing `script_dirs` too."""
        return cls(base, tuple(dict.fromkeys(_real(p) for p in (base, *script_dirs))))

    def contains(self, path: Path) -> bool:
        """Whether the real path `path` is inside one of the allowed directories."""
        return any(path.is_relative_to(root) for root in self.allowed)


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


class _Refused(Exception):
    """The script may not be read; `code` is the rule or API code it breaks."""

    def __init__(self, message: str, code: str = RULE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def read_script(section: Section, places: ScriptPlaces, hasher: _Hash) -> str | None:
    """The text of the file `section`'s `script` key names, or None (absent or refused)."""
    script = section.string("script")
    if script is None:
        return None
    try:
        raw = _read(script, places)
    except _Refused as refused:
        section.findings.add(section.at("script"), refused.message, refused.code)
        return None
    hasher.update(raw)
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        section.findings.add(section.at("script"), f"{shown(script)} is not UTF-8 text", RULE)
        return None
    if "\x00" in text:
        section.findings.add(
            section.at("script"), f"{shown(script)} holds NUL bytes: it is not text", RULE
        )
        return None
    return text


def _read(script: str, places: ScriptPlaces) -> bytes:
    named = places.base / script
    if "\x00" in script:
        raise _Refused("a path may not hold a NUL character")
    try:
        real = Path(os.path.realpath(named, strict=True))
        checked = real.stat()
    except OSError as exc:
        raise _Refused(f"cannot read {shown(script)}: {_reason(exc)}") from exc
    if any(real.is_relative_to(root) for root in _SPECIAL):
        raise _Refused(
            f"{shown(script)} is {real}, a file of the system ({real.parts[1]}), not a script"
        )
    if not places.contains(real):
        dirs = ", ".join(str(p) for p in places.allowed)
        raise _Refused(
            f"{shown(script)} is {real}, outside the plan's directory ({dirs}): a script "
            "must be there or in a directory named with --script-dir"
        )
    _check_file(script, checked)
    try:
        fd = os.open(real, _OPEN_FLAGS)
    except OSError as exc:
        raise _Refused(f"cannot read {shown(script)}: {_reason(exc)}") from exc
    with os.fdopen(fd, "rb") as file:
        opened = os.fstat(file.fileno())
        if (opened.st_dev, opened.st_ino) != (checked.st_dev, checked.st_ino):
            raise _Refused(f"{shown(script)} was replaced while it was read")
        _check_file(script, opened)
        raw = file.read(SCRIPT_MAX_BYTES + 1)
    if len(raw) > SCRIPT_MAX_BYTES:
        raise _Refused(_too_large(script, None), SIZE_CODE)
    return raw


def _check_file(script: str, status: os.stat_result) -> None:
    if not stat.S_ISREG(status.st_mode):
        raise _Refused(f"{shown(script)} is {_kind(status.st_mode)}, not a regular file")
    if status.st_size > SCRIPT_MAX_BYTES:
        raise _Refused(_too_large(script, status.st_size), SIZE_CODE)


def _too_large(script: str, size: int | None) -> str:
    """`size` None: more than the limit (the file grew past what its size said)."""
    how = f"{size} bytes" if size is not None else f"more than {SCRIPT_MAX_BYTES} bytes"
    return (
        f"{shown(script)} is {how}; a RunCommand's content is at most "
        f"{api.CONTENT_MAX_BYTES} bytes after Base64, so a script at most {SCRIPT_MAX_BYTES}"
    )


def _kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
