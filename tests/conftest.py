"""Fixtures shared by the whole suite: one SparkSession and one broker per test session, a
test's own broker when it stops or kills one, fresh roots per test."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.extras import require
from tests.support.mosquitto import Mosquitto

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from edgebatch.warehouse.uri import WarehouseRoot
    from tests.support.hdfs import MiniHdfs
    from tests.support.spark_cluster import SparkStandalone

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    """The suite's only SparkSession: local, two cores, no UI, Delta from the project's jars."""
    require("pyspark")
    from edgebatch.framework.session import build_session
    from edgebatch.settings import Settings

    home = tmp_path_factory.mktemp("spark-home")
    session = build_session(
        Settings(home=home),
        overrides={
            "spark.master": "local[2]",
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.driver.memory": "1g",
            "spark.sql.warehouse.dir": str(home / "spark-warehouse"),
            # Delta keeps every table it has opened (its log, snapshot and their plans,
            # about 3 MB each) for an hour, up to 10,000 tables: a worker opens a few
            # dozen, but this session opens over a thousand test tables, and with them
            # held its 1 GB heap was half full of old snapshots by the gold jobs' tests
            # (G1 collecting all the time, the throughput collector in full collections).
            "spark.databricks.delta.delta.log.cacheSize": "32",
        },
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture
def warehouse_root(tmp_path: Path) -> WarehouseRoot:
    from edgebatch.warehouse.uri import WarehouseRoot

    return WarehouseRoot.parse((tmp_path / "warehouse").as_uri())


@pytest.fixture(scope="session")
def hdfs() -> Iterator[MiniHdfs]:
    """A single-node HDFS (NameNode + DataNode, WebHDFS on) on loopback, for the whole session.

    `.uri` (hdfs://127.0.0.1:N, for Spark and Delta), `.webhdfs_url` (http://127.0.0.1:M,
    for the `hdfs` package), `.client(user)`, `.startup_seconds`; permission checks off.
    """
    from tests.support.hdfs import MiniHdfs

    with MiniHdfs.started() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def spark_master() -> Iterator[SparkStandalone]:
    """A Spark standalone master and one worker (1 core, 1g) on loopback, for the whole session.

    `.master_url` (spark://127.0.0.1:N), `.master_ui_url`, `.env()` (the environment for
    `spark-submit` against it), `.status()`, `.startup_seconds`.
    """
    from tests.support.spark_cluster import SparkStandalone

    with SparkStandalone.started() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """The session's Mosquitto, shared by the agent's and the warehouse's tests: persistence
    on, Mosquitto's default autosave. Never stopped or killed by a test: use `make_broker`."""
    b = Mosquitto(tmp_path_factory.mktemp("mosquitto"), autosave_interval=None).start()
    yield b
    b.kill()


@pytest.fixture
def make_broker(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    """`make_broker(autosave_interval=1, persistence=True, passwords=None, tls=None,
    start=True)`: a Mosquitto of the test's own that it may stop, kill and restart; every
    one made is killed when the test ends."""
    made: list[Mosquitto] = []

    def make(*, start: bool = True, **options: object) -> Mosquitto:
        b = Mosquitto(tmp_path / f"mosquitto-{len(made)}", **options)  # type: ignore[arg-type]
        made.append(b)
        return b.start() if start else b

    yield make
    for b in made:
        b.kill()
