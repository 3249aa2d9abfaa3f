"""Who may use the API: users, bearer tokens and sign-in sessions, by their hashes.

The store keeps no secret: callers hash passwords (scrypt) and tokens (SHA-256) before
they reach it, and look a presented token up by its hash. Roles and tenants are plain
values here; what they allow is the API's business (`edgebatch.api.access`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from edgebatch.framework.state import api_models as am
from edgebatch.framework.state.base import StoreBase
from edgebatch.framework.state.errors import StateError

ALL_TENANTS = "*"


@dataclasses.dataclass(frozen=True)
class ApiUser:
    id: int
    name: str
    password_hash: str
    role: str
    tenants: tuple[str, ...]
    disabled: bool
    created_at: datetime

    @classmethod
    def from_row(cls, x: am.ApiUser) -> ApiUser:
        return cls(
            x.id, x.name, x.password_hash, x.role, tuple(x.tenants or ()), x.disabled, x.created_at
        )


@dataclasses.dataclass(frozen=True)
class ApiToken:
    """A token as stored: never the token itself, only its hash and first characters."""

    id: int
    name: str
    prefix: str
    token_hash: str
    role: str
    tenants: tuple[str, ...]
    device: str | None
    user_id: int | None
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def from_row(cls, x: am.ApiToken) -> ApiToken:
        return cls(
            x.id,
            x.name,
            x.prefix,
            x.token_hash,
            x.role,
            tuple(x.tenants or ()),
            x.device,
            x.user_id,
            x.created_by,
            x.created_at,
            x.expires_at,
            x.revoked_at,
            x.last_used_at,
        )


@dataclasses.dataclass(frozen=True)
class ApiSession:
    id_hash: str
    user_id: int
    created_at: datetime
    expires_at: datetime


class AccessControl(StoreBase):
    """Users, tokens and sessions of the API."""

    # -- users ----------------------------------------------------------------------------

    def add_user(
        self, name: str, *, password_hash: str, role: str, tenants: Iterable[str]
    ) -> ApiUser:
        try:
            with self._write() as s:
                row = am.ApiUser(
                    name=name,
                    password_hash=password_hash,
                    role=role,
                    tenants=list(tenants),
                    disabled=False,
                    created_at=self.now(),
                )
                s.add(row)
                s.flush()
                return ApiUser.from_row(row)
        except IntegrityError:
            raise StateError(f"a user named {name!r} exists already") from None

    def get_user(self, name: str) -> ApiUser | None:
        with self._read() as s:
            row = s.scalars(select(am.ApiUser).where(am.ApiUser.name == name)).first()
            return ApiUser.from_row(row) if row else None

    def get_user_by_id(self, user_id: int) -> ApiUser | None:
        with self._read() as s:
            row = s.get(am.ApiUser, user_id)
            return ApiUser.from_row(row) if row else None

    def list_users(self) -> list[ApiUser]:
        with self._read() as s:
            return [ApiUser.from_row(x) for x in s.scalars(select(am.ApiUser).order_by("name"))]

    def update_user(self, name: str, **changes: Any) -> ApiUser:
        """Change `password_hash`, `role`, `tenants` or `disabled` of a user."""
        allowed = {"password_hash", "role", "tenants", "disabled"}
        unknown = set(changes) - allowed
        if unknown:
            raise StateError(f"cannot change {', '.join(sorted(unknown))} of a user")
        with self._write() as s:
            row = s.scalars(select(am.ApiUser).where(am.ApiUser.name == name)).first()
            if row is None:
                raise StateError(f"no user named {name!r}")
            for key, value in changes.items():
                setattr(row, key, list(value) if key == "tenants" else value)
            s.flush()
            if changes.get("disabled"):
                s.execute(delete(am.ApiSession).where(am.ApiSession.user_id == row.id))
            return ApiUser.from_row(row)

    def remove_user(self, name: str) -> bool:
        with self._write() as s:
            row = s.scalars(select(am.ApiUser).where(am.ApiUser.name == name)).first()
            if row is None:
                return False
            s.execute(delete(am.ApiSession).where(am.ApiSession.user_id == row.id))
            s.execute(delete(am.ApiToken).where(am.ApiToken.user_id == row.id))
            s.delete(row)
            return True

    # -- tokens ---------------------------------------------------------------------------

    def add_token(
        self,
        name: str,
        *,
        token_hash: str,
        prefix: str,
        role: str,
        tenants: Iterable[str] = (),
        device: str | None = None,
        user_id: int | None = None,
        created_by: str = "",
        expires_at: datetime | None = None,
    ) -> ApiToken:
        with self._write() as s:
            row = am.ApiToken(
                name=name,
                prefix=prefix,
                token_hash=token_hash,
                role=role,
                tenants=list(tenants),
                device=device,
                user_id=user_id,
                created_by=created_by,
                created_at=self.now(),
                expires_at=self._when(expires_at) if expires_at else None,
            )
            s.add(row)
            s.flush()
            return ApiToken.from_row(row)

    def token_by_hash(self, token_hash: str) -> ApiToken | None:
        with self._read() as s:
            row = s.scalars(select(am.ApiToken).where(am.ApiToken.token_hash == token_hash)).first()
            return ApiToken.from_row(row) if row else None

    def list_tokens(self, *, user_id: int | None = None) -> list[ApiToken]:
        query = select(am.ApiToken).order_by(am.ApiToken.id)
        if user_id is not None:
            query = query.where(am.ApiToken.user_id == user_id)
        with self._read() as s:
            return [ApiToken.from_row(x) for x in s.scalars(query)]

    def revoke_token(self, token_id: int) -> ApiToken:
        with self._write() as s:
            row = s.get(am.ApiToken, token_id)
            if row is None:
                raise StateError(f"no token {token_id}")
            if row.revoked_at is None:
                row.revoked_at = self.now()
            s.flush()
            return ApiToken.from_row(row)

    def touch_token(self, token_id: int, at: datetime | None = None) -> None:
        with self._write() as s:
            s.execute(
                update(am.ApiToken)
                .where(am.ApiToken.id == token_id)
                .values(last_used_at=self._when(at))
            )

    # -- sessions -------------------------------------------------------------------------

    def add_session(
        self, id_hash: str, user_id: int, *, expires_at: datetime, client: str = ""
    ) -> ApiSession:
        with self._write() as s:
            now = self.now()
            s.execute(delete(am.ApiSession).where(am.ApiSession.expires_at < now))
            row = am.ApiSession(
                id_hash=id_hash,
                user_id=user_id,
                created_at=now,
                expires_at=self._when(expires_at),
                client=client[:200],
            )
            s.add(row)
            s.flush()
            return ApiSession(row.id_hash, row.user_id, row.created_at, row.expires_at)

    def get_session(self, id_hash: str) -> ApiSession | None:
        """The session if it exists and has not expired."""
        with self._read() as s:
            row = s.get(am.ApiSession, id_hash)
            if row is None or row.expires_at <= self.now():
                return None
            return ApiSession(row.id_hash, row.user_id, row.created_at, row.expires_at)

    def remove_session(self, id_hash: str) -> None:
        with self._write() as s:
            s.execute(delete(am.ApiSession).where(am.ApiSession.id_hash == id_hash))
