"""Runs: list and filter, one run with its iterations and attempts, its log (paged, and
live as Server-Sent Events), and asking for a run, a cancel or a retry.

A run belongs to the tenant in its `tenant` parameter (the API sets it from the
request; `edgebatch run JOB --param tenant=NAME` does the same); a run without one is
fleet-wide, and only callers who see every tenant see it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Annotated, Any, ParamSpec, TypeVar

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from edgebatch.api.access import Principal
from edgebatch.api.deps import Operator, Runtime, Store, Viewer
from edgebatch.api.errors import Conflict, NotFound
from edgebatch.api.runtime import ApiRuntime
from edgebatch.api.schemas import (
    LogPage,
    RunDetail,
    RunOut,
    RunPage,
    RunSubmit,
    Submitted,
    log_line_fields,
    run_detail_fields,
    run_fields,
    to_json,
)
from edgebatch.api.stream_end import notices_under_way
from edgebatch.framework.errors import FrameworkError
from edgebatch.framework.requests import RunRequest
from edgebatch.framework.state import Run, RunState, StateError, StateStore, TriggerKind
from edgebatch.framework.state.queries import TENANT_PARAM, run_tenant

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")
router = APIRouter(prefix="/api/v1/runs", tags=["runs"])

RunId = Annotated[int, Path(ge=1, le=2**62)]

# A read of at most this many rows (a page of runs or log lines) answers on the event loop
# of an embedded store; a larger one in a worker thread, so other requests are not held
# up behind it for long (a thread holds the GIL while it builds rows too, but yields it
# every few milliseconds).
INLINE_ROWS = 1000
SSE_POLL_S = 0.5
STATUS_TTL_S = 1.0
FINISHED_TTL_S = 10.0
SSE_KEEPALIVE_S = 15.0


def as_json(fields: dict[str, Any]) -> Response:
    """The fields as JSON, written once (the route's response_model documents them)."""
    return Response(to_json(fields), media_type="application/json")


def visible_run(store: StateStore, principal: Principal, run_id: int) -> Run:
    """The run, if it exists (404) and the caller may see its tenant (403)."""
    run = store.find_run(run_id)
    if run is None:
        raise NotFound(f"no run {run_id}")
    principal.check_tenant(run_tenant(run), f"run {run_id}")
    return run


async def answer(
    store: StateStore, rows: int, read: Callable[P, T], *a: P.args, **k: P.kwargs
) -> T:
    """`read(*a, **k)`, on the event loop when the store is embedded and the read is at
    most INLINE_ROWS rows, else in a worker thread (see `get_run` for why)."""
    if store.embedded and rows <= INLINE_ROWS:
        return read(*a, **k)
    return await run_in_threadpool(read, *a, **k)


@router.get("", response_model=RunPage, summary="List runs, newest first")
async def list_runs(
    principal: Viewer,
    store: Store,
    job: str | None = None,
    state: Annotated[list[RunState] | None, Query()] = None,
    queue: Annotated[str | None, Query(max_length=64)] = None,
    tenant: Annotated[str | None, Query(max_length=64)] = None,
    created_from: Annotated[datetime | None, Query(alias="from")] = None,
    created_to: Annotated[datetime | None, Query(alias="to")] = None,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    return await answer(
        store,
        limit * 2,  # the runs, and their iterations' counts
        _run_list_answer,
        principal,
        store,
        job,
        state,
        queue,
        tenant,
        created_from,
        created_to,
        cursor,
        limit,
    )


def _run_list_answer(
    principal: Principal,
    store: StateStore,
    job: str | None,
    state: list[RunState] | None,
    queue: str | None,
    tenant: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
    cursor: str | None,
    limit: int,
) -> Response:
    tenants = principal.tenants
    if tenant is not None:
        principal.check_tenant(tenant, f"runs of tenant {tenant!r}")
        tenants = frozenset({tenant})
    runs, counts = store.run_page(
        job=job,
        states=[str(s) for s in state] if state else None,
        tenants=tenants,
        created_from=created_from,
        created_to=created_to,
        before_id=int(cursor) if cursor else None,
        limit=limit + 1,
        queue=queue,
    )
    more = len(runs) > limit
    runs = runs[:limit]
    return as_json(
        {
            "items": [run_fields(r, counts[r.id]) for r in runs],
            "next_cursor": str(runs[-1].id) if more and runs else None,
        }
    )


@router.get("/{run_id}", response_model=RunDetail, summary="One run with its iterations")
async def get_run(run_id: RunId, principal: Viewer, rt: Runtime) -> Response:
    """Answers from a short cache (STATUS_TTL_S; FINISHED_TTL_S once the run has ended),
    since dashboards and scripts poll one run's status many times a second; this
    process's own cancels and retries drop the entry at once."""
    # On an embedded store (SQLite) the read runs on the event loop: it is one indexed
    # statement of about 100 microseconds, where handing it to a worker thread and back
    # cost as much again, and more under load (threads contending for the GIL with the
    # loop, which the work holds in a thread too). PostgreSQL's round trip, which may
    # wait, goes to a worker thread.
    key = ("run", run_id)
    cached = rt.cache.get(key)
    if cached is not None and cached[0] > time.monotonic():
        tenant, body = cached[1]
        principal.check_tenant(tenant, f"run {run_id}")
        return Response(body, media_type="application/json")
    if rt.store.embedded:
        found = rt.store.run_detail(run_id)
    else:
        found = await run_in_threadpool(rt.store.run_detail, run_id)
    if found is None:
        raise NotFound(f"no run {run_id}")
    run, its, attempts = found
    principal.check_tenant(run_tenant(run), f"run {run_id}")
    body = to_json(run_detail_fields(run, its, attempts))
    ttl = FINISHED_TTL_S if run.finished else STATUS_TTL_S
    if len(rt.cache) > 50_000:
        rt.cache.clear()
    rt.cache[key] = (time.monotonic() + ttl, (run_tenant(run), body))
    return Response(body, media_type="application/json")


@router.get("/{run_id}/logs", response_model=LogPage, summary="A page of a run's log")
async def run_logs(
    run_id: RunId,
    principal: Viewer,
    store: Store,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    iteration: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> Response:
    return await answer(
        store, limit, _log_page_answer, run_id, principal, store, after, iteration, limit
    )


def _log_page_answer(
    run_id: int,
    principal: Principal,
    store: StateStore,
    after: int,
    iteration: int | None,
    limit: int,
) -> Response:
    run, lines = store.run_log_page(run_id, after_id=after, limit=limit, iteration_id=iteration)
    if run is None:
        raise NotFound(f"no run {run_id}")
    principal.check_tenant(run_tenant(run), f"run {run_id}")
    return as_json(
        {
            "items": [log_line_fields(line) for line in lines],
            "next_after": lines[-1].id if lines else after,
            "finished": run.finished and len(lines) < limit,
        }
    )


@router.get(
    "/{run_id}/logs/stream",
    summary="A run's log, live (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_logs(
    run_id: RunId,
    request: Request,
    principal: Viewer,
    rt: Runtime,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    iteration: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    """Each line is an event `log` whose id is the line's id, so a client that reconnects
    (EventSource does) resumes after the last line it saw (`Last-Event-ID`). An event
    `end` says the run has finished and every line was sent, including the lines its
    notifications add soon after its end."""
    # How long `end` waits for those: api/stream_end.py.
    await run_in_threadpool(visible_run, rt.store, principal, run_id)
    if last_event_id and last_event_id.isdigit():
        after = max(after, int(last_event_id))
    return StreamingResponse(
        _follow(rt, request, run_id, after, iteration),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _follow(
    rt: ApiRuntime, request: Request, run_id: RunId, after: int, iteration: int | None
) -> AsyncIterator[str]:
    store = rt.store
    yield "retry: 2000\n\n"
    idle = 0.0
    while True:
        lines = await run_in_threadpool(
            store.read_logs, run_id, after_id=after, limit=500, iteration_id=iteration
        )
        for line in lines:
            data = to_json(log_line_fields(line)).decode()
            yield f"id: {line.id}\nevent: log\ndata: {data}\n\n"
            after = line.id
        if lines:
            idle = 0.0
            continue
        run = await run_in_threadpool(store.get_run, run_id)
        if run.finished:
            # Lines written just before the end are read once more before saying so.
            rest = await run_in_threadpool(
                store.read_logs, run_id, after_id=after, limit=1, iteration_id=iteration
            )
            if rest:
                continue
            # Notification lines belong to the run, not to an iteration's stream.
            if iteration is not None or not await run_in_threadpool(_notices_under_way, rt, run):
                yield f"event: end\ndata: {json.dumps({'state': str(run.state)})}\n\n"
                return
        if await request.is_disconnected():
            return
        await asyncio.sleep(SSE_POLL_S)
        idle += SSE_POLL_S
        if idle >= SSE_KEEPALIVE_S:
            idle = 0.0
            yield ": keepalive\n\n"


def _notices_under_way(rt: ApiRuntime, run: Run) -> bool:
    """The run's notifications may still log lines (stream_end); a job registry that
    cannot be read (a broken job module) leaves the stream to end as before."""
    try:
        registry = rt.registry()
    except Exception:
        log.warning("no job registry for the log stream of run %s", run.id, exc_info=True)
        return False
    return notices_under_way(rt.store, registry, rt.settings.notify, run, rt.store.now())


@router.post("", response_model=Submitted, status_code=201, summary="Ask for a run")
def submit_run(body: RunSubmit, principal: Operator, rt: Runtime) -> Submitted:
    """Queue a run for a worker. `iterations` is a producer's explicit list (accounts,
    files): each item becomes one iteration, exactly as `partitions` would, checked
    against the job's partitioning. The caller's tenant goes in the run's `tenant`
    parameter; a caller limited to some tenants must name one of them."""
    from edgebatch.framework.enqueue import enqueue

    if body.partitions and body.iterations:
        raise HTTPException(400, "give partitions or iterations, not both (they mean the same)")
    tenant = body.tenant or _param_tenant(body)
    if tenant is None and principal.tenants is not None and len(principal.tenants) == 1:
        tenant = next(iter(principal.tenants))  # the caller's only tenant
    if tenant is None and not principal.all_tenants:
        raise HTTPException(400, f"{principal.name} sees only some tenants: name one with 'tenant'")
    if tenant is not None:
        principal.check_tenant(tenant, f"runs of tenant {tenant!r}")
    params: dict[str, object] = dict(body.params)
    if tenant is not None:
        params[TENANT_PARAM] = tenant
    request = RunRequest(
        body.job,
        partitions=tuple(body.partitions or body.iterations),
        start=body.start,
        end=body.end,
        rerun=body.rerun,
        priority=body.priority,
        queue=body.queue,
        trigger=TriggerKind.API,
        triggered_by=principal.name,
        run_key=body.run_key,
        params=params,
    )
    run, created = enqueue(rt.store, rt.registry(), request)
    if not created:
        principal.check_tenant(run_tenant(run), f"run {run.id}")
    return Submitted(**RunOut.of(run).model_dump(), created=created)


def _param_tenant(body: RunSubmit) -> str | None:
    value = body.params.get(TENANT_PARAM)
    if value is not None and not isinstance(value, str):
        raise HTTPException(400, "param 'tenant' must be a string")
    return value


@router.post("/{run_id}/cancel", response_model=RunOut, summary="Cancel a queued or running run")
def cancel(run_id: RunId, principal: Operator, rt: Runtime) -> RunOut:
    from edgebatch.framework.enqueue import cancel_run

    visible_run(rt.store, principal, run_id)
    try:
        return RunOut.of(cancel_run(rt.store, run_id, by=principal.name))
    except StateError as exc:  # it ended meanwhile
        raise Conflict(str(exc)) from None
    finally:
        rt.cache.pop(("run", run_id), None)


@router.post(
    "/{run_id}/retry",
    response_model=Submitted,
    status_code=201,
    summary="Run again only what a run did not finish",
)
def retry(run_id: RunId, principal: Operator, rt: Runtime) -> Submitted:
    from edgebatch.framework.enqueue import enqueue, retry_request_for

    visible_run(rt.store, principal, run_id)
    try:
        request = retry_request_for(rt.store, run_id, triggered_by=principal.name)
    except FrameworkError as exc:
        raise Conflict(str(exc)) from None
    run, created = enqueue(rt.store, rt.registry(), request)
    return Submitted(**RunOut.of(run).model_dump(), created=created)
