"""Reports: list and download the PDFs the report jobs wrote (bills, run reports).

A viewer sees its own tenants' reports; the run report (tenant `_all`, about every
tenant's runs) is for callers who see every tenant. Names are checked by the archive,
never used raw as paths, so no request reaches outside `<root>/reports`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from edgebatch.api.access import Principal
from edgebatch.api.deps import Runtime, Viewer
from edgebatch.api.errors import NotFound
from edgebatch.framework.reports.archive import ALL_TENANTS, ReportArchive, ReportError
from edgebatch.warehouse.landing.stores import LandingError

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])


class ReportOut(BaseModel):
    kind: str
    tenant: str
    period: str
    id: str
    bytes: int
    url: str


def _check(principal: Principal, tenant: str) -> None:
    principal.check_tenant(None if tenant == ALL_TENANTS else tenant, f"reports of {tenant}")


@router.get("/{tenant}/{kind}", response_model=list[ReportOut])
async def list_reports(
    rt: Runtime,
    principal: Viewer,
    tenant: str,
    kind: str,
    period: Annotated[str | None, Query(max_length=64)] = None,
) -> list[ReportOut]:
    """The tenant's reports of one kind (`bills`, `runs`), newest period first."""
    _check(principal, tenant)
    archive = ReportArchive(rt.root)
    try:
        found = await run_in_threadpool(archive.list, kind, tenant, period)
    except ReportError as exc:
        raise NotFound(str(exc)) from None
    return [
        ReportOut(
            kind=r.kind,
            tenant=r.tenant,
            period=r.period,
            id=r.id,
            bytes=r.size,
            url=f"/api/v1/reports/{r.tenant}/{r.kind}/{r.period}/{r.id}",
        )
        for r in found
    ]


@router.get("/{tenant}/{kind}/{period}/{report_id}", response_class=Response)
async def download_report(
    rt: Runtime, principal: Viewer, tenant: str, kind: str, period: str, report_id: str
) -> Response:
    """One report as `application/pdf`."""
    _check(principal, tenant)
    archive = ReportArchive(rt.root)
    try:
        data = await run_in_threadpool(archive.read, kind, tenant, period, report_id)
    except (ReportError, LandingError):
        raise NotFound(f"no {kind} report {report_id!r} of {tenant} for {period}") from None
    return Response(
        content=data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{report_id}.pdf"'},
    )
