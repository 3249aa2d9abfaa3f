"""Running one step of an iteration: a Python function, a Spark SQL file or a command.

Whatever a step hands back (a DataFrame, or `{table: DataFrame}`) is committed through
the context, so every kind of step gets the same idempotent per-partition write.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Callable
from typing import Any

from edgebatch.framework.context import IterationContext
from edgebatch.framework.definitions import CommandStep, PythonStep, SqlStep, Step
from edgebatch.framework.errors import StepFailed

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_STATEMENT_END = re.compile(r";[ \t]*(?:\n|$)")
_QUERY = re.compile(r"^\s*(select|with|values|table|from)\b", re.IGNORECASE)


def run_steps(ctx: IterationContext, on_process: Callable[[subprocess.Popen | None], None]) -> None:
    """Execute the job's steps in order: the one boundary between the framework and user code.

    Whatever a step raises comes out as `StepFailed` naming job, partition, step and
    attempt, with the original exception as its cause and its whole traceback (chained
    causes, a JVM stack inside a Py4J error) in `traceback_text`, for the iteration's log.
    """
    for step in ctx.job.steps:
        try:
            run_step(step, ctx, on_process)
        except Exception as exc:
            raise StepFailed.in_user_code(
                exc,
                job=ctx.job.name,
                partition=ctx.bounds["partition"],
                step=step.label,
                attempt=ctx.attempt,
            ) from exc


def run_step(
    step: Step, ctx: IterationContext, on_process: Callable[[subprocess.Popen | None], None]
) -> None:
    """Execute `step` for `ctx` and commit what it returns."""
    if isinstance(step, PythonStep):
        result = step.fn(ctx)
    elif isinstance(step, SqlStep):
        result = _run_sql(step, ctx)
    elif isinstance(step, CommandStep):
        _run_command(step, ctx, on_process)  # its output went to the log: nothing to commit
        result = None
    else:  # pragma: no cover - definitions only build the three kinds
        raise StepFailed(f"job {ctx.job.name!r}: unknown step {step!r}")
    commit(result, ctx, step)


def commit(result: Any, ctx: IterationContext, step: Step) -> None:
    from pyspark.sql import DataFrame

    if result is None:
        return
    if isinstance(result, DataFrame):
        ctx.write(result)
    elif isinstance(result, dict) and all(isinstance(v, DataFrame) for v in result.values()):
        for table, df in result.items():
            ctx.write(df, table=table)
    else:
        raise StepFailed(
            f"job {ctx.job.name!r}, step {step.label!r} returned {type(result).__name__}; "
            "a step returns a DataFrame, a dict of table name to DataFrame, or None"
        )


def split_statements(text: str) -> list[str]:
    """SQL statements of a file: `;` at a line end separates them; `--` comments are dropped."""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("--")]
    return [s.strip() for s in _STATEMENT_END.split("\n".join(lines)) if s.strip()]


def _run_sql(step: SqlStep, ctx: IterationContext) -> Any:
    try:
        text = step.path.read_text()
    except OSError as exc:
        raise StepFailed(f"job {ctx.job.name!r}: cannot read SQL step {step.path}: {exc}") from None
    values = {**ctx.bounds, "run_id": str(ctx.run_id)}
    result = None
    for statement in split_statements(text):
        names = set(_PARAM.findall(statement))
        unknown = names - values.keys()
        if unknown:
            raise StepFailed(
                f"job {ctx.job.name!r}, {step.path.name}: unknown parameter(s) "
                f"{', '.join(sorted(':' + n for n in unknown))} (known: "
                f"{', '.join(':' + k for k in values)})"
            )
        df = ctx.spark.sql(statement, args={n: values[n] for n in names} or None)
        result = df if _QUERY.match(statement) else None
    return result


def _run_command(
    step: CommandStep,
    ctx: IterationContext,
    on_process: Callable[[subprocess.Popen | None], None],
) -> None:
    values = {**ctx.bounds, "run_id": str(ctx.run_id), "attempt": str(ctx.attempt)}
    try:
        argv = [a.format(**values) for a in step.argv]
    except (KeyError, IndexError) as exc:
        raise StepFailed(
            f"job {ctx.job.name!r}, step {step.label!r}: unknown placeholder {exc} "
            f"(known: {', '.join('{' + k + '}' for k in values)})"
        ) from None
    env = {
        **os.environ,
        **dict(step.env),
        "EDGEBATCH_JOB": ctx.job.name,
        "EDGEBATCH_RUN_ID": str(ctx.run_id),
        "EDGEBATCH_PARTITION": ctx.bounds["partition"],
        "EDGEBATCH_WAREHOUSE_ROOT": ctx.root.uri(""),
        **{f"EDGEBATCH_PARTITION_{k.upper()}": v for k, v in ctx.bounds.items()},
    }
    ctx.log.info("running %s", " ".join(argv))
    try:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env=env,
            cwd=str(step.cwd) if step.cwd else None,
            start_new_session=True,
        )
    except OSError as exc:
        raise StepFailed(f"job {ctx.job.name!r}: cannot start {argv[0]}: {exc}") from None
    on_process(proc)
    tail: list[str] = []
    try:

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip("\n")
                tail[:] = [*tail[-19:], line]
                ctx.store.append_log(
                    ctx.run_id, line, logger=step.label, iteration_id=ctx.iteration_id
                )

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        code = proc.wait()
        reader.join(timeout=5)
    finally:
        on_process(None)
    if code != 0:
        last = f"; last output: {tail[-1]}" if tail else ""
        raise StepFailed(f"command {argv[0]} exited with status {code}{last}")
