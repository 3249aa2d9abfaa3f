"""What one API process holds: settings, the state store, the secret, the job registry,
the landing zone, caches, rate limits and the agents' status; made by `create_app`.

Credentials are looked up by hash and cached for `AUTH_CACHE_S`, so most requests do
not touch the database to know who is asking (a revoked token stops working within
that time).
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import TYPE_CHECKING, Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from edgebatch.api import security
from edgebatch.api.access import SESSION_COOKIE, Principal, tenant_scope
from edgebatch.api.ratelimit import RateLimiter
from edgebatch.framework.state import StateStore
from edgebatch.settings import Settings

if TYPE_CHECKING:
    from edgebatch.api.fleet import StatusCache
    from edgebatch.api.lander import GroupLander
    from edgebatch.framework.registry import JobRegistry
    from edgebatch.warehouse.landing import LandingZone
    from edgebatch.warehouse.uri import WarehouseRoot

AUTH_CACHE_S = 5.0
TOUCH_EVERY_S = 60.0


class ApiRuntime:
    def __init__(self, settings: Settings, store: StateStore) -> None:
        self.settings = settings
        self.store = store
        self.secret = settings.api.secret or secrets.token_urlsafe(32)
        self.login_limiter = RateLimiter(settings.api.login_per_minute / 60.0, 5)
        self.ingest_limiter = RateLimiter(settings.api.ingest_per_s, settings.api.ingest_burst)
        self._auth_cache: dict[str, tuple[float, Principal | None]] = {}
        self._touched: dict[int, float] = {}
        self._registry: JobRegistry | None = None
        self._registry_lock = threading.Lock()
        self._zone: LandingZone | None = None
        self.status: StatusCache | None = None
        self.lander: GroupLander | None = None
        self.ingested = 0
        self.metrics_cache: tuple[float, bytes] | None = None
        self.cache: dict[object, tuple[float, Any]] = {}
        self.ingest_quarantined = 0
        self.started_at = time.time()

    def start_background(self) -> None:
        """Start the status subscriber (when `[api] mqtt_status`); the broker may be down."""
        if self.settings.api.mqtt_status and self.status is None:
            from edgebatch.api.fleet import StatusCache

            self.status = StatusCache(self.settings.mqtt)
            self.status.start()

    def stop_background(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    # -- things made on first use ---------------------------------------------------------

    @property
    def root(self) -> WarehouseRoot:
        from edgebatch.warehouse.uri import WarehouseRoot

        return WarehouseRoot.parse(self.settings.warehouse_root)

    def registry(self) -> JobRegistry:
        """The project's jobs, discovered once (importing job modules is slow: not per call)."""
        with self._registry_lock:
            if self._registry is None:
                from edgebatch.framework.registry import discover

                self._registry = discover(self.settings)
            return self._registry

    def zone(self) -> LandingZone:
        if self._zone is None:
            import socket

            from edgebatch.warehouse.landing import open_zone

            wh = self.settings.warehouse
            self._zone = open_zone(
                self.root,
                webhdfs_url=wh.webhdfs_url,
                hdfs_user=wh.hdfs_user,
                writer=f"api-{socket.gethostname()}",
            )
        return self._zone

    # -- who is asking --------------------------------------------------------------------

    async def authenticate(self, request: Request) -> Principal | None:
        """The caller from `Authorization: Bearer` or the session cookie; None if neither."""
        header = request.headers.get("authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return None
            key = "t:" + security.token_hash(token.strip())
        else:
            cookie = request.cookies.get(SESSION_COOKIE)
            session_id = security.unsign(self.secret, cookie) if cookie else None
            if session_id is None:
                return None
            key = "s:" + security.token_hash(session_id)
        cached = self._auth_cache.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        principal = await run_in_threadpool(self._resolve, key)
        if len(self._auth_cache) > 10_000:
            self._auth_cache.clear()
        self._auth_cache[key] = (now + AUTH_CACHE_S, principal)
        return principal

    def forget(self, key: str) -> None:
        self._auth_cache.pop(key, None)

    def _resolve(self, key: str) -> Principal | None:
        kind, digest = key[:2], key[2:]
        if kind == "s:":
            session = self.store.get_session(digest)
            if session is None:
                return None
            user = self.store.get_user_by_id(session.user_id)
            if user is None or user.disabled:
                return None
            return Principal(
                name=f"user:{user.name}",
                kind="user",
                role=user.role,
                tenants=tenant_scope(user.tenants),
                session=digest,
                csrf=security.csrf_token(self.secret, digest),
            )
        token = self.store.token_by_hash(digest)
        now = self.store.now()
        if token is None or token.revoked_at is not None:
            return None
        if token.expires_at is not None and token.expires_at <= now:
            return None
        if token.user_id is not None:
            owner = self.store.get_user_by_id(token.user_id)
            if owner is None or owner.disabled:
                return None
        if time.monotonic() - self._touched.get(token.id, -TOUCH_EVERY_S) >= TOUCH_EVERY_S:
            self._touched[token.id] = time.monotonic()
            self.store.touch_token(token.id)
        if token.device:
            tenant, _, device = token.device.partition("/")
            return Principal(
                name=f"device:{token.device}",
                kind="device",
                role="device",
                tenants=frozenset({tenant}),
                device=(tenant, device),
                token_id=token.id,
            )
        return Principal(
            name=f"token:{token.name}#{token.id}",
            kind="token",
            role=token.role,
            tenants=tenant_scope(token.tenants),
            token_id=token.id,
        )


def runtime(request: Request) -> ApiRuntime:
    rt: ApiRuntime = request.app.state.runtime
    return rt
