"""A run that really fails in the runner (the suite's Spark session) is announced: the
dispatcher reads the outcome from the store, nothing in the runner calls it."""

from __future__ import annotations

import pytest

from edgebatch.framework.definitions import Retry, define_job
from edgebatch.framework.notify.dispatcher import Dispatcher
from edgebatch.framework.partitions import Daily
from edgebatch.framework.registry import JobRegistry
from edgebatch.framework.requests import RunRequest
from edgebatch.framework.state import RunState, StateStore

pytestmark = pytest.mark.integration


def _meter_check(ctx) -> None:
    """Fails one day, as a job meeting bad data does."""
    if ctx.partition == "2026-02-28":
        raise ValueError("meter 17 reports a negative reading")


def test_a_run_failed_by_the_runner_reaches_its_contacts(spark, tmp_path, hooks, mail, settings):
    from edgebatch.framework.runner import Runner

    job = define_job(
        "meter_check",
        [_meter_check],
        partitions=Daily(column="date"),
        retry=Retry(attempts=1),
        contacts=[hooks.url("/runner"), "meters@plant.test"],
        source_file=__file__,
    )
    registry = JobRegistry([job])
    with StateStore(settings.state_url) as store:
        runner = Runner(spark, store, settings, registry)
        try:
            run = runner.run(RunRequest("meter_check", start="2026-02-27", end="2026-02-28"))
        finally:
            runner.close()
        assert run.state == RunState.FAILED
        done = Dispatcher(store, registry, settings).run_once()
        assert (done.found, done.delivered) == (((run.id, "failure"),), 2)
        log = [line.message for line in store.read_logs(run.id)]
    (post,) = hooks.received("/runner")
    assert post.body["failed_partitions"] == ["2026-02-28"]
    assert "meter 17 reports a negative reading" in post.body["error"]
    assert "2026-02-28" in mail.to("meters@plant.test")[0].get_content()
    assert any(line.startswith("notified failure to meters@plant.test") for line in log)
