"""`monthly_gold` and `monthly_table` declare what the gold jobs used to spell out in full,
and nothing else."""

from __future__ import annotations

import pytest

from edgebatch.framework.consent import subject_tables
from edgebatch.framework.definitions import Retry, job
from edgebatch.framework.gold import monthly_gold, monthly_table
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


def test_a_monthly_table_says_whose_rows_it_holds_or_why_nobodys(monkeypatch):
    # The registries are process-wide; this test's table must not outlive it (consent_erase
    # walks every registered table).
    from edgebatch.framework import consent
    from edgebatch.warehouse.tables import REGISTRY

    monkeypatch.setattr(consent, "_SUBJECT_BEARING", dict(consent._SUBJECT_BEARING))
    monkeypatch.setattr(consent, "_SUBJECT_FREE", dict(consent._SUBJECT_FREE))
    monkeypatch.setattr(REGISTRY, "_specs", dict(REGISTRY._specs))
    spec = monthly_table("gold/test_gold_rollup", "tenant STRING, month DATE, user STRING",
                         keys=("tenant", "month", "user"), comment="c", subject="user")  # fmt: skip
    assert spec.partition_by == ("tenant", "month")
    assert any(c.table == spec.name and c.subject == "user" for c in subject_tables())
    for neither_or_both in ({}, {"subject": "user", "no_subject": "why"}):
        with pytest.raises(ValueError, match="either subject or no_subject"):
            monthly_table("gold/test_gold_bad", "tenant STRING, month DATE", keys=(),
                          comment="c", **neither_or_both)  # fmt: skip
