"""The run journal: every run's durable record, so a run can be resumed and watched.

A run that dies half-way (Ctrl-C, SIGKILL, a lost connection, a reboot) must be resumed
without running anything twice, and people must see how a run stands from another shell
while it goes on. Both need the same thing: a record that is on disk before the action
it describes, readable by another process at any moment. So each run keeps one SQLite
file (`journal_path`: `<state dir>/runs/<run id>/journal.sqlite`) in WAL mode: the
writer (`create_journal`, `reopen_journal`) records every ClientToken durably before its
RunCommand leaves and every wave's results once its gate passed, buffers the other events
and flushes them in one transaction at a time, off the event loop; readers
(`read_journal`, `list_runs`) open it read-only and never wait for it, nor make it wait.
`JournalRecord.history()` is what `orchestrator resume` hands the engine.

A journal that is lost or damaged is rebuilt from the API (`match_batches`: the run's
tagged invocations, matched to the plan's batches) by `orchestrator recover`.

One process at a time per run: `RunLock` (an exclusive `flock` on the run's lock file)
keeps a second `run`/`resume`/`stop` of a run away while one holds it; `PlanLock` (the
same on `<state dir>/plans/<key>.lock`) keeps a second live run of one plan away.

Import from here; the `_modules` are private.
"""

from orchestrator.journal._header import CREDENTIAL_WORDS, RunHeader, WaveRow
from orchestrator.journal._lock import LOCK_FILE, LockHolder, RunLock, RunLocked, lock_holder
from orchestrator.journal._origin import ORIGIN_KINDS, PLAN_FILE, RunOrigin
from orchestrator.journal._plan_lock import (
    PLANS_DIR,
    PlanLock,
    PlanLocked,
    plan_holder,
    plan_lock_path,
)
from orchestrator.journal._reader import (
    UNREADABLE,
    BatchRow,
    GateRow,
    JournalRecord,
    RunListing,
    WaveState,
    list_runs,
    read_journal,
)
from orchestrator.journal._reconcile import find_lost_sends
from orchestrator.journal._recover import (
    FoundBatch,
    Recovery,
    match_batches,
    run_invocations,
    write_recovered,
)
from orchestrator.journal._rows import RESUMABLE_HALTS
from orchestrator.journal._schema import (
    JOURNAL_FILE,
    MIGRATIONS,
    SCHEMA_VERSION,
    journal_path,
    migrate,
)
from orchestrator.journal._touched import TOUCHED, touched_instances
from orchestrator.journal._writer import (
    FLUSH_EVERY,
    JournalWriter,
    create_journal,
    reopen_journal,
)

__all__ = [
    "CREDENTIAL_WORDS",
    "FLUSH_EVERY",
    "JOURNAL_FILE",
    "LOCK_FILE",
    "MIGRATIONS",
    "ORIGIN_KINDS",
    "PLANS_DIR",
    "PLAN_FILE",
    "RESUMABLE_HALTS",
    "SCHEMA_VERSION",
    "TOUCHED",
    "UNREADABLE",
    "BatchRow",
    "FoundBatch",
    "GateRow",
    "JournalRecord",
    "JournalWriter",
    "LockHolder",
    "PlanLock",
    "PlanLocked",
    "Recovery",
    "RunHeader",
    "RunListing",
    "RunLock",
    "RunLocked",
    "RunOrigin",
    "WaveRow",
    "WaveState",
    "create_journal",
    "find_lost_sends",
    "journal_path",
    "list_runs",
    "lock_holder",
    "match_batches",
    "migrate",
    "plan_holder",
    "plan_lock_path",
    "read_journal",
    "reopen_journal",
    "run_invocations",
    "touched_instances",
    "write_recovered",
]
