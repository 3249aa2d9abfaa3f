"""What the scheduler reads of Delta tables, with delta-rs (`deltalake`): no Spark, no JVM.

A table's version (a new-version trigger), the partitions a span of commits wrote
(the partitions an upstream run touched), when it was last written (freshness) and
its row count from the log's file statistics (a row floor).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
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
        self, name: str, column: str, since: dt.datetime, until: dt.datetime
    ) -> set[str] | None:
        """Values of partition column `column` of the files commits in [since, until] added.

        None when the table does not exist or is not partitioned by `column` (the caller
        falls back to an incremental run). Compaction in the span adds files too: a
        partition rewritten but unchanged is reported, which costs a needless rerun,
        never a missed one.
        """
        table = self._open(name)
        if table is None:
            return None
        if column not in (table.metadata().partition_columns or []):
            return None
        lo, hi = since.timestamp() * 1000, until.timestamp() * 1000
        versions = sorted(int(h["version"]) for h in table.history() if lo <= h["timestamp"] <= hi)
        touched: set[str] = set()
        for version in versions:
            before = self._paths(name, version - 1, column) if version > 0 else {}
            after = self._paths(name, version, column)
            touched.update(value for path, value in after.items() if path not in before)
        return touched

    def _paths(self, name: str, version: int, column: str) -> dict[str, str]:
        table = self._open(name, version)
        actions = table.get_add_actions(flatten=True)
        paths = actions.column("path").to_pylist()
        values = actions.column(f"partition.{column}").to_pylist()
        return {p: str(v) for p, v in zip(paths, values, strict=True) if v is not None}


def union(sets: Iterable[set[str] | None]) -> set[str] | None:
    """The union of the sets given; None if none said anything."""
    out: set[str] | None = None
    for s in sets:
        if s is not None:
            out = (out or set()) | s
    return out
