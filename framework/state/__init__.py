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
    LeaderLease,
    Lease,
    LogLine,
    NewLogLine,
    Notification,
    ReapedRun,
    Run,
    RunPartitions,
    RunWait,
    Worker,
)
from edgebatch.framework.state.states import (
    ITERATION_MOVES,
    RUN_MOVES,
    AttemptState,
    IterationState,
    RunState,
    TriggerKind,
    WorkerState,
)
from edgebatch.framework.state.store import (
    DEFAULT_LEASE_TTL,
    DEFAULT_MAX_REQUEUES,
    DEFAULT_QUEUE,
    DEFAULT_QUEUED_TTL,
    DEFAULT_UNLEASED_GRACE,
    DEFAULT_WORKER_TTL,
    StateStore,
    make_holder,
)

__all__ = [
    "DEFAULT_LEASE_TTL",
    "DEFAULT_MAX_REQUEUES",
    "DEFAULT_QUEUE",
    "DEFAULT_QUEUED_TTL",
    "DEFAULT_UNLEASED_GRACE",
    "DEFAULT_WORKER_TTL",
    "ITERATION_MOVES",
    "RUN_MOVES",
    "Attempt",
    "AttemptState",
    "AuditEntry",
    "Iteration",
    "IterationState",
    "JobRecord",
    "LeaderLease",
    "Lease",
    "LeaseError",
    "LogLine",
    "NewLogLine",
    "Notification",
    "ReapedRun",
    "Run",
    "RunPartitions",
    "RunState",
    "RunWait",
    "StateError",
    "StateStore",
    "TriggerKind",
    "Worker",
    "WorkerState",
    "make_holder",
]
