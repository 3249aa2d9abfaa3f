"""Isolated runs: `edgebatch submit JOB` as a spark-submit application of its own.

The launcher records the run first, writes the session's layered configuration
(spark-defaults.conf, project config, per-run overrides) into one properties file with
absolute paths, packs the project for the executors (the driver adds it with
`addPyFile`), starts spark-submit on the job's module, copies the driver's output
into the run's log while it runs, and maps the exit status to the run's state. The
driver itself claims the run (and its lease) and records iterations, as the warm runner does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import logging
import os
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from edgebatch.framework.definitions import Job
from edgebatch.framework.errors import FrameworkError
from edgebatch.framework.planning import plan_partitions, record_run
from edgebatch.framework.registry import record_job
from edgebatch.framework.requests import RunRequest
from edgebatch.framework.session import spark_conf
from edgebatch.framework.state import NewLogLine, Run, RunState, StateStore, TriggerKind
from edgebatch.settings import Settings

# The parts executors may import (the command line and the API run on the driver only).
PARTS = ("edge", "warehouse", "framework", "jobs")
_LEVELS = ("ERROR", "WARN", "INFO", "DEBUG")
EXECUTOR_ARCHIVE_CONF = "spark.edgebatch.executorArchive"
log = logging.getLogger(__name__)


def spark_submit_program() -> str:
    """spark-submit of `$SPARK_HOME`, else the one the pyspark wheel carries."""
    if os.environ.get("SPARK_HOME"):
        return str(Path(os.environ["SPARK_HOME"]) / "bin" / "spark-submit")
    import pyspark

    return str(Path(pyspark.__file__).parent / "bin" / "spark-submit")


def package_files() -> list[tuple[Path, str]]:
    """The installed package's Python files, each with its name inside the package.

    Read from where Python imports `edgebatch` (a wheel in site-packages, or a development
    install), never from a checkout beside it. A part mapped from a folder of its own (a
    plain editable install) is walked from its own folder.
    """
    import edgebatch

    root = Path(edgebatch.__file__).parent
    files = {name: path for path, name in _python_files(root, "edgebatch")}
    for part in PARTS:
        folder = Path(importlib.import_module(f"edgebatch.{part}").__file__ or "").parent
        if not (root / part).is_dir():
            files.update({name: path for path, name in _python_files(folder, f"edgebatch/{part}")})
    return sorted(((path, name) for name, path in files.items()), key=lambda f: f[1])


def _python_files(base: Path, prefix: str) -> Iterable[tuple[Path, str]]:
    for path in sorted(base.rglob("*.py")):
        rel = path.relative_to(base)
        if "__pycache__" in rel.parts or "migrations" in rel.parts:
            continue
        yield path, "/".join([prefix, *rel.parts])


def package_archive(dest_dir: Path) -> Path:
    """`edgebatch.zip` of the installed package's Python files, for the executors.

    Named by content hash, so executors of different versions never mix and an
    unchanged project is not packed again.
    """
    files = package_files()
    digest = hashlib.sha256()
    for path, name in files:
        digest.update(name.encode())
        digest.update(path.read_bytes())
    target = dest_dir / f"edgebatch-{digest.hexdigest()[:12]}.zip"
    if not target.exists():
        dest_dir.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for path, name in files:
                zf.write(path, name)
        tmp.replace(target)
    return target


@dataclasses.dataclass(frozen=True)
class Submission:
    """A spark-submit command line for one run, and where its pieces live."""

    argv: list[str]
    properties_file: Path
    archive: Path
    env: dict[str, str]


def build_submission(
    job: Job,
    run: Run,
    settings: Settings,
    *,
    master: str | None = None,
    deploy_mode: str = "client",
    conf: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> Submission:
    if not job.source_file or not Path(job.source_file).exists():
        raise FrameworkError(f"job {job.name!r} has no module file to submit ({job.source_file!r})")
    if deploy_mode != "client":
        raise FrameworkError(
            "edgebatch submits Python drivers in client mode (Spark standalone runs Python "
            "applications only so); use --deploy-mode client"
        )
    merged = spark_conf(settings, conf)
    master = master or merged.pop("spark.master", "local[*]")
    merged.pop("spark.master", None)
    merged["spark.app.name"] = f"edgebatch:{job.name}:run-{run.id}"
    merged.setdefault("spark.pyspark.python", sys.executable)
    merged.setdefault("spark.pyspark.driver.python", sys.executable)
    out = settings.var_dir / "submit"
    out.mkdir(parents=True, exist_ok=True)
    archive = package_archive(settings.var_dir / "dist")
    # Not --py-files: that would put the archive before the installed package on the
    # driver's path, where the state store's migrations and the config files are not.
    # The driver adds it for the executors once edgebatch is imported (entry.py).
    merged[EXECUTOR_ARCHIVE_CONF] = str(archive)
    props = out / f"run-{run.id}.conf"
    props.write_text("".join(f"{k} {v}\n" for k, v in sorted(merged.items())))
    argv = [
        spark_submit_program(),
        "--master",
        master,
        "--deploy-mode",
        deploy_mode,
        "--properties-file",
        str(props),
        job.source_file,
        "--run-id",
        str(run.id),
        "--job",
        job.name,
    ]
    if config_file:
        argv += ["--config", str(config_file)]
    env = {**os.environ, "EDGEBATCH_HOME": str(settings.home), "PYSPARK_PYTHON": sys.executable}
    if settings.state.url:
        env["EDGEBATCH_STATE_URL"] = settings.state.url
    if settings.warehouse.root:
        env["EDGEBATCH_WAREHOUSE_ROOT"] = settings.warehouse.root
    return Submission(argv=argv, properties_file=props, archive=archive, env=env)


def reap(store: StateStore, settings: Settings) -> None:
    """Fail other processes' orphaned runs, as every edgebatch process that looks does."""
    fw = settings.framework
    for reaped in store.reap_orphans(unleased_grace=fw.lease_ttl_s * 2, queued_ttl=fw.queued_ttl_s):
        log.warning("run %s of %s: %s", reaped.run_id, reaped.job, reaped.reason)


