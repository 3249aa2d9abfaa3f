"""The API's tables: users, tokens, sessions, alarm acknowledgements, worker executor bounds.

Revision ID: 0006_access
Revises: 0003_queues
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_access"
down_revision: str | None = "0005_notifications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ROLE = "role IN ('viewer', 'operator', 'admin', 'device')"


def _id() -> sa.Column:
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        autoincrement=True,
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "api_users",
        _id(),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(300), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("tenants", sa.JSON(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(_ROLE, name=op.f("ck_api_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_users")),
        sa.UniqueConstraint("name", name=op.f("uq_api_users_name")),
    )
    op.create_table(
        "api_tokens",
        _id(),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("tenants", sa.JSON(), nullable=False),
        sa.Column("device", sa.String(140), nullable=True),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(_ROLE, name=op.f("ck_api_tokens_role")),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["api_users.id"],
            name=op.f("fk_api_tokens_user_id_api_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "api_sessions",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["api_users.id"],
            name=op.f("fk_api_sessions_user_id_api_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_api_sessions")),
    )
    op.create_index(op.f("ix_api_sessions_expires_at"), "api_sessions", ["expires_at"])
    op.create_table(
        "alarm_acks",
        sa.Column("alarm_id", sa.String(200), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("acked_by", sa.String(200), nullable=False),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("alarm_id", name=op.f("pk_alarm_acks")),
    )
    op.create_table(
        "worker_bounds",
        sa.Column("worker", sa.String(300), nullable=False),
        sa.Column("min_executors", sa.Integer(), nullable=False),
        sa.Column("max_executors", sa.Integer(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("worker", name=op.f("pk_worker_bounds")),
    )


def downgrade() -> None:
    op.drop_table("worker_bounds")
    op.drop_table("alarm_acks")
    op.drop_index(op.f("ix_api_sessions_expires_at"), table_name="api_sessions")
    op.drop_table("api_sessions")
    op.drop_table("api_tokens")
    op.drop_table("api_users")
