"""Workers and queues from the state store's heartbeats, and the executor bounds an admin
asks of a worker (stored for the worker, audited)."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api

pytestmark = pytest.mark.integration


def test_workers_queues_and_executor_bounds(any_api: Api):
    api, store = any_api, any_api.store
    store.register_worker("h:1:a", queues=["default", "fast"], health={"cpu_percent": 5.0})
    store.register_worker(
        "h:2:b", queues=["backfill"], health={"spark_ui_url": "http://127.0.0.1:1"}
    )
    store.stop_worker("h:2:b")
    store.create_run("device_daily", queue="fast")
    store.create_run("device_daily", queue="fast")
    workers = {
        w["worker_id"]: w
        for w in api.client.get("/api/v1/workers", headers=api.as_("viewer")).json()
    }
    assert workers["h:1:a"]["alive"] and not workers["h:2:b"]["alive"]
    assert workers["h:2:b"]["spark_ui_url"] == "http://127.0.0.1:1"
    queues = {
        q["queue"]: q for q in api.client.get("/api/v1/queues", headers=api.as_("viewer")).json()
    }
    assert queues["fast"]["queued"] == 2 and queues["fast"]["workers"] == ["h:1:a"]
    assert queues["default"]["queued"] == 0
    spark = api.client.get("/api/v1/workers/h:2:b/spark", headers=api.as_("viewer")).json()
    assert spark["available"] is False and spark["problem"]
    bad = api.client.put(
        "/api/v1/workers/h:1:a/executors",
        json={"min_executors": 5, "max_executors": 2},
        headers=api.as_("admin"),
    )
    assert bad.status_code == 422 and "min_executors" in bad.json()["detail"]
    done = api.client.put(
        "/api/v1/workers/h:1:a/executors",
        json={"min_executors": 1, "max_executors": 4},
        headers=api.as_("admin"),
    )
    assert done.status_code == 200
    assert [(b.min_executors, b.max_executors) for b in store.executor_bounds("h:1:a")] == [(1, 4)]
    shown = api.client.get("/api/v1/workers/h:1:a", headers=api.as_("viewer")).json()
    assert shown["desired_executors"]["max_executors"] == 4
    assert store.list_audit(action="worker.executors")[0].detail == {"min": 1, "max": 4}
    missing = api.client.put(
        "/api/v1/workers/nope/executors",
        json={"min_executors": 1, "max_executors": 2},
        headers=api.as_("admin"),
    )
    assert missing.status_code == 404
