"""The dependencies routes declare, once, as `Annotated` aliases.

They are `async` although they do no I/O: FastAPI runs a plain `def` dependency in the
thread pool, a hop that cost more than the lookup itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from edgebatch.api.access import DeviceGuard, Principal, RoleGuard
from edgebatch.api.runtime import ApiRuntime, runtime
from edgebatch.framework.state import StateStore
from edgebatch.settings import Settings


async def _runtime(request: Request) -> ApiRuntime:
    return runtime(request)


async def _store(request: Request) -> StateStore:
    return runtime(request).store


async def _settings(request: Request) -> Settings:
    return runtime(request).settings


Runtime = Annotated[ApiRuntime, Depends(_runtime)]
Store = Annotated[StateStore, Depends(_store)]
AppSettings = Annotated[Settings, Depends(_settings)]
Viewer = Annotated[Principal, Depends(RoleGuard("viewer"))]
Operator = Annotated[Principal, Depends(RoleGuard("operator"))]
Admin = Annotated[Principal, Depends(RoleGuard("admin"))]
DeviceSender = Annotated[Principal, Depends(DeviceGuard())]
