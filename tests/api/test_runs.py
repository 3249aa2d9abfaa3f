"""Runs over HTTP on SQLite and PostgreSQL: filters and cursor pages, one run with its
iterations, logs in pages and live over Server-Sent Events (resuming from Last-Event-ID),
asking for, cancelling and retrying runs, and signing in with a session and CSRF."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import httpx
import pytest

from edgebatch.api import security
from tests.api.conftest import Api, Served

pytestmark = pytest.mark.integration


def _finished_run(api: Api, job: str, tenant: str | None, failed: list[str], ok: list[str]):
    store = api.store
    params = {"tenant": tenant} if tenant else {}
    run = store.create_run(job, partitions=[*ok, *failed], params=params)
    its = store.create_iterations(run.id, [*ok, *failed])
    store.claim_run(run.id, holder="test")
    for it in its:
        store.claim_iteration(run.id)
        store.transition_iteration(
            it.id, "failed" if it.partition_key in failed else "succeeded", rows_out=10
        )
    return store.transition_run(run.id, "failed" if failed else "succeeded")


def test_list_filters_and_pages_with_a_cursor(any_api: Api):
    api = any_api
    for i in range(7):
        api.store.create_run("device_daily", params={"tenant": "acme" if i % 2 else "other"})
    api.store.create_run("bronze_load")
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.client.get("/api/v1/runs", params=params, headers=api.as_("viewer")).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == 8
    acme = api.client.get("/api/v1/runs", headers=api.as_("acme_viewer")).json()["items"]
    assert {r["tenant"] for r in acme} == {"acme"} and len(acme) == 3
    only = api.client.get(
        "/api/v1/runs", params={"job": "bronze_load"}, headers=api.as_("viewer")
    ).json()
    assert [r["job"] for r in only["items"]] == ["bronze_load"]
    later = api.client.get(
        "/api/v1/runs",
        params={"from": (api.store.now() + timedelta(hours=1)).isoformat()},
        headers=api.as_("viewer"),
    ).json()
    assert later["items"] == []
    bad = api.client.get("/api/v1/runs", params={"state": "nope"}, headers=api.as_("viewer"))
    assert bad.status_code == 422 and "state" in bad.json()["detail"]


def test_one_run_has_iterations_attempts_rows_and_timings(any_api: Api):
    run = _finished_run(any_api, "device_daily", "acme", ["2026-11-02"], ["2026-11-01"])
    body = any_api.client.get(f"/api/v1/runs/{run.id}", headers=any_api.as_("acme_viewer")).json()
    assert body["state"] == "failed" and body["iterations"] == {"succeeded": 1, "failed": 1}
    assert body["rows_out"] == 20
    its = {it["partition"]: it for it in body["iteration_list"]}
    assert its["2026-11-02"]["attempt_list"][0]["state"] == "failed"
    assert its["2026-11-01"]["duration_s"] is not None
    missing = any_api.client.get("/api/v1/runs/999999", headers=any_api.as_("viewer"))
    assert missing.status_code == 404 and "999999" in missing.json()["detail"]


def test_submit_cancel_and_retry_only_what_failed(any_api: Api):
    api = any_api
    made = api.client.post(
        "/api/v1/runs",
        json={
            "job": "device_daily",
            "iterations": ["2026-11-01", "2026-11-02"],
            "queue": "fast",
            "priority": 7,
            "run_key": "k1",
        },
        headers=api.as_("acme_operator"),
    )
    assert made.status_code == 201, made.text
    run = made.json()
    assert (run["queue"], run["priority"], run["tenant"]) == ("fast", 7, "acme")
    assert run["partitions"] == ["2026-11-01", "2026-11-02"] and run["created"]
    again = api.client.post(
        "/api/v1/runs", json={"job": "device_daily", "run_key": "k1"}, headers=api.as_("operator")
    )
    assert again.json()["id"] == run["id"] and not again.json()["created"]
    cancelled = api.client.post(f"/api/v1/runs/{run['id']}/cancel", headers=api.as_("operator"))
    assert cancelled.json()["state"] == "cancelled"
    assert api.store.list_audit(action="cancel")[0].principal == "token:operator#4"
    failed = _finished_run(api, "device_daily", "acme", ["2026-11-05"], ["2026-11-04"])
    retried = api.client.post(f"/api/v1/runs/{failed.id}/retry", headers=api.as_("operator"))
    assert retried.status_code == 201
    assert retried.json()["partitions"] == ["2026-11-05"]
    assert retried.json()["retry_of"] == failed.id
    nothing = _finished_run(api, "device_daily", "acme", [], ["2026-11-06"])
    refused = api.client.post(f"/api/v1/runs/{nothing.id}/retry", headers=api.as_("operator"))
    assert refused.status_code == 409 and "nothing left to retry" in refused.json()["detail"]
    for body, word in (
        ({"job": "nope"}, "no job named"),
        ({"job": "device_daily", "partitions": ["2026-13-45"]}, "2026-13-45"),
        ({"job": "device_daily", "queue": "Bad Queue"}, "queue"),
        ({"job": "device_daily", "surprise": 1}, "surprise"),
    ):
        answer = api.client.post("/api/v1/runs", json=body, headers=api.as_("operator"))
        assert 400 <= answer.status_code < 500 and word in answer.json()["detail"], answer.text


def test_logs_page_and_the_stream_follows_and_resumes(api: Api):
    store = api.store
    run = store.create_run("device_daily", params={"tenant": "acme"})
    store.claim_run(run.id, holder="test", ttl=600)
    first = [store.append_log(run.id, f"line {i}") for i in range(5)]
    page = api.client.get(
        f"/api/v1/runs/{run.id}/logs",
        params={"after": first[1], "limit": 2},
        headers=api.as_("viewer"),
    ).json()
    assert [x["message"] for x in page["items"]] == ["line 2", "line 3"]
    assert page["next_after"] == first[3] and not page["finished"]

    def write_more() -> None:
        for i in range(5, 8):
            time.sleep(0.2)
            store.append_log(run.id, f"line {i}")
        store.transition_run(run.id, "succeeded")

    with Served(api.app) as served, httpx.Client(base_url=served.url, timeout=20) as http:
        headers = {**api.as_("acme_viewer"), "Last-Event-ID": str(first[2])}
        writer = threading.Thread(target=write_more)
        events = []
        with http.stream("GET", f"/api/v1/runs/{run.id}/logs/stream", headers=headers) as s:
            assert s.headers["content-type"].startswith("text/event-stream")
            writer.start()
            event: dict[str, str] = {}
            for raw in s.iter_lines():
                if not raw:
                    if event:
                        events.append(event)
                    event = {}
                    continue
                key, _, value = raw.partition(": ")
                event[key] = value
        writer.join()
    logs = [e for e in events if e.get("event") == "log"]
    assert [json.loads(e["data"])["message"] for e in logs] == [f"line {i}" for i in range(3, 8)]
    assert [int(e["id"]) for e in logs] == sorted(int(e["id"]) for e in logs)
    assert events[-1]["event"] == "end" and json.loads(events[-1]["data"])["state"] == "succeeded"


def test_a_session_signs_in_needs_csrf_for_changes_and_signs_out(api: Api):
    api.store.add_user(
        "alice",
        password_hash=security.hash_password("secret-pw"),
        role="operator",
        tenants=["acme"],
    )
    run = api.store.create_run("device_daily", params={"tenant": "acme"})
    bad = api.client.post("/api/v1/auth/login", json={"username": "alice", "password": "no"})
    assert bad.status_code == 401
    login = api.client.post(
        "/api/v1/auth/login", json={"username": "alice", "password": "secret-pw"}
    )
    assert login.status_code == 200
    csrf = login.json()["csrf_token"]
    cookie = login.cookies.get("edgebatch_session")
    assert cookie and "HttpOnly" in login.headers["set-cookie"]
    assert api.client.get("/api/v1/auth/me").json()["name"] == "user:alice"
    refused = api.client.post(f"/api/v1/runs/{run.id}/cancel")
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
    done = api.client.post(f"/api/v1/runs/{run.id}/cancel", headers={"X-CSRF-Token": csrf})
    assert done.json()["state"] == "cancelled"
    forged = security.sign("another-secret-000000", cookie.rsplit(".", 1)[0])
    api.client.cookies.set("edgebatch_session", forged)
    assert api.client.get("/api/v1/auth/me").status_code == 401
    api.client.cookies.set("edgebatch_session", cookie)
    assert api.client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    api.client.cookies.set("edgebatch_session", cookie)
    assert api.client.get("/api/v1/auth/me").status_code == 401


def test_sign_ins_are_rate_limited(api: Api):
    codes = [
        api.client.post("/api/v1/auth/login", json={"username": "bob", "password": "x"}).status_code
        for _ in range(8)
    ]
    assert codes[0] == 401 and codes[-1] == 429
