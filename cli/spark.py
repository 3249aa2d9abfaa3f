"""Spark for the commands a person types: its start-up noise goes to a log file, not the terminal.

Starting a JVM prints a dozen lines (JVM warnings, log4j's profile, Hadoop's native
library, the loopback address) before any answer. A command that needs Spark starts the
JVM itself, with its stdout and stderr appended to `var/spark-driver.log` and log4j
configured by the properties file bundled here to write to the same file; the
session's settings are the project's, as `build_session` layers them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from edgebatch.settings import Settings

LOG_NAME = "spark-driver.log"
_DRIVER_OPTIONS = "spark.driver.extraJavaOptions"


def quiet_session(settings: Settings) -> SparkSession:
    """The process's SparkSession, its JVM's output in `{var}/spark-driver.log`."""
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    from edgebatch.framework.session import build_session, spark_conf

    if SparkContext._active_spark_context is None:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        log = settings.var_dir / LOG_NAME
        log.parent.mkdir(parents=True, exist_ok=True)
        config = resources.files("edgebatch.cli").joinpath("log4j2.properties")
        conf = spark_conf(settings)
        options = f"-Dlog4j2.configurationFile={config} -Dedgebatch.spark.log={log}"
        conf[_DRIVER_OPTIONS] = f"{conf.get(_DRIVER_OPTIONS, '')} {options}".strip()
        spark_conf_value = SparkConf(loadDefaults=False).setAll(list(conf.items()))
        with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
            gateway = launch_gateway(
                spark_conf_value, popen_kwargs={"stdout": out, "stderr": subprocess.STDOUT}
            )
        SparkContext(conf=spark_conf_value, gateway=gateway)
    spark = build_session(settings)
    spark.sparkContext.setLogLevel("ERROR")
    return spark
