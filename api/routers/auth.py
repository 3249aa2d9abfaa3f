"""Signing in and out of the dashboard, and who am I.

A sign-in sets an HttpOnly, SameSite=Lax cookie holding a signed random session id
(the store keeps its hash); every change made with that cookie must send the
session's CSRF token in `X-CSRF-Token`. Programs use bearer tokens instead.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from edgebatch.api import security
from edgebatch.api.access import SESSION_COOKIE
from edgebatch.api.deps import Runtime, Viewer
from edgebatch.api.schemas import LoginIn, MeOut

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/login", response_model=MeOut, summary="Sign in (sets the session cookie)")
async def login(body: LoginIn, request: Request, response: Response, rt: Runtime) -> MeOut:
    for key in (f"ip:{_client(request)}", f"user:{body.username}"):
        wait = rt.login_limiter.take(key)
        if wait:
            raise HTTPException(
                429,
                f"too many sign-in attempts; try again in {wait:.0f} s",
                headers={"Retry-After": str(int(wait) + 1)},
            )
    user = await run_in_threadpool(rt.store.get_user, body.username)
    ok = await run_in_threadpool(
        security.verify_password,
        body.password,
        user.password_hash if user else security.hash_password("not a real password"),
    )
    if user is None or not ok or user.disabled:
        raise HTTPException(401, "wrong user name or password")
    session_id = security.new_session_id()
    digest = security.token_hash(session_id)
    ttl = rt.settings.api.session_ttl_s
    await run_in_threadpool(
        rt.store.add_session,
        digest,
        user.id,
        expires_at=rt.store.now() + timedelta(seconds=ttl),
        client=_client(request),
    )
    await run_in_threadpool(rt.store.audit, f"user:{user.name}", "login", f"user:{user.name}")
    response.set_cookie(
        SESSION_COOKIE,
        security.sign(rt.secret, session_id),
        max_age=int(ttl),
        httponly=True,
        samesite="lax",
        secure=rt.settings.api.cookie_secure,
        path="/",
    )
    return MeOut(
        name=f"user:{user.name}",
        kind="user",
        role=user.role,
        tenants=None if "*" in user.tenants else sorted(user.tenants),
        csrf_token=security.csrf_token(rt.secret, digest),
    )


@router.post("/logout", status_code=204, summary="Sign out (ends the session)")
async def logout(principal: Viewer, response: Response, rt: Runtime) -> Response:
    if principal.session is not None:
        await run_in_threadpool(rt.store.remove_session, principal.session)
        rt.forget("s:" + principal.session)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.status_code = 204
    return response


@router.get("/me", response_model=MeOut, summary="Who is asking, and the CSRF token")
async def me(principal: Viewer) -> MeOut:
    return MeOut(
        name=principal.name,
        kind=principal.kind,
        role=principal.role,
        tenants=None if principal.tenants is None else sorted(principal.tenants),
        csrf_token=principal.csrf,
    )
