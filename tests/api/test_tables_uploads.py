"""Tables read from real Delta logs (schema, partitions, history, preview, per tenant),
and uploads: streamed into the landing zone, checksummed, size-limited, never outside
their folder."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest

from tests.api.conftest import Api, open_api
from tests.api.fleet_tables import now, write_health

pytestmark = pytest.mark.integration


def test_a_table_shows_schema_partitions_history_and_a_preview(api: Api):
    t = now()
    write_health(
        api.root,
        [
            {"tenant": "acme", "device": "d1", "ts": t},
            {"tenant": "acme", "device": "d2", "ts": t - timedelta(days=1)},
            {"tenant": "other", "device": "x1", "ts": t},
        ],
    )
    listed = {
        x["name"]: x for x in api.client.get("/api/v1/tables", headers=api.as_("viewer")).json()
    }
    assert listed["bronze/device_health"]["rows"] == 3
    assert listed["bronze/edge_batches"]["exists"] is False
    mine = {
        x["name"]: x
        for x in api.client.get("/api/v1/tables", headers=api.as_("acme_viewer")).json()
    }
    assert mine["bronze/device_health"]["rows"] == 2 and "quarantine/rejected" not in mine
    detail = api.client.get(
        "/api/v1/tables/bronze/device_health", headers=api.as_("acme_viewer")
    ).json()
    assert {"tenant", "device", "ts", "cpu_percent"} <= {c["name"] for c in detail["columns"]}
    assert {p["values"]["tenant"] for p in detail["partitions"]} == {"acme"}
    preview = api.client.get(
        "/api/v1/tables/bronze/device_health/preview", headers=api.as_("acme_viewer")
    ).json()
    assert sorted(r["device"] for r in preview) == ["d1", "d2"]
    history = api.client.get(
        "/api/v1/tables/bronze/device_health/history", headers=api.as_("viewer")
    )
    assert history.json()[0]["operation"] in ("WRITE", "CREATE TABLE")
    for name in ("../../etc/passwd", "bronze/../../x", "/etc/passwd", "nope"):
        answer = api.client.get(f"/api/v1/tables/{name}", headers=api.as_("viewer"))
        assert answer.status_code in (404, 422), (name, answer.status_code)


def test_an_upload_lands_whole_with_its_checksum(api: Api):
    data = b"account,amount\n" + b"a-1,10\n" * 50_000
    digest = hashlib.sha256(data).hexdigest()
    done = api.client.post(
        "/api/v1/uploads/device_daily",
        params={"name": "accounts-2026-12.csv", "tenant": "acme", "sha256": digest},
        content=data,
        headers=api.as_("acme_operator"),
    )
    assert done.status_code == 201, done.text
    body = done.json()
    assert body["sha256"] == digest and body["size"] == len(data)
    path = Path(api.root.resolve(body["name"]))
    assert path.read_bytes() == data
    assert body["name"] == "landing/uploads/device_daily/acme/accounts-2026-12.csv"
    listed = api.client.get("/api/v1/uploads/device_daily", headers=api.as_("acme_viewer")).json()
    assert [x["name"] for x in listed] == [body["name"]]
    assert (
        api.client.get("/api/v1/uploads/device_daily", headers=api.as_("other_viewer")).json() == []
    )
    assert api.store.list_audit(action="upload")[0].detail["sha256"] == digest
    again = api.client.post(
        "/api/v1/uploads/device_daily",
        params={"name": "accounts-2026-12.csv", "tenant": "acme"},
        content=b"other",
        headers=api.as_("operator"),
    )
    assert again.status_code == 400 and "exists already" in again.json()["detail"]


def test_bad_uploads_are_refused_and_leave_nothing(tmp_path):
    gen = open_api(tmp_path, f"sqlite:///{tmp_path / 's.db'}", upload_max_bytes=1000)
    api = next(gen)
    try:
        h = api.as_("operator")
        wrong = api.client.post(
            "/api/v1/uploads/device_daily",
            params={"name": "a.csv", "tenant": "acme", "sha256": "0" * 64},
            content=b"abc",
            headers=h,
        )
        assert wrong.status_code == 400 and "checksum differs" in wrong.json()["detail"]
        big = api.client.post(
            "/api/v1/uploads/device_daily",
            params={"name": "b.csv", "tenant": "acme"},
            content=b"x" * 5000,
            headers=h,
        )
        assert big.status_code == 413
        for name in ("../x.csv", ".hidden", "a/b.csv", "..", "x" * 200):
            answer = api.client.post(
                "/api/v1/uploads/device_daily",
                params={"name": name, "tenant": "acme"},
                content=b"x",
                headers=h,
            )
            assert answer.status_code == 422, name
        unknown = api.client.post(
            "/api/v1/uploads/no_such_job",
            params={"name": "a.csv", "tenant": "acme"},
            content=b"x",
            headers=h,
        )
        assert unknown.status_code == 404
        folder = Path(api.root.resolve("landing"))
        assert not folder.exists() or [p for p in folder.rglob("*") if p.is_file()] == []
    finally:
        gen.close()
