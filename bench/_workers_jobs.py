"""The job the workers benchmark queues: one partition that does nothing, so what is
measured is the queue, the claim and the runner's bookkeeping, not Spark work."""

from __future__ import annotations

from edgebatch.framework.definitions import job
from edgebatch.framework.partitions import Unpartitioned


@job(partitions=Unpartitioned(), retry=0, queue="bench")
def bench_noop(ctx):
    """Nothing at all."""
    return None
