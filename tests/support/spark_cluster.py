"""A throwaway Spark standalone cluster for tests: one master, one worker (1 core, 1g), loopback.

    with SparkStandalone.started() as cluster:
        cluster.master_url   # spark://127.0.0.1:N, for spark-submit --master
        cluster.submit("job.py", properties_file=..., jars=[...])  # a CompletedProcess

The pyspark wheel has `spark-class` but not the `start-master.sh` scripts, so both
daemons run in the foreground through `spark-class`. Every port is chosen by the
daemon itself (0) and read back: the master's from its log line, the worker's
state from the master's JSON status page. Spark's REST submission server, which
would otherwise take the fixed port 6066, is switched off. The worker's
application folders go to `--work-dir` in the cluster's temp dir, not into the
pyspark package.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.support import daemon
from tests.support.daemon import ServiceStartError

_MASTER_URL = re.compile(r"Starting Spark master at (spark://[\w.\-]+:\d+)")
_MASTER_UI = re.compile(r"Successfully started service 'MasterUI' on port (\d+)")


def spark_home() -> Path:
    """The pyspark package folder: it carries `bin/spark-class` and the jars."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


class SparkStandalone:
    """A running master and worker. Use `SparkStandalone.started()`, or `start()` and `stop()`."""

    def __init__(
        self,
        *,
        worker_cores: int = 1,
        worker_memory: str = "1g",
        daemon_memory: str = "256m",
        start_timeout: float = 90.0,
    ) -> None:
        self.worker_cores = worker_cores
        self.worker_memory = worker_memory
        self.daemon_memory = daemon_memory
        self.start_timeout = start_timeout
        self.root: Path | None = None
        self.master_url = ""
        self.master_ui_url = ""
        self.startup_seconds = 0.0
        self._master: subprocess.Popen[bytes] | None = None
        self._worker: subprocess.Popen[bytes] | None = None

    @property
    def master_log(self) -> Path:
        assert self.root is not None, "not started"
        return self.root / "master.log"

    @property
    def worker_log(self) -> Path:
        assert self.root is not None, "not started"
        return self.root / "worker.log"

    @property
    def work_dir(self) -> Path:
        assert self.root is not None, "not started"
        return self.root / "work"

    def env(self) -> dict[str, str]:
        """Environment for the daemons and for a `spark-submit` against them."""
        env = dict(os.environ)
        env.update(
            SPARK_HOME=str(spark_home()),
            SPARK_LOCAL_IP="127.0.0.1",
            SPARK_DAEMON_MEMORY=self.daemon_memory,
            SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false",
            PYSPARK_PYTHON=sys.executable,
            PYSPARK_DRIVER_PYTHON=sys.executable,
        )
        return env

    def start(self) -> SparkStandalone:
        """Start the master, then the worker, and return once the worker is ALIVE."""
        if self._master is not None:
            raise RuntimeError("this SparkStandalone is already started")
        spark_class = spark_home() / "bin" / "spark-class"
        if not spark_class.exists():
            raise ServiceStartError(f"no {spark_class}: is pyspark installed in this venv?")
        began = time.monotonic()
        self.root = Path(tempfile.mkdtemp(prefix="edgebatch-spark-"))
        self.work_dir.mkdir()
        env = self.env()
        atexit.register(self.stop)
        try:
            self._master = daemon.spawn(
                [
                    str(spark_class),
                    "org.apache.spark.deploy.master.Master",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--webui-port",
                    "0",
                ],
                self.master_log,
                env=env,
                cwd=self.root,
            )
            self.master_url, ui_port = daemon.wait_ready(
                self._master_addresses,
                what="Spark master",
                process=self._master,
                log=self.master_log,
                timeout=self.start_timeout,
            )
            self.master_ui_url = f"http://127.0.0.1:{ui_port}"
            self._worker = daemon.spawn(
                [
                    str(spark_class),
                    "org.apache.spark.deploy.worker.Worker",
                    self.master_url,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--webui-port",
                    "0",
                    "--cores",
                    str(self.worker_cores),
                    "--memory",
                    self.worker_memory,
                    "--work-dir",
                    str(self.work_dir),
                ],
                self.worker_log,
                env=env,
                cwd=self.root,
            )
            remaining = max(5.0, self.start_timeout - (time.monotonic() - began))
            daemon.wait_ready(
                self._worker_alive,
                what=f"Spark worker registering with {self.master_url}",
                process=self._worker,
                log=self.worker_log,
                timeout=remaining,
            )
        except BaseException:
            # Keep the folder: the error names its logs.
            self.stop(keep_files=True)
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self, *, keep_files: bool = False) -> None:
        """Stop the worker (and its executors), then the master; delete the temp dir."""
        daemon.stop(self._worker)
        daemon.stop(self._master)
        self._worker = self._master = None
        if self.root is not None and not keep_files:
            shutil.rmtree(self.root, ignore_errors=True)
        atexit.unregister(self.stop)

    def submit_command(
        self,
        script: Path | str,
        *args: str,
        properties_file: Path | None = None,
        jars: Sequence[Path | str] = (),
        conf: Mapping[str, str] | None = None,
    ) -> list[str]:
        """The `spark-submit` command line for a PySpark script against this master."""
        cmd = [str(spark_home() / "bin" / "spark-submit"), "--master", self.master_url]
        if properties_file is not None:
            cmd += ["--properties-file", str(properties_file)]
        if jars:
            cmd += ["--jars", ",".join(str(j) for j in jars)]
        for key, value in (conf or {}).items():
            cmd += ["--conf", f"{key}={value}"]
        return [*cmd, str(script), *args]

    def submit(
        self,
        script: Path | str,
        *args: str,
        cwd: Path | None = None,
        timeout: float = 300.0,
        **options: Any,
    ) -> subprocess.CompletedProcess[str]:
        """Run `spark-submit` (client deploy mode) to the end; stdout and stderr captured."""
        return subprocess.run(
            self.submit_command(script, *args, **options),
            env=self.env(),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def status(self) -> dict:
        """The master's JSON status page: workers, cores, running and completed apps."""
        with urllib.request.urlopen(f"{self.master_ui_url}/json/", timeout=5) as reply:
            return json.load(reply)

    @classmethod
    @contextlib.contextmanager
    def started(cls, **kwargs: object) -> Iterator[SparkStandalone]:
        cluster = cls(**kwargs).start()  # type: ignore[arg-type]
        try:
            yield cluster
        finally:
            cluster.stop()

    def _master_addresses(self) -> tuple[str, int] | None:
        text = self.master_log.read_text(errors="replace")
        url, ui = _MASTER_URL.search(text), _MASTER_UI.search(text)
        if url and ui and "New state: ALIVE" in text:
            return url.group(1), int(ui.group(1))
        return None

    def _worker_alive(self) -> bool | None:
        workers = self.status().get("workers", [])
        return True if any(w.get("state") == "ALIVE" for w in workers) else None
