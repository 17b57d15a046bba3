"""The tags a run puts on every command it sends, and what it finds by them.

RunCommand's `Tag.N` marks each invocation with its run, so tracking lists a run's
invocations in one paged call and recovery finds what an interrupted run sent; and with
its plan's name and digest, so the live-run guard finds another run of the same plan.
The plan checker reserves the same three keys (`plan._rules.RESERVED_TAGS`).
"""

from __future__ import annotations

from typing import Final

RUN_TAG_KEY: Final = "orchestrator-run"
PLAN_TAG_KEY: Final = "orchestrator-plan"
PLAN_DIGEST_TAG_KEY: Final = "orchestrator-plan-sha256"
