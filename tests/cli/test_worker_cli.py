"""`edgebatch worker` refuses a bad queue, slot count or pool before it starts Spark,
naming what is wrong and the fix."""

from __future__ import annotations

import pytest

from edgebatch.cli.main import main
from tests.framework.worker.test_worker_kill import write_config


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--queue", "Urgent"], "queue name 'Urgent' must be lower case letters"),
        (["--slots", "0"], "a worker needs at least 1 slot, got 0"),
        (
            ["--queue", "etl"],
            "queue 'etl' runs in fair-scheduler pool 'etl', which the allocation file does not "
            "declare (pools: backfill, critical, default); declare it there or set "
            "[worker.queue.etl] pool",
        ),
    ],
)
def test_a_bad_worker_command_is_refused_with_the_reason(tmp_path, capsys, args, message):
    home = tmp_path / "home"
    home.mkdir()
    config = write_config(home, queue="default")
    assert main(["--config", str(config), "worker", *args]) == 2
    assert message in capsys.readouterr().err


def test_a_bad_worker_section_names_the_key_and_the_file(tmp_path, capsys):
    home = tmp_path / "home"
    home.mkdir()
    config = write_config(home, queue="default", extra="[worker.queue.critical]\nmax_exec = 3\n")
    assert main(["--config", str(config), "worker"]) == 2
    err = capsys.readouterr().err
    assert f"unknown key 'max_exec' in [worker.queue.critical] of {config}" in err
    assert "did you mean 'max_executors'?" in err


def test_workers_lists_each_worker_with_its_queues_and_health(tmp_path, capsys):
    from edgebatch.framework.state import StateStore

    home = tmp_path / "home"
    home.mkdir()
    config = write_config(home, queue="default")
    with StateStore(f"sqlite:///{home / 'state.db'}") as store:
        store.register_worker("host-a:1:aaa", queues=["critical", "default"])
        store.heartbeat_worker(
            "host-a:1:aaa",
            {"cpu_percent": 37.4, "memory_percent": 61.0, "running_runs": 1, "slots": 4},
        )
        store.register_worker("host-b:2:bbb", queues=["backfill"])
        store.stop_worker("host-b:2:bbb")
    assert main(["--config", str(config), "workers", "--state", "running"]) == 0
    out = capsys.readouterr().out
    assert "host-a:1:aaa" in out and "critical,default" in out and "37%" in out
    assert "1/4" in out and "host-b" not in out
