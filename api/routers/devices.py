"""The fleet and its alarms.

A device's last heartbeat comes from bronze/device_health (read with delta-rs, never
Spark, in a thread), its presence from the agents' retained status topic. A device is
`online` when its heartbeat is younger than `[api] device_offline_s` and its status
topic does not say offline. Alarms come from bronze/edge_alarms; acknowledging one is
stored in the state store and audited.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from edgebatch.api.access import Principal
from edgebatch.api.deps import Operator, Runtime, Viewer
from edgebatch.api.errors import NotFound
from edgebatch.api.runtime import ApiRuntime
from edgebatch.warehouse import inspect
from edgebatch.warehouse.catalog import DEVICE_HEALTH, EDGE_ALARMS

router = APIRouter(prefix="/api/v1", tags=["devices"])

NAME = r"^[A-Za-z0-9_-]{1,64}$"
ALARM_ID = r"^[0-9a-f]{32}$"
CACHE_S = 5.0
HEALTH_COLUMNS = (
    "tenant, device, ts, cpu_percent, memory_percent, disk_percent, load1, uptime_s, "
    "temperature_c, outbox_backlog, shed_count, coarsened_count, last_send_at, agent, received_at"
)


class DeviceOut(BaseModel):
    tenant: str
    device: str
    online: bool
    presence: str | None = Field(description="the status topic: online, offline, or unknown")
    last_seen: dt.datetime | None = Field(description="time of the last heartbeat")
    heartbeat_age_s: float | None
    health: str = Field(description="ok, warning or offline")
    problems: list[str]
    cpu_percent: float | None = None
    memory_percent: float | None = None
    disk_percent: float | None = None
    load1: float | None = None
    uptime_s: float | None = None
    temperature_c: float | None = None
    outbox_backlog: int | None = None
    shed_count: int | None = None
    coarsened_count: int | None = None
    agent: str | None = None


class DeviceDetail(DeviceOut):
    history: list[dict[str, Any]]


class AlarmOut(BaseModel):
    alarm_id: str
    tenant: str
    device: str
    rule: str | None
    kind: str | None
    metric: str | None
    value: float | None
    threshold: float | None
    baseline: float | None
    severity: str | None
    state: str | None
    ts: dt.datetime
    detail: str | None
    acked: bool
    acked_by: str | None = None
    acked_at: dt.datetime | None = None
    note: str | None = None


class AckIn(BaseModel):
    note: str = Field("", max_length=2000)


def _since(rt: ApiRuntime, days: int | None = None) -> str:
    back = days if days is not None else rt.settings.api.device_lookback_days
    return (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=back)).isoformat()


def _aware(value: Any) -> dt.datetime | None:
    if not isinstance(value, dt.datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _latest_health(rt: ApiRuntime, tenants: frozenset[str] | None) -> list[dict[str, Any]]:
    key = ("fleet", tenants)
    cached = rt.cache.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    cond = inspect.tenant_condition(DEVICE_HEALTH, tenants)
    rows = inspect.query(
        rt.root,
        DEVICE_HEALTH,
        f"SELECT * FROM (SELECT {HEALTH_COLUMNS}, ROW_NUMBER() OVER (PARTITION BY tenant, "
        f"device ORDER BY ts DESC) AS rn FROM t WHERE {cond} AND date >= DATE "
        f"'{_since(rt)}') WHERE rn = 1 ORDER BY tenant, device",
    )
    rt.cache[key] = (time.monotonic() + CACHE_S, rows)
    return rows


def device_out(rt: ApiRuntime, tenant: str, device: str, row: dict[str, Any] | None) -> DeviceOut:
    now = time.time()
    seen = rt.status.status(tenant, device) if rt.status is not None else None
    presence = seen[0] if seen else None
    last = _aware(row.get("ts")) if row else None
    age = now - last.timestamp() if last else None
    limit = rt.settings.api.device_offline_s
    online = age is not None and age <= limit and presence != "offline"
    problems = []
    if not online:
        problems.append("offline" if presence == "offline" else "no recent heartbeat")
    values = {k: row.get(k) for k in DeviceOut.model_fields if row and k in row}
    for key, label in (
        ("cpu_percent", "cpu"),
        ("memory_percent", "memory"),
        ("disk_percent", "disk"),
    ):
        v = values.get(key)
        if isinstance(v, int | float) and v >= 90:
            problems.append(f"{label} at {v:.0f}%")
    if (values.get("outbox_backlog") or 0) > 1000:
        problems.append(f"outbox backlog {values['outbox_backlog']}")
    if (values.get("shed_count") or 0) > 0:
        problems.append(f"shed {values['shed_count']} messages")
    health = "offline" if not online else ("warning" if problems else "ok")
    values.pop("tenant", None)
    values.pop("device", None)
    return DeviceOut(
        tenant=tenant,
        device=device,
        online=online,
        presence=presence,
        last_seen=last,
        heartbeat_age_s=round(age, 1) if age is not None else None,
        health=health,
        problems=problems,
        **values,
    )


def fleet(rt: ApiRuntime, principal: Principal, tenant: str | None) -> list[DeviceOut]:
    tenants = principal.tenants
    if tenant is not None:
        principal.check_tenant(tenant, f"devices of tenant {tenant!r}")
        tenants = frozenset({tenant})
    rows = {(r["tenant"], r["device"]): r for r in _latest_health(rt, tenants)}
    known = set(rows)
    if rt.status is not None:
        known |= {k for k in rt.status.snapshot() if tenants is None or k[0] in tenants}
    return [device_out(rt, t, d, rows.get((t, d))) for t, d in sorted(known)]


@router.get("/devices", response_model=list[DeviceOut], summary="The fleet: presence and health")
async def list_devices(
    principal: Viewer,
    rt: Runtime,
    tenant: Annotated[str | None, Query(pattern=NAME)] = None,
) -> list[DeviceOut]:
    return await run_in_threadpool(fleet, rt, principal, tenant)


def _device_detail(rt: ApiRuntime, tenant: str, device: str, limit: int) -> DeviceDetail:
    rows = inspect.query(
        rt.root,
        DEVICE_HEALTH,
        f"SELECT {HEALTH_COLUMNS} FROM t WHERE tenant = {inspect.quote(tenant)} AND device = "
        f"{inspect.quote(device)} AND date >= DATE '{_since(rt)}' ORDER BY ts DESC LIMIT {limit}",
    )
    seen = rt.status.status(tenant, device) if rt.status is not None else None
    if not rows and seen is None:
        raise NotFound(f"no device {tenant}/{device} has been heard from")
    base = device_out(rt, tenant, device, rows[0] if rows else None)
    history = [
        {k: (_aware(v) if isinstance(v, dt.datetime) else v) for k, v in r.items()} for r in rows
    ]
    return DeviceDetail(**base.model_dump(), history=history)


@router.get(
    "/devices/{tenant}/{device}",
    response_model=DeviceDetail,
    summary="One device and its heartbeats",
)
async def get_device(
    principal: Viewer,
    rt: Runtime,
    tenant: Annotated[str, Path(pattern=NAME)],
    device: Annotated[str, Path(pattern=NAME)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeviceDetail:
    principal.check_tenant(tenant, f"device {tenant}/{device}")
    return await run_in_threadpool(_device_detail, rt, tenant, device, limit)


ALARM_COLUMNS = (
    "alarm_id, tenant, device, rule, kind, metric, value, threshold, baseline, severity, "
    "state, ts, detail"
)


def _alarms(
    rt: ApiRuntime,
    tenants: frozenset[str] | None,
    device: str | None,
    severity: str | None,
    days: int,
    limit: int,
) -> list[dict[str, Any]]:
    where = [inspect.tenant_condition(EDGE_ALARMS, tenants), f"date >= DATE '{_since(rt, days)}'"]
    if device is not None:
        where.append(f"device = {inspect.quote(device)}")
    if severity is not None:
        where.append(f"severity = {inspect.quote(severity)}")
    return inspect.query(
        rt.root,
        EDGE_ALARMS,
        f"SELECT {ALARM_COLUMNS} FROM t WHERE {' AND '.join(where)} ORDER BY ts DESC LIMIT {limit}",
    )


def _alarm_out(row: dict[str, Any], ack) -> AlarmOut:
    values: dict[str, Any] = {k: row.get(k) for k in AlarmOut.model_fields if k in row}
    values.pop("ts", None)
    return AlarmOut(
        **values,
        ts=_aware(row["ts"]) or dt.datetime.now(dt.UTC),
        acked=ack is not None,
        acked_by=ack.acked_by if ack else None,
        acked_at=ack.acked_at if ack else None,
        note=ack.note if ack else None,
    )


@router.get("/alarms", response_model=list[AlarmOut], summary="Alarms, newest first")
async def list_alarms(
    principal: Viewer,
    rt: Runtime,
    tenant: Annotated[str | None, Query(pattern=NAME)] = None,
    device: Annotated[str | None, Query(pattern=NAME)] = None,
    severity: Annotated[str | None, Query(pattern=NAME)] = None,
    acked: bool | None = None,
    days: Annotated[int, Query(ge=1, le=366)] = 7,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlarmOut]:
    tenants = principal.tenants
    if tenant is not None:
        principal.check_tenant(tenant, f"alarms of tenant {tenant!r}")
        tenants = frozenset({tenant})
    rows = await run_in_threadpool(_alarms, rt, tenants, device, severity, days, limit)
    acks = await run_in_threadpool(rt.store.alarm_acks, [r["alarm_id"] for r in rows])
    out = [_alarm_out(r, acks.get(r["alarm_id"])) for r in rows]
    return [a for a in out if acked is None or a.acked == acked]


def _find_alarm(rt: ApiRuntime, alarm_id: str, principal: Principal) -> dict[str, Any]:
    rows = inspect.query(
        rt.root,
        EDGE_ALARMS,
        f"SELECT {ALARM_COLUMNS} FROM t WHERE alarm_id = {inspect.quote(alarm_id)} LIMIT 1",
    )
    if not rows:
        raise NotFound(f"no alarm {alarm_id}")
    principal.check_tenant(rows[0]["tenant"], f"alarm {alarm_id}")
    return rows[0]


@router.post("/alarms/{alarm_id}/ack", response_model=AlarmOut, summary="Acknowledge an alarm")
async def ack_alarm(
    principal: Operator,
    rt: Runtime,
    alarm_id: Annotated[str, Path(pattern=ALARM_ID)],
    body: AckIn | None = None,
) -> AlarmOut:
    row = await run_in_threadpool(_find_alarm, rt, alarm_id, principal)
    note = body.note if body else ""
    ack = await run_in_threadpool(
        lambda: rt.store.ack_alarm(
            alarm_id, tenant=row["tenant"], device=row["device"], by=principal.name, note=note
        )
    )
    await run_in_threadpool(
        rt.store.audit,
        principal.name,
        "alarm.ack",
        f"alarm:{alarm_id}",
        {"tenant": row["tenant"], "device": row["device"], "note": note},
    )
    return _alarm_out(row, ack)
