"""A worker's health as it reports it with each heartbeat: host, process, runs and Spark.

CPU figures are psutil's "since the last call", so one sampler lives as long as the
worker and each heartbeat reports the interval since the previous one.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psutil

if TYPE_CHECKING:
    from pyspark import SparkContext

    from edgebatch.framework.runner import Runner

log = logging.getLogger(__name__)


def executor_count(sc: SparkContext) -> int:
    """Executors the application has now, the driver not counted (0 in local mode).

    Read from Spark's status tracker, the same store its REST API and UI read.
    """
    infos = sc._jsc.sc().statusTracker().getExecutorInfos()
    return max(0, len(infos) - 1)


class HealthSampler:
    """Samples one worker's health; `sample()` returns the JSON the store keeps."""

    def __init__(self, runner: Runner, slots: int) -> None:
        self.runner = runner
        self.slots = slots
        self._process = psutil.Process()
        psutil.cpu_percent(interval=None)
        self._process.cpu_percent(interval=None)

    def sample(self) -> dict[str, Any]:
        memory = psutil.virtual_memory()
        health: dict[str, Any] = {
            "sampled_at": datetime.now(UTC).isoformat(),
            "cpu_percent": psutil.cpu_percent(interval=None),
            "process_cpu_percent": self._process.cpu_percent(interval=None),
            "memory_percent": memory.percent,
            "memory_available_bytes": memory.available,
            "process_rss_bytes": self._process.memory_info().rss,
            "slots": self.slots,
            "running_runs": len(self.runner.active_runs()),
            "running_iterations": self.runner.running_iterations(),
        }
        sc = self.runner.spark.sparkContext
        if sc is not None:
            health.update(
                spark_master=sc.master,
                spark_app_id=sc.applicationId,
                spark_ui_url=sc.uiWebUrl,
            )
            try:
                health["executors"] = executor_count(sc)
            except Exception as exc:  # a stopping JVM must not stop the heartbeat
                log.debug("executor count unavailable: %s", exc)
                health["executors"] = None
        return health
