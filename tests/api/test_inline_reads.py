"""On SQLite a log page of up to INLINE_ROWS lines is read on the event loop and a larger
one in a worker thread (`routers.runs.answer`): both give the same answers, refusals
included; a run list page of any size (500 at most) is read on the loop."""

from __future__ import annotations

from edgebatch.api.routers import runs
from tests.api.conftest import Api


def test_pages_read_on_the_loop_and_in_a_thread_are_the_same(api: Api) -> None:
    admin = {"Authorization": f"Bearer {api.tokens['admin']}"}
    acme = {"Authorization": f"Bearer {api.tokens['acme_viewer']}"}
    ids = [api.store.create_run("a", params={"tenant": "acme"}).id for _ in range(3)]
    other = api.store.create_run("a", params={"tenant": "other"}).id
    for n in range(5):
        api.store.append_log(ids[0], f"line {n}")
    assert api.store.embedded
    small, large = 10, runs.INLINE_ROWS + 1  # on the loop, in a thread
    pages = [
        api.client.get(f"/api/v1/runs/{ids[0]}/logs?limit={limit}", headers=admin)
        for limit in (small, large)
    ]
    assert [p.status_code for p in pages] == [200, 200]
    assert [x["message"] for x in pages[0].json()["items"]] == [f"line {n}" for n in range(5)]
    assert pages[0].json() == pages[1].json()
    lists = [api.client.get(f"/api/v1/runs?limit={limit}", headers=acme) for limit in (small, 500)]
    assert [x["id"] for x in lists[0].json()["items"]] == ids[::-1]
    assert lists[0].json() == lists[1].json()
    for limit in (small, large):
        refused = api.client.get(f"/api/v1/runs/{other}/logs?limit={limit}", headers=acme)
        assert refused.status_code == 403 and "tenant 'other'" in refused.json()["detail"]
        missing = api.client.get(f"/api/v1/runs/999999/logs?limit={limit}", headers=acme)
        assert missing.status_code == 404
