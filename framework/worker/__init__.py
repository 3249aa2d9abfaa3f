"""Workers: warm Spark drivers that claim queued runs of their queues and execute them.

`Worker` is the library; `edgebatch worker` (in the command line) builds one from the
project config and serves until SIGTERM or SIGINT.
"""

from edgebatch.framework.worker.allocation import executor_bounds, worker_spark_conf
from edgebatch.framework.worker.health import HealthSampler
from edgebatch.framework.worker.worker import Worker, check_worker

__all__ = ["HealthSampler", "Worker", "check_worker", "executor_bounds", "worker_spark_conf"]
