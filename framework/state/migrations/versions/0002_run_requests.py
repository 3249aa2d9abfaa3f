"""Runs as requested: a priority to order queued runs, and a unique `run_key` per request.

A second request with the same `run_key` finds the run the first one made instead of
making another (the unique constraint settles a race between two processes).

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("run_key", sa.String(length=300), nullable=True))
        batch.create_unique_constraint(op.f("uq_runs_run_key"), ["run_key"])


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint(op.f("uq_runs_run_key"), type_="unique")
        batch.drop_column("run_key")
        batch.drop_column("priority")
