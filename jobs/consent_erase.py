"""Consent withdrawals, carried out: delete withdrawn subjects from every silver and gold table.

Readers stop seeing a subject as soon as the withdrawal is loaded (the consent gate
filters every read of silver and gold); this job then deletes the rows themselves
with a Delta DELETE in every table registered as subject-bearing
(`framework.consent.subject_bearing`), so a gold job's table is covered by declaring
it. Old table versions keep the rows until VACUUM removes files older than the
table's `delta.deletedFileRetentionDuration` (docs/silver.md, "Erasure").

    edgebatch run consent_erase
"""

from __future__ import annotations

from edgebatch.framework.consent import erase_denied
from edgebatch.framework.definitions import Retry, job
from edgebatch.framework.entry import main
from edgebatch.framework.partitions import Unpartitioned
from edgebatch.warehouse.reference import CONSENT


@job(
    inputs=[CONSENT.name],
    outputs=[],
    partitions=Unpartitioned(),
    pool="default",
    priority=70,
    retry=Retry(attempts=3, backoff_s=10),
    timeout_s=3600,
    upstream=("reference_load",),
    tags=("consent", "silver", "gold"),
)
def consent_erase(ctx):
    """Delete the rows of subjects without consent from every subject-bearing table."""
    deleted = erase_denied(ctx.spark, ctx.root)
    ctx.rows_out += sum(deleted.values())
    ctx.log.info(
        "consent erase: %s",
        ", ".join(f"{table}: {n} rows deleted" for table, n in deleted.items()) or "no table",
    )
    return None


if __name__ == "__main__":
    raise SystemExit(main(consent_erase))
