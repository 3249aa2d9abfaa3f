"""The scheduler's tables: its leader lease, its trigger cursors, and the runs it holds back.

A queued run with a row in `run_waits` is not claimable: the scheduler holds it until
its upstream runs, window, limits and preconditions allow, then deletes the row.

Revision ID: 0004_scheduler
Revises: 0003_queues
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_scheduler"
down_revision: str | None = "0003_queues"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scheduler_leases",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("holder", sa.String(length=300), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("term", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_leases")),
    )
    op.create_table(
        "scheduler_cursors",
        sa.Column("job", sa.String(length=200), nullable=False),
        sa.Column("trigger", sa.String(length=300), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job", "trigger", name=op.f("pk_scheduler_cursors")),
    )
    op.create_table(
        "run_waits",
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_waits_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_run_waits")),
    )


def downgrade() -> None:
    op.drop_table("run_waits")
    op.drop_table("scheduler_cursors")
    op.drop_table("scheduler_leases")
