"""Queues in definitions and requests: a job names its queue, a request may name another."""

from __future__ import annotations

import pytest

from edgebatch.framework.definitions import define_job
from edgebatch.framework.errors import JobDefinitionError
from edgebatch.framework.planning import plan_partitions, record_run
from edgebatch.framework.requests import RunRequest, RunRequestError
from edgebatch.framework.state import StateStore


def _noop(ctx):
    return None


def test_a_job_waits_in_the_default_queue_unless_it_names_one():
    assert define_job("plain", [_noop]).queue == "default"
    urgent = define_job("urgent", [_noop], queue="critical")
    assert urgent.queue == "critical" and urgent.summary()["queue"] == "critical"


@pytest.mark.parametrize("bad", ["", "Critical", "9lives", "a b", "x" * 65])
def test_a_bad_queue_name_is_refused_naming_the_job(bad):
    with pytest.raises(JobDefinitionError, match=f"job 'j': queue {bad!r} must be lower case"):
        define_job("j", [_noop], queue=bad)
    with pytest.raises(RunRequestError, match=f"run of job 'j': queue {bad!r} must be"):
        RunRequest("j", queue=bad)


def test_a_run_is_created_on_the_jobs_queue_or_the_one_its_request_names(tmp_path):
    job = define_job("urgent", [_noop], queue="critical", priority=5)
    with StateStore(f"sqlite:///{tmp_path / 'state.db'}") as store:
        plain = RunRequest("urgent")
        own, _ = record_run(store, job, plain, plan_partitions(job, plain))
        asked = RunRequest("urgent", queue="backfill")
        other, _ = record_run(store, job, asked, plan_partitions(job, asked))
        assert (own.queue, own.priority) == ("critical", 5)
        assert other.queue == "backfill"
