"""The state store: runs, iterations, attempts, log lines, leases and audit, in SQL.

SQLite by default, PostgreSQL by URL; migrated to the newest schema on open.
Import from here; `models` (the tables) is the store's own business.
"""

from edgebatch.framework.state.errors import LeaseError, StateError
from edgebatch.framework.state.records import (
    Attempt,
    AuditEntry,
    Iteration,
    JobRecord,
    Lease,
    LogLine,
    NewLogLine,
    Notification,
    ReapedRun,
    Run,
)
from edgebatch.framework.state.states import (
    ITERATION_MOVES,
    RUN_MOVES,
    AttemptState,
    IterationState,
    RunState,
    TriggerKind,
)
from edgebatch.framework.state.store import (
    DEFAULT_LEASE_TTL,
    DEFAULT_QUEUED_TTL,
    DEFAULT_UNLEASED_GRACE,
    StateStore,
    make_holder,
)

__all__ = [
    "DEFAULT_LEASE_TTL",
    "DEFAULT_QUEUED_TTL",
    "DEFAULT_UNLEASED_GRACE",
    "ITERATION_MOVES",
    "RUN_MOVES",
    "Attempt",
    "AttemptState",
    "AuditEntry",
    "Iteration",
    "IterationState",
    "JobRecord",
    "Lease",
    "LeaseError",
    "LogLine",
    "NewLogLine",
    "Notification",
    "ReapedRun",
    "Run",
    "RunState",
    "StateError",
    "StateStore",
    "TriggerKind",
    "make_holder",
]
