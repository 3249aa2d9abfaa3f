"""Errors of the framework part: each names the job, the partition or the setting at fault."""

from edgebatch.errors import EdgebatchError


class FrameworkError(EdgebatchError):
    """Base of the framework's errors."""


class SparkConfError(FrameworkError):
    """spark-defaults.conf or a Spark setting in the project config is wrong."""
