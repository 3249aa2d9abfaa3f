"""What the scheduler reads of Delta tables, with delta-rs (`deltalake`): no Spark, no JVM.

A table's version (a new-version trigger), the partitions a span of commits wrote
(the partitions an upstream run touched), when it was last written (freshness) and
its row count from the log's file statistics (a row floor).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from edgebatch.warehouse.uri import WarehouseRoot


@dataclasses.dataclass(frozen=True)
class Tables:
    """The Delta tables of one warehouse root, opened by registry name."""

    root: WarehouseRoot

    def location(self, name: str) -> str:
        from edgebatch.warehouse import catalog  # noqa: F401  (declares the bronze tables)
        from edgebatch.warehouse.tables import REGISTRY

        if name in REGISTRY:
            return REGISTRY.get(name).location(self.root)
        return self.root.qualified(name)

    def _open(self, name: str, version: int | None = None) -> Any:
        from deltalake import DeltaTable

        location = self.location(name)
        if not DeltaTable.is_deltatable(location):
            return None
        return DeltaTable(location) if version is None else DeltaTable(location, version=version)

    def version(self, name: str) -> int | None:
        """The table's current version; None while it does not exist."""
        table = self._open(name)
        return None if table is None else int(table.version())

    def last_write(self, name: str) -> dt.datetime | None:
        """When the newest commit was made (the commit's own timestamp)."""
        table = self._open(name)
        if table is None:
            return None
        history = table.history(limit=1)
        if not history:
            return None
        return dt.datetime.fromtimestamp(history[0]["timestamp"] / 1000, dt.UTC)

    def rows(self, name: str) -> int | None:
        """Rows, from the statistics each data file carries in the log (None if one lacks them)."""
        table = self._open(name)
        if table is None:
            return 0
        records = table.get_add_actions(flatten=True).column("num_records").to_pylist()
        return None if any(r is None for r in records) else int(sum(records))

    def partitions_written(
        self,
        name: str,
        column: str,
        since: dt.datetime,
        until: dt.datetime,
        key_of: Callable[[str], str | None] | None = None,
    ) -> set[str] | None:
        """Partition keys of the files commits in [since, until] added to table `name`.

        With the table partitioned by `column`, the values of `column`. Otherwise, with
        `key_of` (a partitioning's `key_of`), the keys it maps the values of another
        partition column to: the first column all of whose values map, so a table
        partitioned by (tenant, date) gives a monthly job the months of the dates
        written (a tenant name maps to no month). None when the table does not exist or
        no partition column maps (the caller falls back to an incremental run).
        Compaction in the span adds files too: a partition rewritten but unchanged is
        reported, which costs a needless rerun, never a missed one.
        """
        table = self._open(name)
        if table is None:
            return None
        columns = list(table.metadata().partition_columns or [])
        if column not in columns and key_of is None:
            return None
        added = self._added(name, table, columns, since, until)
        if column in columns:
            return {v for row in added if (v := row[column]) is not None}
        assert key_of is not None
        for other in columns:
            values = {v for row in added if (v := row[other]) is not None}
            keys = {key_of(v) for v in values}
            if None in keys:
                continue
            if values or self._is_temporal(table, other):
                return {k for k in keys if k is not None}
        return None

    def _added(
        self, name: str, table: Any, columns: list[str], since: dt.datetime, until: dt.datetime
    ) -> list[dict[str, str | None]]:
        """The partition values of each file added by the commits in [since, until]."""
        lo, hi = since.timestamp() * 1000, until.timestamp() * 1000
        versions = sorted(int(h["version"]) for h in table.history() if lo <= h["timestamp"] <= hi)
        added: list[dict[str, str | None]] = []
        for version in versions:
            before = self._paths(name, version - 1, columns) if version > 0 else {}
            after = self._paths(name, version, columns)
            added.extend(values for path, values in after.items() if path not in before)
        return added

    def _paths(
        self, name: str, version: int, columns: list[str]
    ) -> dict[str, dict[str, str | None]]:
        table = self._open(name, version)
        actions = table.get_add_actions(flatten=True)
        paths = actions.column("path").to_pylist()
        values = {c: actions.column(f"partition.{c}").to_pylist() for c in columns}
        return {
            p: {c: (None if values[c][i] is None else str(values[c][i])) for c in columns}
            for i, p in enumerate(paths)
        }

    @staticmethod
    def _is_temporal(table: Any, column: str) -> bool:
        """Whether `column` holds dates or times: a column a calendar partitioning maps."""
        for field in table.schema().fields:
            if field.name == column:
                kind = str(getattr(field.type, "type", field.type)).lower()
                return kind in ("date", "timestamp", "timestamp_ntz")
        return False


def union(sets: Iterable[set[str] | None]) -> set[str] | None:
    """The union of the sets given; None if none said anything."""
    out: set[str] | None = None
    for s in sets:
        if s is not None:
            out = (out or set()) | s
    return out
