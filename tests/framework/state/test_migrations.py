"""The schema comes from the Alembic migrations alone, and matches the models exactly."""

from __future__ import annotations

import multiprocessing

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from edgebatch.framework.state import StateError, StateStore
from edgebatch.framework.state.models import Base

TABLES = {
    "jobs",
    "runs",
    "iterations",
    "attempts",
    "log_lines",
    "leases",
    "audit",
    "scheduler_leases",
    "scheduler_cursors",
    "run_waits",
    "workers",
}
# The API's (framework/state/api_models.py).
TABLES |= {"api_users", "api_tokens", "api_sessions", "alarm_acks", "worker_bounds"}
TABLES |= {"notification_events", "notifications"}
HEAD = "0006_access"


def test_empty_database_is_migrated_to_head_on_open(empty_url, tmp_path, monkeypatch):
    # The scripts are found inside the package, whatever the working directory.
    monkeypatch.chdir(tmp_path)
    bare = StateStore(empty_url, upgrade=False)
    try:
        assert bare.revision() is None
        with bare.connection() as conn:
            assert not TABLES & set(inspect(conn).get_table_names())
    finally:
        bare.close()
    with StateStore(empty_url) as store:
        assert store.revision() == HEAD
        with store.connection() as conn:
            assert TABLES | {"alembic_version"} == set(inspect(conn).get_table_names())
            # What the migrations built is what the models describe: nothing to autogenerate.
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert store.upgrade() == HEAD


def test_a_database_from_a_newer_edgebatch_is_refused_with_advice(empty_url):
    with StateStore(empty_url) as store, store.connection() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        conn.commit()
    with pytest.raises(StateError, match="upgrade edgebatch"):
        StateStore(empty_url)


def _open(url: str, barrier, results) -> None:
    barrier.wait()
    with StateStore(url) as store:
        results.put(store.revision())


def test_processes_opening_an_empty_database_at_once_migrate_it_once(empty_url):
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_open, args=(empty_url, barrier, results)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert sorted(results.get(timeout=5) for _ in procs) == [HEAD] * 3


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("not a url", "is not a database URL"),
        ("mysql://u@h/db", "names backend 'mysql'"),
    ],
)
def test_bad_urls_are_explained(url, problem):
    with pytest.raises(StateError, match=problem):
        StateStore(url)


def test_plain_postgresql_urls_mean_psycopg():
    from edgebatch.framework.state.engine import normalize_url

    assert normalize_url("postgresql://u:pw@h/db").drivername == "postgresql+psycopg"


def test_a_database_of_the_first_schema_keeps_its_runs_when_upgraded(empty_url):
    from alembic import command
    from alembic.config import Config

    from edgebatch.framework.state.base import _migrations_dir

    bare = StateStore(empty_url, upgrade=False)
    config = Config()
    config.set_main_option("script_location", _migrations_dir())
    with bare.connection() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(
            text(
                "INSERT INTO runs (job, state, trigger, triggered_by, partitions, params, "
                "created_at) VALUES ('old', 'succeeded', 'cli', 'ann', '[]', '{}', "
                "'2026-01-01 00:00:00')"
            )
        )
        conn.commit()
    bare.close()
    with StateStore(empty_url) as store:
        (old,) = store.list_runs()
        assert (old.job, old.priority, old.run_key) == ("old", 0, None)
