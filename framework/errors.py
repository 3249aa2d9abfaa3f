"""Errors of the framework part: each names the job, the partition or the setting at fault."""

from edgebatch.errors import EdgebatchError


class FrameworkError(EdgebatchError):
    """Base of the framework's errors."""


class SparkConfError(FrameworkError):
    """spark-defaults.conf or a Spark setting in the project config is wrong."""


class JobDefinitionError(FrameworkError):
    """A job is declared wrongly (bad name, unknown pool, a cycle in upstream jobs)."""


class UnknownJobError(FrameworkError):
    """No job of that name in the registry; the message lists close names."""


class PartitionError(FrameworkError):
    """A partition key the job's partitioning rejects."""


class OutputSchemaError(FrameworkError):
    """A step produced a frame that the job's declared output table does not accept."""


class StepFailed(FrameworkError):
    """A step of an iteration failed; the message names job, partition, step and cause."""


class RunCancelled(FrameworkError):
    """The run or iteration was cancelled while it ran."""
