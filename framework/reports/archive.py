"""Where reports are kept: `<root>/reports/<kind>/<tenant>/<period>/<id>.pdf` in the warehouse.

Written through the landing zone's stores (atomic rename on a local disk or HDFS), and
only when the bytes differ from what is there, so rerunning a report job is a no-op.
Tenant `_all` holds reports about every tenant (the run report), for all-tenant readers.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re

from edgebatch.framework.errors import FrameworkError
from edgebatch.warehouse.landing.stores import LandingError, LocalStore, Store
from edgebatch.warehouse.uri import WarehouseRoot

KINDS = ("bills", "runs")
ALL_TENANTS = "_all"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class ReportError(FrameworkError):
    """A report name, kind or path is not valid; says which part and why."""


@dataclasses.dataclass(frozen=True)
class StoredReport:
    kind: str
    tenant: str
    period: str
    id: str
    size: int

    @property
    def relative(self) -> str:
        return f"reports/{self.kind}/{self.tenant}/{self.period}/{self.id}.pdf"


def _check(kind: str, **parts: str) -> None:
    if kind not in KINDS:
        raise ReportError(f"report kind {kind!r} is not one of {', '.join(KINDS)}")
    for key, value in parts.items():
        if not _NAME.match(value):
            raise ReportError(
                f"report {key} {value!r} must be letters, digits, '_', '.', '-' (at most 128)"
            )


class ReportArchive:
    """Reports under a warehouse root; `store` defaults to the local disk."""

    def __init__(self, root: WarehouseRoot, store: Store | None = None) -> None:
        if store is None and root.scheme != "file":
            raise ReportError(f"a report archive on {root.uri()} needs a store (WebHDFS)")
        self.root = root
        self.store: Store = store or LocalStore()

    def path(self, kind: str, tenant: str, period: str, report_id: str) -> str:
        _check(kind, tenant=tenant, period=period, id=report_id)
        return self.root.resolve(f"reports/{kind}/{tenant}/{period}/{report_id}.pdf")

    def write(self, kind: str, tenant: str, period: str, report_id: str, data: bytes) -> bool:
        """Store the report; False when the same bytes were already there (nothing written)."""
        path = self.path(kind, tenant, period, report_id)
        try:
            if self.store.read(path) == data:
                return False
        except LandingError:  # not there yet
            pass
        self.store.write_atomic(path, data)
        return True

    def read(self, kind: str, tenant: str, period: str, report_id: str) -> bytes:
        return self.store.read(self.path(kind, tenant, period, report_id))

    def list(self, kind: str, tenant: str, period: str | None = None) -> list[StoredReport]:
        """Reports of one kind and tenant (and period), newest period first."""
        _check(kind, tenant=tenant)
        base = self.root.resolve(f"reports/{kind}/{tenant}")
        if period is not None:
            _check(kind, period=period)
        folder = posixpath.join(base, period) if period else base
        out = []
        for f in self.store.list_files(folder):
            rel = posixpath.relpath(f.path, base).split("/")
            if len(rel) == 2 and rel[1].endswith(".pdf") and _NAME.match(rel[0]):
                out.append(StoredReport(kind, tenant, rel[0], rel[1][: -len(".pdf")], f.size))
        return sorted(out, key=lambda r: (r.period, r.id), reverse=True)
