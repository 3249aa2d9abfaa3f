"""The API's tables in the state store: users, tokens, sign-in sessions, alarm
acknowledgements and the executor bounds an admin asks of a worker.

Storage models only, on the store's `Base` (so the migrations' check against the models
covers them); `access.py` and `annotations.py` hand out plain records. Secrets are never
stored: a password as its scrypt hash, a token and a session id as their SHA-256.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from edgebatch.framework.state.models import Base, Id, UTCDateTime

ROLES = ("viewer", "operator", "admin")


def _roles_check() -> str:
    return "role IN ('viewer', 'operator', 'admin', 'device')"


class ApiUser(Base):
    """A person who signs in to the dashboard; `tenants` ["*"] means every tenant."""

    __tablename__ = "api_users"
    __table_args__ = (CheckConstraint(_roles_check(), name="role"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(16))
    tenants: Mapped[list[str]] = mapped_column(JSON, default=list)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiToken(Base):
    """A bearer token: a program's (role and tenants) or one device's (ingest only).

    `prefix` is the token's first characters, shown in lists so a user can tell which
    one to revoke; `token_hash` is what a presented token is looked up by.
    """

    __tablename__ = "api_tokens"
    __table_args__ = (CheckConstraint(_roles_check(), name="role"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    tenants: Mapped[list[str]] = mapped_column(JSON, default=list)
    # A device token: the one device (`tenant/device`) it may send for.
    device: Mapped[str | None] = mapped_column(String(140))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("api_users.id", ondelete="CASCADE"))
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiSession(Base):
    """A dashboard sign-in: the cookie carries the id (signed), the store its hash."""

    __tablename__ = "api_sessions"
    __table_args__ = (Index(None, "expires_at"),)

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("api_users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    client: Mapped[str] = mapped_column(String(200), default="")


class AlarmAck(Base):
    """An alarm acknowledged by a person: who, when and why (the audit has it too)."""

    __tablename__ = "alarm_acks"

    alarm_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    device: Mapped[str] = mapped_column(String(64))
    acked_by: Mapped[str] = mapped_column(String(200))
    acked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(Text, default="")


class WorkerBounds(Base):
    """The executor bounds an admin wants a worker to use; the worker applies them."""

    __tablename__ = "worker_bounds"

    worker: Mapped[str] = mapped_column(String(300), primary_key=True)
    min_executors: Mapped[int] = mapped_column(Integer)
    max_executors: Mapped[int] = mapped_column(Integer)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
