"""Liveness and readiness, for load balancers and orchestrators (no token needed).

`/healthz` answers while the process serves; `/readyz` (or `/healthz?ready=1`) also
checks what the API needs: the state store, the broker and the warehouse root, and
answers 503 naming whichever is not there.
"""

from __future__ import annotations

import socket
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from edgebatch.api.deps import Runtime
from edgebatch.api.runtime import ApiRuntime

router = APIRouter(tags=["health"])


def readiness(rt: ApiRuntime) -> dict[str, Any]:
    checks: dict[str, str] = {}
    try:
        rt.store.revision()
        checks["state_store"] = "ok"
    except Exception as exc:
        checks["state_store"] = f"unreachable: {type(exc).__name__}: {str(exc)[:200]}"
    mqtt = rt.settings.mqtt
    try:
        with socket.create_connection((mqtt.host, mqtt.port), timeout=2):
            checks["broker"] = "ok"
    except OSError as exc:
        checks["broker"] = f"unreachable at {mqtt.host}:{mqtt.port}: {exc}"
    checks["warehouse"] = _warehouse_check(rt)
    ok = all(v == "ok" for v in checks.values())
    return {"status": "ready" if ok else "not ready", "checks": checks}


def _warehouse_check(rt: ApiRuntime) -> str:
    import os

    root = rt.root
    try:
        if root.is_local:
            path = root.resolve()
            os.makedirs(path, exist_ok=True)
            return "ok" if os.access(path, os.W_OK) else f"{path} is not writable"
        rt.zone().store.list_files(rt.zone().folder("batch"))
        return "ok"
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}: {str(exc)[:200]}"


@router.get("/healthz", summary="Liveness; ?ready=1 for readiness")
async def healthz(
    rt: Runtime, ready: Annotated[bool, Query(description="also check dependencies")] = False
) -> JSONResponse:
    if ready:
        return await readyz(rt)
    return JSONResponse({"status": "ok", "uptime_s": round(time.time() - rt.started_at, 1)})


@router.get("/readyz", summary="Readiness: state store, broker, warehouse root")
async def readyz(rt: Runtime) -> JSONResponse:
    body = await run_in_threadpool(readiness, rt)
    return JSONResponse(body, status_code=200 if body["status"] == "ready" else 503)
