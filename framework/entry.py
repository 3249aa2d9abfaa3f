"""A job module's `__main__`: the same run, recorded the same way, under plain spark-submit.

Every module in `jobs/` ends with::

    if __name__ == "__main__":
        raise SystemExit(main(my_job))

so `spark-submit --properties-file spark-defaults.conf jobs/NAME.py --partition P` plans,
executes and records a run like `edgebatch run NAME --partition P` does: the same
options make the same `RunRequest`. `edgebatch submit` passes `--run-id` of the run it
has already created and follows.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from edgebatch.framework.definitions import Job
from edgebatch.framework.requests import add_request_arguments, request_from_arguments
from edgebatch.framework.state import TriggerKind


def arguments(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="run this job's partitions")
    add_request_arguments(p)
    p.add_argument("--run-id", type=int, help="execute this queued run (edgebatch submit)")
    p.add_argument("--config", help="project config file")
    p.add_argument("--root", help="warehouse root URI (default: the config's [warehouse] root)")
    p.add_argument("--job", help="which job of this module (when it declares several)")
    return p


def under_spark_submit() -> bool:
    """spark-submit starts the Python driver with a gateway to its JVM already running."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def main(*jobs: Job, argv: list[str] | None = None) -> int:
    """Run one of `jobs` (the only one, or the one `--job` names) as the command line says."""
    if not jobs:
        raise ValueError("main() needs the module's job(s)")
    parser = arguments(os.path.basename(jobs[0].source_file) or jobs[0].name)
    args = parser.parse_args(argv)
    by_name = {j.name: j for j in jobs}
    if args.job is None and len(jobs) > 1:
        parser.error(
            f"this module declares several jobs; pick one with --job ({', '.join(by_name)})"
        )
    if args.job is not None and args.job not in by_name:
        parser.error(f"--job {args.job!r} is not declared here ({', '.join(by_name)})")
    job = by_name[args.job] if args.job else jobs[0]
    from edgebatch.framework.registry import discover
    from edgebatch.framework.runner import Runner
    from edgebatch.framework.state import RunState, StateStore
    from edgebatch.settings import load_settings

    settings = load_settings(args.config)
    if args.root:
        warehouse = dataclasses.replace(settings.warehouse, root=args.root)
        settings = dataclasses.replace(settings, warehouse=warehouse)
    request = request_from_arguments(job.name, args, trigger=TriggerKind.SUBMIT)
    if under_spark_submit():
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.getOrCreate()
        archive = spark.conf.get("spark.edgebatch.executorArchive", None)
        if archive:  # the project for the executors; this driver imports the installed one
            spark.sparkContext.addPyFile(archive)
    else:
        from edgebatch.framework.session import build_session

        spark = build_session(settings)
    registry = discover(settings)
    registry.add(job)
    registry.check()
    with StateStore.from_settings(settings) as store:
        runner = Runner(spark, store, settings, registry)
        try:
            if args.run_id is not None:
                runner.start(args.run_id)
                run = runner.wait(args.run_id)
            else:
                run = runner.run(request)
        finally:
            runner.close()
        print(f"run {run.id} of {run.job}: {run.state}" + (f" ({run.error})" if run.error else ""))
        sys.stdout.flush()
        return 0 if run.state == RunState.SUCCEEDED else 1
