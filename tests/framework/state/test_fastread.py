"""The driver-level reads (framework/state/fastread.py): statements whose parameters need
SQLAlchemy's conversion are refused when prepared, naming the parameter; a snapshot read
on SQLite sees one state of the database, a plain one each statement's latest. (That the
rows equal SQLAlchemy's is test_rowmap.py's business, on both backends.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import bindparam, select
from sqlalchemy.dialects import sqlite

from edgebatch.framework.state import StateStore
from edgebatch.framework.state import rowmap as rm
from edgebatch.framework.state.fastread import Prepared, reads


def test_a_statement_needing_parameter_conversion_is_refused_by_name() -> None:
    listing = select(rm.RUNS.c.id).where(rm.RUNS.c.id.in_(bindparam("ids", expanding=True)))
    with pytest.raises(ValueError, match="parameter 'ids' needs SQLAlchemy's conversion"):
        Prepared(listing).for_dialect(sqlite.dialect())
    stamped = select(rm.RUNS.c.id).where(rm.RUNS.c.created_at < bindparam("before"))
    with pytest.raises(ValueError, match="parameter 'before'"):
        Prepared(stamped).for_dialect(sqlite.dialect())


STATES = Prepared(select(rm.RUNS.c.state).where(rm.RUNS.c.id == bindparam("run_id")))


@pytest.mark.parametrize("snapshot", [True, False])
def test_a_snapshot_read_sees_one_state_of_a_sqlite_store(tmp_path: Path, snapshot: bool) -> None:
    with StateStore(f"sqlite:///{tmp_path / 'state.db'}") as store:
        run = store.create_run("a")
        with reads(store._engine, snapshot=snapshot) as reader:
            first = reader.all(STATES, {"run_id": run.id})
            store.transition_run(run.id, "running")  # another connection commits meanwhile
            second = reader.all(STATES, {"run_id": run.id})
        assert first == [("queued",)]
        assert second == ([("queued",)] if snapshot else [("running",)])
        with reads(store._engine) as reader:
            assert reader.all(STATES, {"run_id": run.id}) == [("running",)]
            assert reader.all(STATES, {"run_id": 10**9}) == []
