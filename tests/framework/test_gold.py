"""`monthly_gold` declares what the gold jobs used to spell out in full, and nothing else."""

from __future__ import annotations

from edgebatch.framework.definitions import Retry, job
from edgebatch.framework.gold import monthly_gold
from edgebatch.framework.partitions import Monthly
from edgebatch.framework.scheduler import AfterUpstream, Schedule


def rollup(ctx):
    """A month of something."""


def test_monthly_gold_is_the_full_declaration_of_a_monthly_gold_job():
    short = monthly_gold("health", inputs=["bronze/x"], outputs=["gold/y"], after="bronze_load",
                         priority=30)(rollup)  # fmt: skip
    full = job(
        inputs=["bronze/x"],
        outputs=["gold/y"],
        partitions=Monthly(column="month"),
        pool="default",
        priority=30,
        retry=Retry(attempts=3, backoff_s=10),
        timeout_s=3600,
        upstream=("bronze_load",),
        tags=("gold", "health"),
        schedule=Schedule(triggers=[AfterUpstream("bronze_load")]),
    )(rollup)
    assert short == full
    assert short.definition_hash() == full.definition_hash()


def test_monthly_gold_runs_after_silver_by_default_and_takes_any_other_job_option():
    gold = monthly_gold("x", inputs=[], outputs=["gold/z"], sla="2h", in_order=True)(rollup)
    assert (gold.upstream, gold.priority, gold.in_order) == (("silver_readings",), 40, True)
    assert list(gold.schedule.triggers) == [AfterUpstream("silver_readings")]
    assert gold.sla is not None and gold.sla.total_seconds() == 7200
