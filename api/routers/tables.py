"""Tables: every declared Delta table with its schema, partitions, row counts, history
and a small preview, read with delta-rs in a thread (never on the event loop).

Names are looked up in the table registry, never used as paths, so no name can reach
outside the warehouse root. A caller limited to some tenants sees only the tables
partitioned by tenant, and within them only its tenants' partitions; history (which
counts every tenant's rows) is for callers who see every tenant.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from edgebatch.api.access import Principal
from edgebatch.api.deps import Runtime, Viewer
from edgebatch.api.errors import NotFound
from edgebatch.api.runtime import ApiRuntime
from edgebatch.warehouse import inspect
from edgebatch.warehouse.inventory import table_state
from edgebatch.warehouse.tables import REGISTRY, TableSpec

router = APIRouter(prefix="/api/v1/tables", tags=["tables"])


class TableOut(BaseModel):
    name: str
    comment: str
    location: str
    exists: bool
    version: int | None
    rows: int | None
    files: int | None
    bytes: int | None
    partition_by: list[str]
    keys: list[str]
    writers: list[str]
    problem: str


class TableDetail(TableOut):
    columns: list[dict[str, Any]]
    partitions: list[dict[str, Any]]


def _declared(rt: ApiRuntime) -> dict[str, list[str]]:
    from edgebatch.framework.declared import declared_table_names

    return declared_table_names(rt.registry())


def _visible(principal: Principal, spec: TableSpec) -> bool:
    return principal.all_tenants or "tenant" in spec.partition_by


def _spec(rt: ApiRuntime, principal: Principal, name: str) -> TableSpec:
    _declared(rt)  # discovering the jobs declares their tables
    if name not in REGISTRY:
        known = ", ".join(s.name for s in REGISTRY)
        raise NotFound(f"no table named {name!r} is declared (tables: {known})")
    spec = REGISTRY.get(name)
    if not _visible(principal, spec):
        principal.check_tenant(None, f"table {name}")
    return spec


def _table_out(rt: ApiRuntime, principal: Principal, spec: TableSpec, writers) -> TableOut:
    state = table_state(rt.root, spec)
    rows, files, size = state.rows, state.files, state.bytes
    if not principal.all_tenants and state.exists and not state.problem:
        parts = inspect.partitions(rt.root, spec, principal.tenants, limit=10**9)
        files = sum(p["files"] for p in parts)
        size = sum(p["bytes"] for p in parts)
        counted = [p["rows"] for p in parts]
        rows = None if any(r is None for r in counted) else sum(counted)
    return TableOut(
        name=spec.name,
        comment=spec.comment,
        location=state.location,
        exists=state.exists,
        version=state.version,
        rows=rows,
        files=files,
        bytes=size,
        partition_by=list(spec.partition_by),
        keys=list(spec.keys),
        writers=list(writers),
        problem=state.problem,
    )


def _list(rt: ApiRuntime, principal: Principal) -> list[TableOut]:
    out = []
    for name, writers in _declared(rt).items():
        if name in REGISTRY and _visible(principal, REGISTRY.get(name)):
            out.append(_table_out(rt, principal, REGISTRY.get(name), writers))
    return out


@router.get("", response_model=list[TableOut], summary="Every declared table")
async def list_tables(principal: Viewer, rt: Runtime) -> list[TableOut]:
    return await run_in_threadpool(_list, rt, principal)


def _history(rt: ApiRuntime, principal: Principal, name: str, limit: int) -> list[dict]:
    spec = _spec(rt, principal, name)
    principal.check_tenant(None, f"the history of table {name} (it counts every tenant)")
    return inspect.history(rt.root, spec, limit)


@router.get("/{name:path}/history", summary="A table's commits, newest first")
async def table_history(
    name: str, principal: Viewer, rt: Runtime, limit: Annotated[int, Query(ge=1, le=200)] = 20
) -> list[dict[str, Any]]:
    return await run_in_threadpool(_history, rt, principal, name, limit)


def _preview(rt: ApiRuntime, principal: Principal, name: str, limit: int) -> list[dict]:
    spec = _spec(rt, principal, name)
    cond = inspect.tenant_condition(spec, principal.tenants)
    rows = inspect.query(rt.root, spec, f"SELECT * FROM t WHERE {cond} LIMIT {limit}")
    return [{k: _jsonable(v) for k, v in row.items()} for row in rows]


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    if isinstance(value, float) and value != value:
        return None
    return value


@router.get("/{name:path}/preview", summary="A few rows of a table")
async def table_preview(
    name: str, principal: Viewer, rt: Runtime, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> list[dict[str, Any]]:
    return await run_in_threadpool(_preview, rt, principal, name, limit)


def _detail(rt: ApiRuntime, principal: Principal, name: str) -> TableDetail:
    spec = _spec(rt, principal, name)
    writers = _declared(rt).get(name, [])
    base = _table_out(rt, principal, spec, writers)
    return TableDetail(
        **base.model_dump(),
        columns=inspect.schema(rt.root, spec),
        partitions=inspect.partitions(rt.root, spec, principal.tenants, limit=500),
    )


@router.get("/{name:path}", response_model=TableDetail, summary="One table: schema, partitions")
async def get_table(name: str, principal: Viewer, rt: Runtime) -> TableDetail:
    return await run_in_threadpool(_detail, rt, principal, name)
