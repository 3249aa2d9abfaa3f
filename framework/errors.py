"""Errors of the framework part: each names the job, the partition or the setting at fault."""

from __future__ import annotations

import traceback

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
    """A step of an iteration failed; the message names job, partition, step and cause.

    Made at the boundary around user code (`steps.run_steps`): `traceback_text` is the
    whole traceback of what the step raised, which the runner writes to the
    iteration's log; the message itself keeps to the first line of the cause.
    """

    def __init__(
        self,
        message: str,
        *,
        job: str = "",
        partition: str = "",
        step: str = "",
        attempt: int = 0,
        traceback_text: str = "",
    ) -> None:
        super().__init__(message)
        self.job, self.partition, self.step, self.attempt = job, partition, step, attempt
        self.traceback_text = traceback_text

    @classmethod
    def in_user_code(
        cls, exc: BaseException, *, job: str, partition: str, step: str, attempt: int
    ) -> StepFailed:
        text = str(exc).strip()
        first = text.splitlines()[0] if text else ""
        where = f"job {job!r}, partition {partition!r}, step {step!r}, attempt {attempt}"
        return cls(
            f"{where}: {type(exc).__name__}" + (f": {first}" if first else ""),
            job=job,
            partition=partition,
            step=step,
            attempt=attempt,
            traceback_text="".join(traceback.format_exception(exc)),
        )


class RunCancelled(FrameworkError):
    """The run or iteration was cancelled while it ran."""
