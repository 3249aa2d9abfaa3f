"""`StateStore`: the one door to runs, iterations, attempts, logs, leases, jobs and the audit.

Every method is one short transaction and returns plain dataclasses, so the
runner, the launcher, the scheduler, the CLI and the API can share a database
from separate processes. Moves between states follow `states.py` and are
checked under a row lock (PostgreSQL `SELECT ... FOR UPDATE`, SQLite's
`BEGIN IMMEDIATE`), so two processes never both make a move; claims skip rows
another process holds (`FOR UPDATE SKIP LOCKED`) instead of waiting for them.

    store = StateStore("sqlite:///var/state.db")
    run = store.create_run("bronze_load", partitions=["2024-01", "2024-02"], trigger="cli")
    store.create_iterations(run.id, run.partitions)
    run = store.claim_run(run.id, holder=make_holder(), ttl=30)
    while (it := store.claim_iteration(run.id)) is not None:
        store.append_log(run.id, f"loading {it.partition_key}", iteration_id=it.id)
        store.transition_iteration(it.id, "succeeded", rows_out=1200)
    store.transition_run(run.id, "succeeded")

Each aggregate lives in a module of its own: `runs` (runs, iterations, attempts),
`logs`, `leases` (and the reaper), `catalog` (jobs), `audit`, `workers`, `notifications` (the
outbox of run notifications), over `base`
(engine, clock, migrations, transactions).
"""

from __future__ import annotations

from edgebatch.framework.state.access import AccessControl
from edgebatch.framework.state.annotations import Annotations
from edgebatch.framework.state.audit import Audit
from edgebatch.framework.state.base import (
    DEFAULT_LEASE_TTL,
    DEFAULT_QUEUE,
    DEFAULT_QUEUED_TTL,
    DEFAULT_UNLEASED_GRACE,
    DEFAULT_WORKER_TTL,
    REAPER_PRINCIPAL,
    make_holder,
)
from edgebatch.framework.state.catalog import JobCatalog
from edgebatch.framework.state.leases import Leases
from edgebatch.framework.state.logs import Logs
from edgebatch.framework.state.notifications import Notifications
from edgebatch.framework.state.queries import RunQueries
from edgebatch.framework.state.runs import RunsAndIterations
from edgebatch.framework.state.scheduling import Scheduling
from edgebatch.framework.state.workers import DEFAULT_MAX_REQUEUES, WorkerRegistry

__all__ = [
    "DEFAULT_LEASE_TTL",
    "DEFAULT_MAX_REQUEUES",
    "DEFAULT_QUEUE",
    "DEFAULT_QUEUED_TTL",
    "DEFAULT_UNLEASED_GRACE",
    "DEFAULT_WORKER_TTL",
    "REAPER_PRINCIPAL",
    "StateStore",
    "make_holder",
]


class StateStore(
    RunsAndIterations,
    Logs,
    Leases,
    JobCatalog,
    Audit,
    WorkerRegistry,
    AccessControl,
    Annotations,
    RunQueries,
    Scheduling,
    Notifications,
):
    """Runs, iterations, attempts, log lines, leases, jobs, audit, workers, scheduling,
    notifications and the API's users, tokens and annotations, in SQL.

    `url` is a SQLAlchemy URL: `sqlite:///path/state.db` (the default of the
    project config) or `postgresql+psycopg://user:pw@host:port/db`. Opening
    upgrades the database to the newest migration. `clock` is how the store
    reads the time; tests pass a fake one to expire leases without sleeping.
    """
