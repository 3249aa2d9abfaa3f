"""A run's last line written with the move that ends it (`transition_run(log=...)`): in
the same transaction, stamped with the run's end, and not written when the move is
refused."""

from __future__ import annotations

import pytest

from edgebatch.framework.state import NewLogLine, StateError, StateStore
from tests.framework.state.conftest import FakeClock


def test_the_last_line_comes_with_the_end_and_not_without_it(
    store: StateStore, clock: FakeClock
) -> None:
    run = store.create_run("a")
    store.claim_run(run.id, holder="h")
    store.append_log(run.id, "working")
    clock.advance(5)
    ended = store.transition_run(
        run.id, "succeeded", log=NewLogLine(f"run {run.id} succeeded", level="info", logger="r")
    )
    lines = store.read_logs(run.id)
    assert [x.message for x in lines] == ["working", f"run {run.id} succeeded"]
    assert (lines[-1].ts, lines[-1].level, lines[-1].logger) == (ended.ended_at, "INFO", "r")
    with pytest.raises(StateError):
        store.transition_run(run.id, "running", log=NewLogLine("back to running?"))
    assert store.read_logs(run.id) == lines
