"""Who is asking, and what they may do: principals, roles, tenants and the route guards.

Three roles, each allowed what the one before it is: `viewer` reads, `operator` also
starts, cancels and retries runs, uploads files and acknowledges alarms, `admin` also
manages users, tokens and workers. A principal sees the tenants it was given (`*`:
all). A device token is none of these: it may only send its own device's messages.

Every route declares its guard as a dependency (`deps.Viewer`, `deps.Operator`,
`deps.Admin`, `deps.DeviceSender`); the few that need none are in `PUBLIC_PATHS`. The
tests walk the app's route table and fail for a route that has neither.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from fastapi import HTTPException, Request

from edgebatch.framework.state.access import ALL_TENANTS

ROLES = ("viewer", "operator", "admin")
DEVICE_ROLE = "device"
RANK = {name: i for i, name in enumerate(ROLES, start=1)}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
SESSION_COOKIE = "edgebatch_session"
# Routes anyone may call: liveness and readiness, signing in, the API's own description.
PUBLIC_PATHS = frozenset(
    {
        "/healthz",
        "/readyz",
        "/api/v1/auth/login",
        "/api/v1/openapi.json",
        "/api/v1/docs",
        "/api/v1/docs/oauth2-redirect",
    }
)


@dataclasses.dataclass(frozen=True)
class Principal:
    """The caller. `tenants` None means every tenant; `session` is set for a signed-in user
    (then `csrf` must come back on every change)."""

    name: str
    kind: str  # "user", "token" or "device"
    role: str
    tenants: frozenset[str] | None
    device: tuple[str, str] | None = None
    session: str | None = None
    csrf: str | None = None
    token_id: int | None = None

    def has_role(self, role: str) -> bool:
        return self.role in RANK and RANK[self.role] >= RANK[role]

    def sees_tenant(self, tenant: str | None) -> bool:
        """A tenant-less thing (a fleet-wide run, a shared table) only for all-tenant callers."""
        if self.tenants is None:
            return True
        return tenant is not None and tenant in self.tenants

    @property
    def all_tenants(self) -> bool:
        return self.tenants is None

    def check_tenant(self, tenant: str | None, what: str) -> None:
        if not self.sees_tenant(tenant):
            whose = f"tenant {tenant!r}" if tenant else "every tenant (it is fleet-wide)"
            raise HTTPException(403, f"{self.name} may not see {what}: it belongs to {whose}")


def tenant_scope(tenants: Iterable[str]) -> frozenset[str] | None:
    names = frozenset(tenants)
    return None if ALL_TENANTS in names else names


def forbidden(message: str) -> HTTPException:
    return HTTPException(403, message)


def unauthenticated(message: str = "") -> HTTPException:
    return HTTPException(
        401,
        message
        or "not signed in: send Authorization: Bearer TOKEN, or sign in at POST /api/v1/auth/login",
        headers={"WWW-Authenticate": "Bearer"},
    )


class RoleGuard:
    """A dependency: the caller, if signed in with at least `role` (else 401 or 403)."""

    def __init__(self, role: str) -> None:
        if role not in RANK:
            raise ValueError(f"unknown role {role!r}")
        self.role = role

    async def __call__(self, request: Request) -> Principal:
        from edgebatch.api.runtime import runtime

        principal = await runtime(request).authenticate(request)
        if principal is None:
            raise unauthenticated()
        if principal.kind == "device":
            raise forbidden("a device token may only send its device's messages to the ingest")
        if not principal.has_role(self.role):
            raise forbidden(f"{principal.name} is {principal.role}; this needs {self.role}")
        if principal.session is not None and request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent or sent != principal.csrf:
                raise forbidden(
                    f"missing or wrong {CSRF_HEADER} header: send the csrf_token that "
                    "GET /api/v1/auth/me returns with every change made from a signed-in session"
                )
        return principal

    def __repr__(self) -> str:
        return f"RoleGuard({self.role!r})"


class DeviceGuard:
    """A dependency of the ingest: a device token for exactly the device in the path."""

    role = DEVICE_ROLE

    async def __call__(self, request: Request, tenant: str, device: str) -> Principal:
        from edgebatch.api.runtime import runtime

        principal = await runtime(request).authenticate(request)
        if principal is None:
            raise unauthenticated("send the device's token: Authorization: Bearer TOKEN")
        if principal.kind != "device" or principal.device != (tenant, device):
            raise forbidden(
                f"{principal.name} may not send for device {tenant}/{device}: "
                "use that device's own token (edgebatch api token create --device TENANT/DEVICE)"
            )
        return principal


class MetricsGuard(RoleGuard):
    """A viewer who sees every tenant, unless `[api] metrics_public` opens /metrics to
    scrapers without a token."""

    def __init__(self) -> None:
        super().__init__("viewer")

    async def __call__(self, request: Request) -> Principal:
        from edgebatch.api.runtime import runtime

        if runtime(request).settings.api.metrics_public:
            return Principal("anonymous", "public", "viewer", None)
        principal = await super().__call__(request)
        principal.check_tenant(None, "the metrics (they count every tenant)")
        return principal
