"""Queues and workers: each run waits in a named queue; workers report themselves by heartbeat.

`runs.queue` (existing runs are in `default`) with the claim's index (state, queue,
priority descending, id), and the `workers` table.

Revision ID: 0003_queues
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_queues"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(
            sa.Column("queue", sa.String(length=64), nullable=False, server_default="default")
        )
    op.create_index("ix_runs_claim", "runs", ["state", "queue", sa.text("priority DESC"), "id"])
    op.create_table(
        "workers",
        sa.Column("worker_id", sa.String(length=300), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("health", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "state IN ('running', 'stopped', 'lost')", name=op.f("ck_workers_state")
        ),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_workers")),
    )
    op.create_index(op.f("ix_workers_state_heartbeat_at"), "workers", ["state", "heartbeat_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_workers_state_heartbeat_at"), table_name="workers")
    op.drop_table("workers")
    op.drop_index("ix_runs_claim", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("queue")
