"""What users install: the built wheel, in fresh virtual environments outside the checkout.

An editable install finds modules the wheel lacks (a subpackage missing from the package
list, a migration, a bundled config file), so only the wheel itself tells. The base
install is what a device gets (the agent, no pyspark); `[server]` runs collectors and jobs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
# What the build reads: the parts' folders (pyproject's package-dir), the root files the
# bundled links point to, and the metadata.
ROOT_FILES = ("pyproject.toml", "README.md", "spark-defaults.conf", "fairscheduler.xml")
DATA_SUFFIXES = (".py", ".sql", ".conf", ".xml", ".mako", ".properties")

TINY_JOB = """
from edgebatch.framework.definitions import job
from edgebatch.framework.entry import main
from edgebatch.framework.partitions import Daily
from edgebatch.warehouse.tables import declare

declare("user/tiny", "device STRING NOT NULL, date DATE NOT NULL, n BIGINT", partition_by=("date",))


@job(outputs=["user/tiny"], partitions=Daily(column="date", start="2026-01-01"))
def tiny(ctx):
    return ctx.spark.range(0, 5).selectExpr(
        "concat('d', cast(id as string)) as device", f"DATE'{ctx.partition}' as date", "id as n"
    )


if __name__ == "__main__":
    raise SystemExit(main(tiny))
"""


def _package_dirs() -> dict[str, str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    return config["tool"]["setuptools"]["package-dir"]


def _expected_members() -> set[str]:
    """Every module and data file of the parts' folders, named as in the wheel."""
    expected: set[str] = set()
    for package, folder in _package_dirs().items():
        base = REPO / folder
        prefix = package.replace(".", "/")
        for path in base.rglob("*"):
            rel = path.relative_to(base)
            if path.suffix not in DATA_SUFFIXES or "__pycache__" in rel.parts:
                continue
            if package == "edgebatch" and len(rel.parts) > 1:
                continue
            # a sub-folder that belongs to another mapping is counted under that one
            owner = ".".join([package, *rel.parts[:-1]])
            if any(owner.startswith(p) and p != package for p in _package_dirs()):
                continue
            expected.add(f"{prefix}/{'/'.join(rel.parts)}")
    return expected


def _run(*cmd: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600):
    proc = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**_clean_env(), **(env or {})},
    )
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _clean_env() -> dict[str, str]:
    """The environment minus whatever points at this checkout or its virtualenv."""
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "EDGEBATCH_CONFIG", "EDGEBATCH_HOME", "SPARK_HOME")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PYSPARK")}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(REPO))
    )
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of the checkout (a stale build/ folder must not leak in)."""
    src = tmp_path_factory.mktemp("src")
    for name in ROOT_FILES:
        shutil.copy2(REPO / name, src / name)
    for folder in set(_package_dirs().values()):
        shutil.copytree(
            REPO / folder, src / folder, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, src, cwd=src)
    (built,) = out.glob("edgebatch-*.whl")
    return built


def _venv(root: Path, requirement: str) -> Path:
    _run(sys.executable, "-m", "venv", root, cwd=root.parent)
    _run(root / "bin" / "python", "-m", "pip", "install", "-q", requirement, cwd=root.parent)
    return root / "bin"


def test_the_wheel_holds_every_module_and_bundled_file(wheel: Path):
    members = set(zipfile.ZipFile(wheel).namelist())

    missing = sorted(_expected_members() - members)

    assert not missing, f"the wheel lacks: {missing}"
    assert "edgebatch/framework/state/migrations/versions/0001_initial.py" in members
    conf = zipfile.ZipFile(wheel).read("edgebatch/framework/conf/spark-defaults.conf")
    assert conf == (REPO / "spark-defaults.conf").read_bytes()  # the file, not a link


def test_the_base_install_checks_an_agent_config_without_pyspark(wheel: Path, tmp_path: Path):
    bin_ = _venv(tmp_path / "base", str(wheel))
    work = tmp_path / "elsewhere"
    work.mkdir()
    config = work / "agent.toml"
    config.write_text(
        f"""
[agent]
tenant = "acme"
device = "meter-1"
data_dir = "{work / "data"}"

[mqtt]
host = "127.0.0.1"

[[metric]]
name = "flow"

[[source]]
kind = "file"
path = "{work / "readings.jsonl"}"
format = "jsonl"
"""
    )

    checked = _run(bin_ / "edgebatch", "agent", "--config", config, "--check", cwd=work)
    no_spark = subprocess.run(
        [bin_ / "python", "-c", "import pyspark"], capture_output=True, cwd=work
    )

    assert "ok" in (checked.stdout + checked.stderr).lower()
    assert no_spark.returncode != 0, "the base install pulled in pyspark"


@pytest.mark.timeout(1800)  # two Spark drivers, a fresh venv: minutes on a busy machine
def test_the_server_install_migrates_lists_runs_and_submits_a_job(wheel: Path, tmp_path: Path):
    bin_ = _venv(tmp_path / "server", f"{wheel}[server]")
    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "tiny_jobs.py").write_text(TINY_JOB)
    jars = REPO / ".cache" / "jars" / "delta"
    (work / "edgebatch.toml").write_text(
        f"""
[warehouse]
root = "{(work / "warehouse").as_uri()}"

[state]
url = "sqlite:///{work / "state.db"}"

[spark]
jars_dir = "{jars}"
conf = {{ "spark.ui.enabled" = "false", "spark.driver.memory" = "768m" }}

[framework]
jobs = ["tiny_jobs.py"]
"""
    )
    edgebatch = bin_ / "edgebatch"

    collect = _run(edgebatch, "collect", "--help", cwd=work)
    migrated = _run(edgebatch, "migrate", cwd=work)
    jobs = _run(edgebatch, "jobs", cwd=work, env={"COLUMNS": "200"})
    ran = _run(edgebatch, "run", "tiny", "--partition", "2026-01-02", "--quiet", cwd=work)
    submitted = _run(edgebatch, "submit", "tiny", "--partition", "2026-01-03", cwd=work)
    shipped = _run(
        bin_ / "python",
        "-c",
        "from edgebatch.framework.launcher import package_files;"
        "print('\\n'.join(str(p) for p, _ in package_files()))",
        cwd=work,
    )

    assert "--host" in collect.stdout
    assert re.search(r"revision \d{4}\w* \(was empty\)", migrated.stdout), migrated.stdout
    assert "tiny" in jobs.stdout and "bronze_load" in jobs.stdout
    assert "succeeded" in ran.stdout
    assert "succeeded" in submitted.stdout
    site = str(tmp_path / "server")
    paths = shipped.stdout.split()
    assert paths and all(p.startswith(site) for p in paths), paths[:5]
    rows = (work / "warehouse" / "user" / "tiny").glob("date=*/*.parquet")
    assert {p.parent.name for p in rows} == {"date=2026-01-02", "date=2026-01-03"}
