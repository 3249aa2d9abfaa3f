"""The run routes write their answers from plain fields (`schemas.to_json`), not through
their response models: for runs in every state, with and without iterations, attempts,
errors, row counts, tenants and odd parameters, the bytes equal what the model gives
after validating the same fields, so the model the OpenAPI description shows is the
answer's shape, byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from edgebatch.api.schemas import (
    LogPage,
    RunDetail,
    RunPage,
    log_line_fields,
    run_detail_fields,
    run_fields,
    to_json,
)
from edgebatch.framework.state import StateStore
from tests.framework.state.conftest import FakeClock
from tests.framework.state.test_rowmap import _varied_runs


def test_plain_fields_write_the_bytes_the_models_write(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 11, 20, 8, 0, 0, 123456, tzinfo=UTC))
    with StateStore(f"sqlite:///{tmp_path / 'state.db'}", clock=clock) as store:
        ids = _varied_runs(store, clock)
        odd = store.create_run(
            "a", params={"tenant": "zé", "x": float("inf"), "line\u2028": ["é", None, 1.5]}
        )
        ids.append(odd.id)
        store.append_log(odd.id, 'ünïcode \u2028 and "quotes" \\ \x01', level="error")
        for run_id in ids:
            found = store.run_detail(run_id)
            assert found is not None
            fields = run_detail_fields(*found)
            assert to_json(fields) == RunDetail.model_validate(fields).model_dump_json().encode()
            run, lines = store.run_log_page(run_id)
            assert run is not None
            page = {"items": [log_line_fields(x) for x in lines], "next_after": 0, "finished": True}
            assert to_json(page) == LogPage.model_validate(page).model_dump_json().encode()
        runs, counts = store.run_page(limit=100)
        listing = {"items": [run_fields(r, counts[r.id]) for r in runs], "next_cursor": "7"}
        assert len(listing["items"]) == len(ids)
        assert to_json(listing) == RunPage.model_validate(listing).model_dump_json().encode()
        empty: dict[str, object] = {"items": [], "next_cursor": None}
        assert to_json(empty) == RunPage.model_validate(empty).model_dump_json().encode()
