"""Script files a plan names (`command.script`, a wave's `verify.script`): read and hashed.

A script is read relative to the plan file, as UTF-8 text, and its bytes are fed to the
plan's hash in the order the loader reads them (the command's script first, then the
verify scripts, `wave_defaults` first and the waves in order), so a run refuses to
resume when any of them changed. A file that cannot be read or is not UTF-8 is a
problem of rule `script` at the key that names it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hashlib import _Hash
    from pathlib import Path

    from orchestrator.plan._reader import Section

RULE = "script"


def read_script(section: Section, base: Path, hasher: _Hash) -> str | None:
    """The text of the file `section`'s `script` key names, or None (absent or broken)."""
    script = section.string("script")
    if script is None:
        return None
    path = base / script
    try:
        raw = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        section.findings.add(section.at("script"), f"cannot read {script!r}: {reason}", RULE)
        return None
    hasher.update(raw)
    try:
        return raw.decode()
    except UnicodeDecodeError:
        section.findings.add(section.at("script"), f"{script!r} is not UTF-8 text", RULE)
        return None
