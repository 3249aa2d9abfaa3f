"""Jobs are discovered, not listed: every `Job` at the top level of a module in `jobs/`
(and of the extra modules or folders named in `[framework] jobs`) is registered.

The registry checks the whole graph once: names unique, upstream jobs known, no cycle,
pools that exist in the fair-scheduler file. Each error names the job and the problem.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import pkgutil
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType

from edgebatch.framework.definitions import Job
from edgebatch.framework.errors import JobDefinitionError, UnknownJobError

JOBS_PACKAGE = "edgebatch.jobs"


def pools_of(allocation_file: Path) -> set[str]:
    """The pool names a fair-scheduler allocation file declares (`default` always exists)."""
    try:
        tree = ET.parse(allocation_file)
    except (OSError, ET.ParseError) as exc:
        raise JobDefinitionError(f"cannot read pools from {allocation_file}: {exc}") from None
    return {p.get("name", "") for p in tree.getroot().iter("pool")} | {"default"}


class JobRegistry:
    """The jobs of a project by name, checked as a graph."""

    def __init__(self, jobs: Iterable[Job] = (), *, pools: set[str] | None = None) -> None:
        self._jobs: dict[str, Job] = {}
        for job in jobs:
            self.add(job)
        self.pools = pools

    def add(self, job: Job) -> Job:
        known = self._jobs.get(job.name)
        # The same module imported twice (as __main__ under spark-submit) is no clash.
        if known is not None and known.source_file != job.source_file:
            raise JobDefinitionError(
                f"job {job.name!r} is declared twice: in {known.source_file} "
                f"and in {job.source_file}"
            )
        self._jobs[job.name] = job
        return job

    def get(self, name: str) -> Job:
        try:
            return self._jobs[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._jobs, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            known = ", ".join(sorted(self._jobs)) or "none"
            raise UnknownJobError(f"no job named {name!r}{hint} (jobs: {known})") from None

    def __iter__(self) -> Iterator[Job]:
        return iter(sorted(self._jobs.values(), key=lambda j: j.name))

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, name: object) -> bool:
        return name in self._jobs

    def check(self) -> JobRegistry:
        """Validate the graph: upstream names, cycles, pools. Returns self."""
        for job in self:
            for up in job.upstream:
                if up not in self._jobs:
                    raise JobDefinitionError(f"job {job.name!r} names unknown upstream job {up!r}")
            if self.pools is not None and job.pool not in self.pools:
                raise JobDefinitionError(
                    f"job {job.name!r} asks for pool {job.pool!r}, which the fair-scheduler "
                    f"file does not declare (pools: {', '.join(sorted(self.pools))})"
                )
        self._check_cycles()
        self._check_schedules()
        return self

    def _check_schedules(self) -> None:
        """Schedules name jobs and tables that exist (declared tables and jobs' outputs)."""
        from edgebatch.warehouse import catalog  # noqa: F401  (declares the bronze tables)
        from edgebatch.warehouse.tables import REGISTRY

        tables = {spec.name for spec in REGISTRY} | {t for j in self for t in j.outputs}
        for job in self:
            job.schedule.check_references(job.name, self._jobs, tables)

    def _check_cycles(self) -> None:
        state: dict[str, int] = {}  # 1 visiting, 2 done

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = path[path.index(name) :] + [name]
                raise JobDefinitionError(f"upstream jobs form a cycle: {' -> '.join(cycle)}")
            state[name] = 1
            for up in self._jobs[name].upstream:
                visit(up, [*path, name])
            state[name] = 2

        for name in sorted(self._jobs):
            visit(name, [])

    def upstream_order(self, name: str) -> list[str]:
        """`name`'s upstream jobs, transitively, each before the jobs that need it."""
        seen: list[str] = []

        def walk(n: str) -> None:
            for up in self.get(n).upstream:
                if up not in seen:
                    walk(up)
                    seen.append(up)

        walk(name)
        return seen


def record_job(store, job: Job) -> None:
    """Tell the state store (and through it the API) the definition as it is now."""
    store.upsert_job(
        job.name,
        definition_hash=job.definition_hash(),
        summary=job.summary(),
        pool=job.pool,
        priority=job.priority,
        tags=job.tags,
    )


def jobs_in(module: ModuleType) -> list[Job]:
    return [v for k, v in vars(module).items() if isinstance(v, Job) and not k.startswith("_")]


def _import_path(path: Path) -> ModuleType:
    name = f"edgebatch_jobs_ext.{path.stem}_{abs(hash(str(path.resolve()))) % 10**8}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise JobDefinitionError(f"cannot import job module {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    _ship_by_value(module)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise JobDefinitionError(f"job module {path} failed to import: {exc!r}") from exc
    return module


def _ship_by_value(module: ModuleType) -> None:
    """Executors cannot import a job file that is not in a package: send its code along."""
    try:
        from pyspark import cloudpickle
    except ImportError:  # no Spark here: nothing will be shipped
        return
    cloudpickle.register_pickle_by_value(module)


def _modules(extra: Iterable[str], base: Path) -> Iterator[ModuleType]:
    package = importlib.import_module(JOBS_PACKAGE)
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            yield _import_module(f"{JOBS_PACKAGE}.{info.name}")
    for entry in extra:
        path = Path(entry).expanduser()
        path = path if path.is_absolute() else base / path
        if path.is_dir():
            for file in sorted(path.glob("*.py")):
                if not file.name.startswith("_"):
                    yield _import_path(file)
        elif path.suffix == ".py" and path.exists():
            yield _import_path(path)
        else:
            yield _import_module(entry)


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as exc:
        raise JobDefinitionError(f"job module {name} failed to import: {exc!r}") from exc


def discover(settings=None, *, extra: Iterable[str] = ()) -> JobRegistry:
    """The project's jobs: `edgebatch.jobs`, then `[framework] jobs`, then `extra`."""
    from edgebatch.settings import load_settings

    settings = settings or load_settings()
    pools_file = _allocation_file(settings)
    registry = JobRegistry(pools=pools_of(pools_file) if pools_file else None)
    for module in _modules([*settings.framework.jobs, *extra], settings.home):
        for job in jobs_in(module):
            registry.add(job)
    return registry.check()


def _allocation_file(settings) -> Path | None:
    from edgebatch.framework.session import defaults_file, read_properties

    source = defaults_file(settings)
    if not source.is_file():  # e.g. imported from an executor's copy of the project archive
        return None
    value = read_properties(source).get("spark.scheduler.allocation.file")
    if not value:
        return None
    path = Path(value)
    path = path if path.is_absolute() else source.parent / path
    return path if path.exists() else None
