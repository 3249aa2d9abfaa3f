"""Reading the tables without Spark, for the API: schema, partitions with their row
counts, history, and small SQL queries (delta-rs with DataFusion), off any event loop.

Everything takes a declared `TableSpec` (never a path from a request), so nothing here
can reach outside the warehouse root. `tenants` limits what is read to those tenants'
partitions for a table partitioned by `tenant`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

from edgebatch.warehouse.errors import StorageError
from edgebatch.warehouse.tables import TableSpec
from edgebatch.warehouse.uri import WarehouseRoot

_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def open_table(root: WarehouseRoot, spec: TableSpec):
    """The delta-rs table, or None when it has not been created yet."""
    from deltalake import DeltaTable

    location = spec.location(root)
    if not DeltaTable.is_deltatable(location):
        return None
    return DeltaTable(location)


def quote(value: str) -> str:
    """A SQL string literal of a name (tenants, devices): only safe characters pass."""
    if not _SAFE_VALUE.match(value):
        raise StorageError(f"{value!r} is not a name ([A-Za-z0-9_.:-], at most 128)")
    return f"'{value}'"


def tenant_condition(spec: TableSpec, tenants: Iterable[str] | None) -> str:
    """`tenant IN (...)` for a table with a tenant column, or TRUE for all tenants."""
    if tenants is None:
        return "TRUE"
    names = sorted(set(tenants))
    if "tenant" not in spec.partition_by or not names:
        return "FALSE"
    return f"tenant IN ({', '.join(quote(t) for t in names)})"


def query(root: WarehouseRoot, spec: TableSpec, sql: str) -> list[dict[str, Any]]:
    """Run `sql` over the table registered as `t`; rows as dicts ([] if no table yet)."""
    import pyarrow as pa
    from deltalake import QueryBuilder

    table = open_table(root, spec)
    if table is None:
        return []
    reader = QueryBuilder().register("t", table).execute(sql)
    return pa.table(reader).to_pylist()


def schema(root: WarehouseRoot, spec: TableSpec) -> list[dict[str, Any]]:
    """Columns as the table's log says (name, type, nullable); else as declared."""
    table = open_table(root, spec)
    if table is None:
        return [{"name": c, "type": t, "nullable": True} for c, t in declared_columns(spec)]
    out = []
    for field in table.schema().fields:
        kind = field.type
        out.append(
            {
                "name": field.name,
                "type": getattr(kind, "type", None) or str(kind),
                "nullable": field.nullable,
            }
        )
    return out


def declared_columns(spec: TableSpec) -> list[tuple[str, str]]:
    """(name, type) pairs from the spec's DDL, without Spark."""
    columns, depth, current = [], 0, ""
    for ch in spec.schema + ",":
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        if ch == "," and depth == 0:
            words = current.strip().split(None, 1)
            if len(words) == 2:
                columns.append((words[0].strip("`"), words[1].replace("NOT NULL", "").strip()))
            current = ""
        else:
            current += ch
    return columns


def partitions(
    root: WarehouseRoot, spec: TableSpec, tenants: Iterable[str] | None, limit: int = 1000
) -> list[dict[str, Any]]:
    """Partition values with their files, rows and bytes, from the log's add actions."""
    table = open_table(root, spec)
    if table is None or not spec.partition_by:
        return []
    actions = table.get_add_actions(flatten=True)
    cols = {name: actions.column(f"partition.{name}").to_pylist() for name in spec.partition_by}
    sizes = actions.column("size_bytes").to_pylist()
    records = actions.column("num_records").to_pylist()
    allowed = None if tenants is None else set(tenants)
    found: dict[tuple, dict[str, Any]] = {}
    for i, size in enumerate(sizes):
        key = tuple(_plain(cols[c][i]) for c in spec.partition_by)
        values = dict(zip(spec.partition_by, key, strict=True))
        if allowed is not None and values.get("tenant") not in allowed:
            continue
        entry = found.setdefault(key, {"values": values, "files": 0, "rows": 0, "bytes": 0})
        entry["files"] += 1
        entry["bytes"] += size or 0
        entry["rows"] = (
            None if entry["rows"] is None or records[i] is None else (entry["rows"] + records[i])
        )
    ordered = sorted(found.values(), key=lambda e: [str(v) for v in e["values"].values()])
    return ordered[-limit:]


def history(root: WarehouseRoot, spec: TableSpec, limit: int) -> list[dict[str, Any]]:
    table = open_table(root, spec)
    if table is None:
        return []
    out = []
    for entry in table.history(limit):
        ts = entry.get("timestamp")
        out.append(
            {
                "version": entry.get("version"),
                "timestamp": dt.datetime.fromtimestamp(ts / 1000, dt.UTC) if ts else None,
                "operation": entry.get("operation"),
                "parameters": entry.get("operationParameters") or {},
                "metrics": entry.get("operationMetrics") or {},
                "engine": entry.get("engineInfo") or entry.get("clientVersion"),
            }
        )
    return out


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value
