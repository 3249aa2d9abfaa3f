"""Workers and queues: who serves which queue, their heartbeats and health, the Spark
applications and executors behind each (through Spark's own REST API, at the UI address
the worker reports in its health), and the executor bounds an admin asks of a worker.

Workers are shared by every tenant, so only callers who see every tenant see them.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field, model_validator
from starlette.concurrency import run_in_threadpool

from edgebatch.api.access import Principal
from edgebatch.api.deps import Admin, Store, Viewer
from edgebatch.api.errors import NotFound
from edgebatch.framework.state import StateError, StateStore
from edgebatch.framework.state.base import DEFAULT_WORKER_TTL

router = APIRouter(prefix="/api/v1", tags=["workers"])

SPARK_TIMEOUT_S = 3.0
UI_KEYS = ("spark_ui_url", "spark_ui", "ui_url", "ui")


class BoundsIn(BaseModel):
    min_executors: int = Field(ge=0, le=10_000)
    max_executors: int = Field(ge=1, le=10_000)

    @model_validator(mode="after")
    def ordered(self) -> BoundsIn:
        if self.min_executors > self.max_executors:
            raise ValueError("min_executors must not exceed max_executors")
        return self


class BoundsOut(BaseModel):
    min_executors: int
    max_executors: int
    updated_by: str
    updated_at: datetime
    applied: bool | None = Field(
        None, description="the worker reports these bounds in its health (None: it does not say)"
    )


class WorkerOut(BaseModel):
    worker_id: str
    host: str
    pid: int
    queues: list[str]
    state: str
    alive: bool
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_age_s: float
    stopped_at: datetime | None
    health: dict[str, Any]
    spark_ui_url: str | None
    desired_executors: BoundsOut | None


class QueueOut(BaseModel):
    queue: str
    queued: int
    running: int
    oldest_queued_at: datetime | None
    workers: list[str]


def _fleet_wide(principal: Principal) -> None:
    if not principal.all_tenants:
        principal.check_tenant(None, "workers and queues")


def ui_url(health: dict[str, Any]) -> str | None:
    for key in UI_KEYS:
        value = health.get(key)
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return value.rstrip("/")
    spark = health.get("spark")
    return ui_url(spark) if isinstance(spark, dict) else None


def _worker_out(store: StateStore, w, bounds) -> WorkerOut:
    now = store.now()
    age = (now - w.heartbeat_at).total_seconds()
    desired = None
    if bounds is not None:
        reported = w.health.get("executor_bounds") or w.health.get("executors_bounds")
        applied = None
        if isinstance(reported, dict):
            applied = (reported.get("min"), reported.get("max")) == (
                bounds.min_executors,
                bounds.max_executors,
            )
        desired = BoundsOut(
            min_executors=bounds.min_executors,
            max_executors=bounds.max_executors,
            updated_by=bounds.updated_by,
            updated_at=bounds.updated_at,
            applied=applied,
        )
    return WorkerOut(
        worker_id=w.worker_id,
        host=w.host,
        pid=w.pid,
        queues=list(w.queues),
        state=str(w.state),
        alive=str(w.state) == "running" and age <= DEFAULT_WORKER_TTL.total_seconds(),
        started_at=w.started_at,
        heartbeat_at=w.heartbeat_at,
        heartbeat_age_s=round(age, 3),
        stopped_at=w.stopped_at,
        health=w.health,
        spark_ui_url=ui_url(w.health),
        desired_executors=desired,
    )


@router.get("/workers", response_model=list[WorkerOut], summary="Workers, newest heartbeat first")
def list_workers(principal: Viewer, store: Store) -> list[WorkerOut]:
    _fleet_wide(principal)
    bounds = {b.worker: b for b in store.executor_bounds()}
    return [_worker_out(store, w, bounds.get(w.worker_id)) for w in store.list_workers()]


def _worker(store: StateStore, worker_id: str):
    try:
        return store.get_worker(worker_id)
    except StateError:
        raise NotFound(f"no worker {worker_id!r}") from None


@router.get("/workers/{worker_id}", response_model=WorkerOut, summary="One worker")
def get_worker(worker_id: str, principal: Viewer, store: Store) -> WorkerOut:
    _fleet_wide(principal)
    w = _worker(store, worker_id)
    bounds = store.executor_bounds(worker_id)
    return _worker_out(store, w, bounds[0] if bounds else None)


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=SPARK_TIMEOUT_S) as response:  # noqa: S310
        return json.loads(response.read())


def spark_applications(base: str) -> dict[str, Any]:
    """Applications and their executors from Spark's REST API at `base` (the driver's UI)."""
    try:
        apps = _get_json(f"{base}/api/v1/applications")
        for app in apps:
            app["executors"] = _get_json(f"{base}/api/v1/applications/{app['id']}/executors")
        return {"available": True, "ui_url": base, "applications": apps}
    except (OSError, ValueError, KeyError, TypeError, urllib.error.URLError) as exc:
        return {"available": False, "ui_url": base, "problem": f"{type(exc).__name__}: {exc}"}


@router.get("/workers/{worker_id}/spark", summary="The worker's Spark applications and executors")
async def worker_spark(worker_id: str, principal: Viewer, store: Store) -> dict[str, Any]:
    _fleet_wide(principal)
    w = await run_in_threadpool(_worker, store, worker_id)
    base = ui_url(w.health)
    if base is None:
        return {"available": False, "ui_url": None, "problem": "the worker reports no Spark UI"}
    return await run_in_threadpool(spark_applications, base)


@router.put(
    "/workers/{worker_id}/executors",
    response_model=BoundsOut,
    summary="Ask a worker for other executor bounds (it applies them)",
)
def set_executors(worker_id: str, body: BoundsIn, principal: Admin, store: Store) -> BoundsOut:
    _fleet_wide(principal)
    _worker(store, worker_id)
    b = store.set_executor_bounds(
        worker_id,
        min_executors=body.min_executors,
        max_executors=body.max_executors,
        by=principal.name,
    )
    store.audit(
        principal.name,
        "worker.executors",
        f"worker:{worker_id}",
        {"min": body.min_executors, "max": body.max_executors},
    )
    return BoundsOut(
        min_executors=b.min_executors,
        max_executors=b.max_executors,
        updated_by=b.updated_by,
        updated_at=b.updated_at,
        applied=None,
    )


@router.get("/queues", response_model=list[QueueOut], summary="Queues: depth and their workers")
def list_queues(principal: Viewer, store: Store) -> list[QueueOut]:
    _fleet_wide(principal)
    serving: dict[str, list[str]] = {}
    for w in store.list_workers(state="running"):
        for q in w.queues:
            serving.setdefault(q, []).append(w.worker_id)
    depths = {d.queue: d for d in store.queue_depths()}
    names = sorted({*depths, *serving})
    out = []
    for name in names:
        d = depths.get(name)
        out.append(
            QueueOut(
                queue=name,
                queued=d.queued if d else 0,
                running=d.running if d else 0,
                oldest_queued_at=d.oldest_queued_at if d else None,
                workers=serving.get(name, []),
            )
        )
    return out
