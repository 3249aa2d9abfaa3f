"""Admin: users, tokens and the audit, through the API (the CLI does the same:
`edgebatch api user ...`, `edgebatch api token ...`). A new token is in the answer
once and never again."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from edgebatch.api import security
from edgebatch.api.access import Principal, RoleGuard
from edgebatch.api.deps import Runtime, Store
from edgebatch.api.errors import Conflict, NotFound
from edgebatch.framework.state import StateError

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


class FleetAdmin(RoleGuard):
    """An admin who sees every tenant: users and tokens span tenants."""

    def __init__(self) -> None:
        super().__init__("admin")

    async def __call__(self, request: Request) -> Principal:
        principal = await super().__call__(request)
        principal.check_tenant(None, "users, tokens and the audit")
        return principal


Admin = Annotated[Principal, Depends(FleetAdmin())]

TENANT = r"^(\*|[A-Za-z0-9_-]{1,64})$"
USER = r"^[A-Za-z0-9_.@-]{1,100}$"
Role = Literal["viewer", "operator", "admin"]


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=USER)
    password: str = Field(min_length=8, max_length=1000)
    role: Role = "viewer"
    tenants: list[Annotated[str, Field(pattern=TENANT)]] = Field(min_length=1, max_length=1000)


class UserOut(BaseModel):
    name: str
    role: str
    tenants: list[str]
    disabled: bool
    created_at: datetime


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    role: Role = "viewer"
    tenants: list[Annotated[str, Field(pattern=TENANT)]] = Field(default_factory=list)
    device: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_-]{1,64}/[A-Za-z0-9_-]{1,64}$", description="TENANT/DEVICE"
    )
    days: float | None = Field(None, gt=0, le=3660)


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    role: str
    tenants: list[str]
    device: str | None
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class NewToken(TokenOut):
    token: str = Field(description="shown this once")


class AuditOut(BaseModel):
    id: int
    ts: datetime
    principal: str
    action: str
    target: str
    detail: dict


def _user_out(u) -> UserOut:
    return UserOut(
        name=u.name,
        role=u.role,
        tenants=list(u.tenants),
        disabled=u.disabled,
        created_at=u.created_at,
    )


def _token_out(t) -> TokenOut:
    return TokenOut(
        id=t.id,
        name=t.name,
        prefix=t.prefix,
        role=t.role,
        tenants=list(t.tenants),
        device=t.device,
        created_by=t.created_by,
        created_at=t.created_at,
        expires_at=t.expires_at,
        revoked_at=t.revoked_at,
        last_used_at=t.last_used_at,
    )


@router.get("/users", response_model=list[UserOut], summary="Users")
def list_users(principal: Admin, store: Store) -> list[UserOut]:
    return [_user_out(u) for u in store.list_users()]


@router.post("/users", response_model=UserOut, status_code=201, summary="Add a user")
async def add_user(body: UserIn, principal: Admin, rt: Runtime) -> UserOut:
    digest = await run_in_threadpool(security.hash_password, body.password)
    try:
        user = await run_in_threadpool(
            lambda: rt.store.add_user(
                body.name, password_hash=digest, role=body.role, tenants=body.tenants
            )
        )
    except StateError as exc:
        raise Conflict(str(exc)) from None
    await run_in_threadpool(
        rt.store.audit,
        principal.name,
        "user.add",
        f"user:{user.name}",
        {"role": user.role, "tenants": list(user.tenants)},
    )
    return _user_out(user)


@router.delete("/users/{name}", status_code=204, summary="Remove a user, its sessions and tokens")
def remove_user(
    name: Annotated[str, Path(pattern=USER)], principal: Admin, store: Store
) -> Response:
    if not store.remove_user(name):
        raise NotFound(f"no user named {name!r}")
    store.audit(principal.name, "user.remove", f"user:{name}")
    return Response(status_code=204)


@router.get("/tokens", response_model=list[TokenOut], summary="Tokens (never the tokens)")
def list_tokens(principal: Admin, store: Store) -> list[TokenOut]:
    return [_token_out(t) for t in store.list_tokens()]


@router.post("/tokens", response_model=NewToken, status_code=201, summary="Create a token")
def create_token(body: TokenIn, principal: Admin, store: Store) -> NewToken:
    role: str = body.role
    tenants = body.tenants
    if body.device:
        role, tenants = "device", [body.device.split("/")[0]]
    elif not tenants:
        raise HTTPException(400, "name the tenants the token sees ('*' for all)")
    token = security.new_token()
    row = store.add_token(
        body.name,
        token_hash=security.token_hash(token),
        prefix=security.token_prefix(token),
        role=role,
        tenants=tenants,
        device=body.device,
        created_by=principal.name,
        expires_at=store.now() + timedelta(days=body.days) if body.days else None,
    )
    store.audit(principal.name, "token.create", f"token:{row.id}", {"name": row.name, "role": role})
    return NewToken(**_token_out(row).model_dump(), token=token)


@router.post("/tokens/{token_id}/revoke", response_model=TokenOut, summary="Revoke a token")
def revoke_token(
    token_id: Annotated[int, Path(ge=1, le=2**62)], principal: Admin, rt: Runtime
) -> TokenOut:
    try:
        row = rt.store.revoke_token(token_id)
    except StateError:
        raise NotFound(f"no token {token_id}") from None
    rt.store.audit(principal.name, "token.revoke", f"token:{token_id}", {"name": row.name})
    rt.forget("t:" + row.token_hash)
    return _token_out(row)


@router.get("/audit", response_model=list[AuditOut], summary="The audit, newest first")
def audit(
    principal: Admin,
    store: Store,
    action: Annotated[str | None, Query(max_length=100)] = None,
    target: Annotated[str | None, Query(max_length=300)] = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditOut]:
    rows = store.list_audit(action=action, target=target, before_id=before_id, limit=limit)
    return [
        AuditOut(
            id=a.id,
            ts=a.ts,
            principal=a.principal,
            action=a.action,
            target=a.target,
            detail=a.detail,
        )
        for a in rows
    ]
