"""The API's hottest reads run on the driver's own connection, not through SQLAlchemy's.

A run's status is one indexed SELECT that SQLite answers in about 40 microseconds;
through a SQLAlchemy `Connection` (pool checkout, a `BEGIN` from the engine's event,
the statement's execution context, a `Result`, `COMMIT`) the same read took 240. Here a
prebuilt statement is compiled once per dialect to its SQL text, executed on a pooled
DBAPI connection, and each column's value goes through the result processor SQLAlchemy
itself would apply (the column type's, for the dialect: JSON decoding, the store's UTC
datetimes), so the rows are the ones `Connection.execute` hands back, value for value
(tests/framework/state/test_rowmap.py compares the records on both backends).

Only statements whose parameters need no conversion on the way in qualify (plain
integers and strings, no expanding `IN` lists): `Prepared` refuses others when it is made.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, Select
from sqlalchemy.engine.interfaces import Dialect

Processor = Callable[[Any], Any] | None


class _Compiled:
    """A statement's SQL for one dialect, its parameter order and its columns' processors."""

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        for name, bind in compiled.binds.items():
            if bind.expanding or bind.type.dialect_impl(dialect).bind_processor(dialect):
                raise ValueError(
                    f"parameter {name!r} needs SQLAlchemy's conversion: run this statement "
                    "through a Connection instead"
                )
        # Values the statement carries itself (an OFFSET 0 the dialect adds to a LIMIT).
        self._fixed = {
            name: bind.value for name, bind in compiled.binds.items() if not bind.required
        }
        self.sql = compiled.string
        self.positions: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if compiled.positional else None
        )
        self._types = [c.type.dialect_impl(dialect) for c in statement.selected_columns]
        self._dialect = dialect
        self.processors: list[Processor] | None = None

    def params(self, values: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        if self.positions is None:
            return {**self._fixed, **values}
        fixed = self._fixed
        return tuple(values[n] if n in values else fixed[n] for n in self.positions)

    def process(self, description: Sequence[Any], rows: list[Any]) -> list[tuple[Any, ...]]:
        if self.processors is None:
            # The driver's type code of each column, as SQLAlchemy passes it (stable per
            # statement, so looked up on the first execution only).
            self.processors = [
                t.result_processor(self._dialect, d[1])
                for t, d in zip(self._types, description, strict=True)
            ]
        active = [(i, p) for i, p in enumerate(self.processors) if p is not None]
        if not active:
            return [tuple(row) for row in rows]
        out = []
        for row in rows:
            values = list(row)
            for i, p in active:
                values[i] = p(values[i])
            out.append(tuple(values))
        return out


class Prepared:
    """A prebuilt SELECT, compiled on first use for each dialect it runs on."""

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def for_dialect(self, dialect: Dialect) -> _Compiled:
        key = f"{dialect.name}+{dialect.driver}"
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = _Compiled(self.statement, dialect)
        return found


class Reader:
    """Statements run on one DBAPI cursor (see `reads`)."""

    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self._cursor = cursor
        self._dialect = dialect

    def all(self, prepared: Prepared, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        compiled = prepared.for_dialect(self._dialect)
        cursor = self._cursor
        cursor.execute(compiled.sql, compiled.params(values))
        rows = cursor.fetchall()
        return compiled.process(cursor.description, rows) if rows else []


@contextlib.contextmanager
def reads(engine: Engine, *, snapshot: bool = False) -> Iterator[Reader]:
    """A `Reader` on a connection from `engine`'s pool, given back (rolled back) after.

    `snapshot`: the statements run in one transaction, as `engine.begin()` would run
    them (on SQLite one snapshot of the database; PostgreSQL's READ COMMITTED lets each
    statement see what committed before it). PostgreSQL's driver opens the transaction
    by itself; SQLite's, in the autocommit mode the engine sets, is told to.
    """
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        if snapshot and engine.dialect.name == "sqlite":
            cursor.execute("BEGIN")
        yield Reader(cursor, engine.dialect)
        cursor.close()
    finally:
        connection.close()  # back to the pool, whose reset rolls back what is open


__all__ = ["Prepared", "Reader", "reads"]