def _level(line: str) -> str:
    head = line[:40]
    for level in _LEVELS:
        if f" {level} " in head:
            return "WARNING" if level == "WARN" else level
    return "INFO"


class _LogPump:
    """Copies a process's output into the run's log in small batches."""

    def __init__(self, store: StateStore, run_id: int, echo: bool) -> None:
        self.store, self.run_id, self.echo = store, run_id, echo
        self.tail: list[str] = []

    def follow(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        batch: list[NewLogLine] = []
        last = time.monotonic()
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            if self.echo:
                print(line, flush=True)
            self.tail = [*self.tail[-19:], line]
            batch.append(NewLogLine(line, level=_level(line), logger="driver"))
            if len(batch) >= 200 or time.monotonic() - last > 0.5:
                self.store.append_logs(self.run_id, batch)
                batch, last = [], time.monotonic()
        if batch:
            self.store.append_logs(self.run_id, batch)


def submit(
    job: Job,
    request: RunRequest,
    settings: Settings,
    store: StateStore,
    *,
    master: str | None = None,
    conf: Mapping[str, str] | None = None,
    config_file: str | None = None,
    echo: bool = False,
) -> tuple[Run, int]:
    """Create the run, spark-submit it, follow it; returns the finished run and the exit code.

    Planned here, without Spark: a loaded partition runs again only when named or
    rerun (`edgebatch run` also checks the inputs for late data). A request whose
    `run_key` made a run already gets that run back, and nothing is submitted.
    """
    reap(store, settings)
    plan = plan_partitions(job, request, loaded=store.loaded_partitions(job.name))
    record_job(store, job)
    run, created = record_run(store, job, request.replace(trigger=TriggerKind.SUBMIT), plan)
    if not created:
        return run, 0 if run.state == RunState.SUCCEEDED else (1 if run.finished else 0)
    sub = build_submission(job, run, settings, master=master, conf=conf, config_file=config_file)
    store.append_log(run.id, "spark-submit: " + " ".join(sub.argv), logger="launcher")
    proc = subprocess.Popen(
        sub.argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        env=sub.env,
        cwd=str(settings.home),
    )
    pump = _LogPump(store, run.id, echo)
    reader = threading.Thread(target=pump.follow, args=(proc,), daemon=True)
    reader.start()
    try:
        while True:
            try:
                code = proc.wait(timeout=settings.framework.heartbeat_s)
                break
            except subprocess.TimeoutExpired:
                reap(store, settings)  # a launcher looks at the store too: no ghost runs
    except KeyboardInterrupt:
        proc.terminate()
        code = proc.wait()
    reader.join(timeout=10)
    final = store.get_run(run.id)
    if not final.finished:
        reason = f"spark-submit exited with status {code} before the run finished"
        if pump.tail:
            reason += f"; last output: {pump.tail[-1][:300]}"
        last = NewLogLine(reason, level="ERROR", logger="launcher")
        final = store.transition_run(run.id, RunState.FAILED, error=reason, log=last)
    elif code == 0 and final.state != RunState.SUCCEEDED:
        code = 1
    return final, code
