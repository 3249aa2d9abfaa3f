"""Uploads: a raw file for a job's input, into `landing/uploads/{job}/{tenant}/{name}`.

Send the bytes as the request body (`Content-Type: application/octet-stream`); the
name and tenant go in the query, and an optional `sha256` is checked against what
arrived. The file's name is also the partition key a producer gives to run it as one
explicit iteration (`POST /api/v1/runs` with `iterations: [name]`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from edgebatch.api.deps import Operator, Runtime, Viewer
from edgebatch.api.errors import NotFound
from edgebatch.api.runtime import ApiRuntime
from edgebatch.framework.errors import UnknownJobError
from edgebatch.warehouse.landing.uploads import (
    UploadTooLarge,
    land_upload,
    list_uploads,
    upload_path,
)

router = APIRouter(prefix="/api/v1/uploads", tags=["uploads"])

JOB = r"^[a-z][a-z0-9_]{0,99}$"
NAME = r"^[A-Za-z0-9_-]{1,64}$"


def _job(rt: ApiRuntime, job: str) -> None:
    try:
        rt.registry().get(job)
    except UnknownJobError as exc:
        raise NotFound(str(exc)) from None


@router.post(
    "/{job}",
    status_code=201,
    summary="Upload a raw input file for a job (streamed, size-limited, checksummed)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def upload(
    request: Request,
    principal: Operator,
    rt: Runtime,
    job: Annotated[str, Path(pattern=JOB)],
    name: Annotated[str, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")],
    tenant: Annotated[str, Query(pattern=NAME)],
    sha256: Annotated[str | None, Query(pattern=r"^[0-9a-fA-F]{64}$")] = None,
) -> JSONResponse:
    principal.check_tenant(tenant, f"uploads of tenant {tenant!r}")
    await run_in_threadpool(_job, rt, job)
    declared = request.headers.get("content-length")
    limit = rt.settings.api.upload_max_bytes
    if declared and declared.isdigit() and int(declared) > limit:
        raise UploadTooLarge(f"upload of {declared} bytes is over the limit of {limit}")
    relative = upload_path(job, tenant, name)
    done = await land_upload(
        rt.zone(), relative, request.stream(), max_bytes=limit, expected_sha256=sha256
    )
    await run_in_threadpool(
        rt.store.audit,
        principal.name,
        "upload",
        f"job:{job}",
        {"file": done.name, "size": done.size, "sha256": done.sha256, "tenant": tenant},
    )
    return JSONResponse(
        {
            "name": done.name,
            "uri": done.uri,
            "size": done.size,
            "sha256": done.sha256,
            "partition": name,
            "tenant": tenant,
        },
        status_code=201,
    )


@router.get("/{job}", summary="Files uploaded for a job")
async def uploads_of(
    principal: Viewer, rt: Runtime, job: Annotated[str, Path(pattern=JOB)]
) -> list[dict[str, Any]]:
    await run_in_threadpool(_job, rt, job)
    tenants = None if principal.tenants is None else set(principal.tenants)
    return await run_in_threadpool(list_uploads, rt.zone(), job, tenants)
