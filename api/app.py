"""`create_app(settings)`: the FastAPI application, one router per resource under /api/v1.

`/` is left for the dashboard, which mounts itself there. The OpenAPI description is
at /api/v1/openapi.json and browsable at /api/v1/docs.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

from edgebatch.api import errors
from edgebatch.api.runtime import ApiRuntime
from edgebatch.framework.state import StateStore
from edgebatch.settings import Settings

log = logging.getLogger(__name__)

# Every resource's router, in the order the OpenAPI description lists them.
ROUTERS = (
    "auth",
    "runs",
    "jobs",
    "workers",
    "devices",
    "tables",
    "uploads",
    "reports",
    "ingest",
    "admin",
    "health",
    "metrics",
)


def create_app(settings: Settings, *, store: StateStore | None = None) -> FastAPI:
    """The API for `settings`; `store` defaults to the one the settings name."""
    runtime = ApiRuntime(settings, store or StateStore.from_settings(settings))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime.start_background()
        try:
            yield
        finally:
            runtime.stop_background()
            if runtime.lander is not None:
                await runtime.lander.close()

    app = FastAPI(
        title="edgebatch",
        version=_version(),
        description="Runs, jobs, workers, devices, alarms, tables, uploads and HTTP ingest.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url="/api/v1/docs/oauth2-redirect",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    errors.install(app)
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.api.cors_origins),
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-CSRF-Token", "Last-Event-ID"],
        )
    for name in ROUTERS:
        app.include_router(importlib.import_module(f"edgebatch.api.routers.{name}").router)
    # -- the dashboard (api/web/): its pages at /, its assets at /static ----------------
    from edgebatch.api.web import mount_dashboard

    mount_dashboard(app, settings)
    # -- end of the dashboard -----------------------------------------------------------
    return app


def route_table(app: FastAPI) -> list[APIRoute]:
    """Every API route of `app`, through included routers (what the access tests walk)."""
    found: list[APIRoute] = []

    def walk(routes: list[Any]) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                found.append(route)
            elif hasattr(route, "original_router"):  # FastAPI's included router
                walk(route.original_router.routes)
            elif isinstance(getattr(route, "routes", None), list):
                walk(route.routes)

    walk(list(app.routes))
    return found


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("edgebatch")
    except PackageNotFoundError:
        return "0"
