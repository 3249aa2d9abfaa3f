"""Maintenance: every declared Delta table compacted, vacuumed and checkpointed, one per iteration.

    edgebatch run maintenance                                   # every table, once a day
    edgebatch run maintenance --partition bronze/edge_batches   # one table, today
    edgebatch run maintenance --rerun                           # every table again today

A partition is a table on a day (`bronze/edge_batches@2026-12-02`): an incremental run
maintains each declared table once per day and retries only the tables that failed;
`--rerun` maintains them all again. What each iteration did (files and bytes before and
after, files compacted and vacuumed, the checkpoint's version) is in the run's log.
Writes no table of its own: OPTIMIZE and VACUUM change no row.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from edgebatch.framework.definitions import Retry, job
from edgebatch.framework.entry import main
from edgebatch.framework.errors import PartitionError
from edgebatch.framework.partitions import Partitioning
from edgebatch.warehouse import catalog  # noqa: F401  (declares the tables of the contract)
from edgebatch.warehouse.maintenance import maintain
from edgebatch.warehouse.tables import REGISTRY


@dataclasses.dataclass(frozen=True)
class DeclaredTables(Partitioning):
    """One partition per declared table and day, from the table registry as it is when a
    run is planned (so tables declared by any discovered job are included)."""

    column: str | None = None

    kind = "declared table per day"

    def validate(self, key: str) -> str:
        name, _, day = key.partition("@")
        if name not in REGISTRY:
            known = ", ".join(spec.name for spec in REGISTRY) or "none"
            raise PartitionError(f"{name!r} is not a declared table (tables: {known})")
        try:
            date = dt.date.fromisoformat(day) if day else _today()
        except ValueError:
            raise PartitionError(
                f"maintenance partition {key!r} is TABLE or TABLE@YYYY-MM-DD"
            ) from None
        return f"{name}@{date.isoformat()}"

    def up_to(self, today: dt.date) -> list[str]:
        return [f"{spec.name}@{today.isoformat()}" for spec in REGISTRY]

    def predicate(self, key: str) -> str:
        return "true"


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@job(
    partitions=DeclaredTables(),
    pool="backfill",  # takes only what nobody else needs
    priority=10,
    retry=Retry(attempts=2, backoff_s=30),
    tags=("maintenance",),
)
def maintenance(ctx) -> None:
    """OPTIMIZE to the target file size, VACUUM with the table's retention, checkpoint."""
    name = ctx.partition.partition("@")[0]
    target = int(ctx.params.get("target_file_bytes", 0)) or None
    options = {} if target is None else {"target_file_bytes": target}
    report = maintain(ctx.spark, ctx.root, REGISTRY.get(name), **options)
    ctx.rows_in = report.files_before
    ctx.log.info("maintenance %s", report.describe())
    ctx.log.info("maintenance figures %s", json.dumps(dataclasses.asdict(report), sort_keys=True))


if __name__ == "__main__":
    raise SystemExit(main(maintenance))
