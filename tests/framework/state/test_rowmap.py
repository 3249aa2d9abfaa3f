"""The API's hot reads (Core statements, rows mapped by position) hand back exactly the
records the ORM reads do, on both backends, for runs in every state, with and without
iterations, attempts, errors, tenants and queues; and every filter of the run listing
keeps the runs a plain Python filter over all of them keeps."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from edgebatch.framework.state import StateStore, records
from edgebatch.framework.state import models as m
from tests.framework.state.conftest import FakeClock


def _varied_runs(store: StateStore, clock: FakeClock) -> list[int]:
    """Twelve runs: queued, running, succeeded, failed (an attempt retried, errors, row
    counts missing), cancelled; two tenants, a fleet-wide run, two queues; log lines of the
    run and of its iterations."""
    ids = []
    for i in range(12):
        clock.advance(60)
        params: dict[str, Any] = {"tenant": ("acme", "zed")[i % 2], "n": [i, 2.5, None]}
        run = store.create_run(
            ("a", "b", "c")[i % 3],
            partitions=[f"2026-11-{d:02d}" for d in range(1, 1 + i % 4)],
            params=params if i % 5 else {},
            queue=("default", "q2")[i % 2],
            priority=i % 3 - 1,
            run_key=f"key-{i}" if i % 4 == 0 else None,
        )
        ids.append(run.id)
        if i % 6 == 5:
            continue  # stays queued
        store.create_iterations(run.id, list(run.partitions))
        store.transition_run(run.id, "running")
        store.append_log(run.id, f"run {i} starts")
        while (it := store.claim_iteration(run.id)) is not None:
            clock.advance(1)
            store.append_log(run.id, f"{it.partition_key}", iteration_id=it.id, level="warning")
            if (i + it.id) % 3 == 0:
                store.transition_iteration(it.id, "queued", error="first try failed")
                store.claim_iteration(run.id)
                store.transition_iteration(it.id, "failed", error="second\ntry failed")
            else:
                store.transition_iteration(
                    it.id, "succeeded", rows_in=10 * i, rows_out=None if i % 4 == 0 else 7 * i
                )
        if i % 6 == 4:
            continue  # stays running
        store.transition_run(
            run.id, ("succeeded", "failed", "cancelled")[i % 3], error="bad" if i % 3 else None
        )
    return ids


def _orm_lines(store: StateStore, run_id: int) -> list[records.LogLine]:
    """A run's log lines read through the ORM (what `read_logs` read before)."""
    with store.connection() as conn, Session(conn) as s:
        query = select(m.LogLine).where(m.LogLine.run_id == run_id).order_by(m.LogLine.id)
        return [records.LogLine.from_row(x) for x in s.scalars(query)]


def test_core_reads_equal_the_orm_reads(store: StateStore, clock: FakeClock) -> None:
    ids = _varied_runs(store, clock)
    for run_id in ids:
        run = store.get_run(run_id)
        assert store.find_run(run_id) == run
        its = store.list_iterations(run_id)
        attempts = {it.id: store.list_attempts(it.id) for it in its}
        assert store.run_detail(run_id) == (run, its, {k: v for k, v in attempts.items() if v})
        lines = _orm_lines(store, run_id)
        assert store.read_logs(run_id) == lines
        assert len(lines) >= (1 if run.started_at else 0)
        assert store.log_page(run_id, after_id=lines[0].id if lines else 0, limit=1) == lines[1:2]
        for it in its:
            mine = [x for x in lines if x.iteration_id == it.id]
            assert store.log_page(run_id, iteration_id=it.id) == mine
        found, page = store.run_log_page(run_id, limit=2)
        assert found == run and page == lines[:2]
    assert store.find_run(10**9) is None
    assert store.run_detail(10**9) is None
    assert store.run_log_page(10**9) == (None, [])


FILTERS: list[dict[str, Any]] = [
    {},
    {"job": "a"},
    {"states": ["failed", "running"]},
    {"tenants": ["acme"]},
    {"tenants": []},
    {"queue": "q2"},
    {"before_id": 6},
    {"created_from": 4, "created_to": 9},
    {"job": "b", "states": ["succeeded", "failed"], "tenants": ["zed", "acme"], "queue": "q2"},
]


def test_every_listing_filter_keeps_what_python_keeps(store: StateStore, clock: FakeClock) -> None:
    ids = _varied_runs(store, clock)
    every = [store.get_run(x) for x in reversed(ids)]
    for filters in FILTERS:
        _check_listing(store, ids, every, filters)


def _check_listing(
    store: StateStore, ids: list[int], every: list[records.Run], filters: dict[str, Any]
) -> None:
    asked = dict(filters)
    for key in ("created_from", "created_to"):  # run numbers to their creation times
        if key in asked:
            asked[key] = every[-1 - asked[key]].created_at
    if "before_id" in asked:
        asked["before_id"] = ids[asked["before_id"]]

    def keep(run: records.Run) -> bool:
        tenant = run.params.get("tenant")
        return (
            ("job" not in asked or run.job == asked["job"])
            and ("states" not in asked or str(run.state) in asked["states"])
            and ("tenants" not in asked or tenant in asked["tenants"])
            and ("queue" not in asked or run.queue == asked["queue"])
            and ("before_id" not in asked or run.id < asked["before_id"])
            and ("created_from" not in asked or run.created_at >= asked["created_from"])
            and ("created_to" not in asked or run.created_at < asked["created_to"])
        )

    expected = [x for x in every if keep(x)]
    assert store.find_runs(limit=100, **asked) == expected
    assert store.find_runs(limit=2, **asked) == expected[:2]
    runs, counts = store.run_page(limit=100, **asked)
    assert runs == expected
    for run in runs:
        its = store.list_iterations(run.id)
        assert counts[run.id] == {
            s: sum(1 for it in its if str(it.state) == s) for s in {str(it.state) for it in its}
        }
    if "tenants" in asked and not asked["tenants"]:
        assert expected == []
    else:
        assert expected, f"{filters} keeps nothing, which proves little"


def test_created_range_takes_naive_times_as_utc(store: StateStore, clock: FakeClock) -> None:
    ids = _varied_runs(store, clock)
    first = store.get_run(ids[0]).created_at
    naive = (first + timedelta(seconds=1)).replace(tzinfo=None)
    assert [x.id for x in store.find_runs(created_to=naive)] == [ids[0]]
