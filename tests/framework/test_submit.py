"""Isolated runs: the same job through `edgebatch submit` to a real Spark standalone master
and worker records the same kind of run (iterations, rows, logs) as the warm runner."""

from __future__ import annotations

import pytest

from edgebatch.framework.launcher import build_submission, package_archive, submit
from edgebatch.framework.registry import discover
from edgebatch.framework.requests import RunRequest
from edgebatch.framework.state import IterationState, RunState, StateStore, TriggerKind
from tests.framework.conftest import make_settings

pytestmark = pytest.mark.integration

CONF = {
    "spark.ui.enabled": "false",
    "spark.driver.memory": "768m",
    "spark.executor.memory": "512m",
    "spark.cores.max": "1",
}


@pytest.fixture
def submitted(spark_master, tmp_path, monkeypatch):
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    settings = make_settings(tmp_path / "home")
    store = StateStore(settings.state_url)
    registry = discover(settings)

    def go(job_name: str, **kwargs):
        return submit(
            registry.get(job_name),
            RunRequest(job_name, **kwargs),
            settings,
            store,
            master=spark_master.master_url,
            conf=CONF,
        )

    yield go, store
    store.close()


def test_submit_to_a_standalone_master_records_iterations_rows_and_driver_logs(submitted):
    go, store = submitted
    run, code = go("meter_monthly", partitions=("2025-02", "2025-03"))

    lines = store.read_logs(run.id, limit=5000)
    tail = "\n".join(ln.message for ln in lines if "INFO" not in ln.message[:40])[-3000:]
    assert (code, run.state) == (0, RunState.SUCCEEDED), f"{run.error}\n{tail}"
    assert run.trigger == TriggerKind.SUBMIT
    its = store.list_iterations(run.id)
    assert [i.partition_key for i in its] == ["2025-02", "2025-03"]
    assert all(i.state == IterationState.SUCCEEDED for i in its)
    assert [i.rows_out for i in its] == [84, 93]
    assert any(ln.logger == "driver" for ln in lines), "the driver's output is in the run log"
    text = "\n".join(ln.message for ln in lines)
    assert "generating readings from 2025-02-01 to 2025-03-01" in text
    assert "spark://" in text  # the command line, with the master, is recorded


def test_a_failing_submitted_run_maps_to_failed_and_a_nonzero_exit(submitted, faults):
    (faults / "meter_monthly_once.2025-04").write_text("1")
    go, store = submitted
    run, code = go("meter_monthly_once", partitions=("2025-04",))
    assert code != 0
    assert run.state == RunState.FAILED and "injected fault" in run.error


def test_the_submission_is_one_properties_file_and_a_package_archive(tmp_path):
    import zipfile

    settings = make_settings(tmp_path / "home")
    job = discover(settings).get("meter_monthly")
    with StateStore(settings.state_url) as store:
        run = store.create_run(job.name, partitions=["2025-01"])
    sub = build_submission(job, run, settings, master="spark://example:7077", conf={"a.b": "c"})
    props = dict(line.split(" ", 1) for line in sub.properties_file.read_text().splitlines())
    assert props["a.b"] == "c"
    assert props["spark.scheduler.mode"] == "FAIR"
    assert "delta-spark" in props["spark.jars"] and ".cache/jars/delta/*" not in props["spark.jars"]
    assert sub.argv[sub.argv.index("--master") + 1] == "spark://example:7077"
    names = zipfile.ZipFile(sub.archive).namelist()
    assert "spark.edgebatch.executorArchive" in props
    assert "edgebatch/settings.py" in names and "edgebatch/framework/runner.py" in names
    assert package_archive(tmp_path / "again").name == sub.archive.name  # content-addressed
