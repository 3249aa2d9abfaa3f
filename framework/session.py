"""Builds the SparkSession every edgebatch job runs in, from settings layered as Spark users expect.

Layers, later wins: `spark-defaults.conf` (the same file `spark-submit --properties-file`
reads), then the project config (`[spark] master` and `[spark] conf`, `EDGEBATCH_SPARK_*`),
then per-job overrides. Delta's jars come from a project folder that `make jars` fills
once, so starting a session touches no network; only if that folder is empty does the
builder fall back to Spark's own resolution of `spark.jars.packages`.
"""

from __future__ import annotations

import glob
import os
import threading
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

from edgebatch.framework.conf import bundled_file
from edgebatch.framework.errors import SparkConfError
from edgebatch.settings import Settings, load_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULTS_FILE = "spark-defaults.conf"
# Settings whose values are paths; relative ones are made absolute against the file's folder.
_PATH_KEYS = ("spark.scheduler.allocation.file", "spark.sql.warehouse.dir")
_lock = threading.Lock()


def read_properties(path: Path) -> dict[str, str]:
    """Parse a Spark properties file: `key value`, `key=value` or `key: value` per line."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SparkConfError(f"Spark defaults file {path} does not exist") from None
    props: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        key, value = _split_property(line)
        if not key.startswith("spark."):
            raise SparkConfError(
                f"{path}:{number}: key {key!r} is not a Spark setting (they start with 'spark.')"
            )
        props[key] = value
    return props


def _split_property(line: str) -> tuple[str, str]:
    for i, ch in enumerate(line):
        if ch in " \t=:":
            key, rest = line[:i], line[i:].lstrip(" \t")
            if rest[:1] in ("=", ":"):
                rest = rest[1:].lstrip(" \t")
            return key, rest.strip()
    return line, ""


def defaults_file(settings: Settings) -> Path:
    if settings.spark.defaults_file:
        return settings.path(settings.spark.defaults_file)
    local = settings.home / DEFAULTS_FILE
    return local if local.exists() else bundled_file(DEFAULTS_FILE)


def delta_package() -> str:
    """The Maven coordinate of Delta for the installed pyspark (what delta's pip helper adds)."""
    import pyspark

    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    return f"io.delta:delta-spark_{spark_minor}_2.13:{version('delta-spark')}"


def _expand_jars(value: str, base: Path) -> list[str]:
    jars: list[str] = []
    for item in filter(None, (v.strip() for v in value.split(","))):
        if "://" in item:
            jars.append(item)
            continue
        path = Path(item).expanduser()
        if not path.is_absolute():
            path = base / path
        jars.extend(sorted(glob.glob(str(path))) if glob.has_magic(str(path)) else [str(path)])
    return jars


def spark_conf(
    settings: Settings | None = None, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The merged Spark configuration for a session, as plain strings."""
    settings = settings or load_settings()
    source = defaults_file(settings)
    conf = read_properties(source)
    for key in _PATH_KEYS:
        if key in conf and "://" not in conf[key] and not Path(conf[key]).is_absolute():
            base = source.parent if key != "spark.sql.warehouse.dir" else settings.home
            conf[key] = str((base / conf[key]).resolve())
    conf.update({k: str(v) for k, v in settings.spark.conf.items()})
    if settings.spark.master:
        conf["spark.master"] = settings.spark.master
    conf.update({k: str(v) for k, v in (overrides or {}).items()})
    conf.setdefault("spark.master", "local[*]")
    conf.setdefault("spark.app.name", settings.spark.app_name)

    jars_value = conf.pop("spark.jars", "")
    if settings.spark.jars_dir:
        jars_value = str(settings.path(settings.spark.jars_dir) / "*.jar")
    jars = _expand_jars(jars_value, source.parent)
    missing = [j for j in jars if "://" not in j and not Path(j).exists()]
    if missing:
        raise SparkConfError(f"jar(s) named in spark.jars do not exist: {', '.join(missing)}")
    if any("delta-spark" in Path(j).name for j in jars):
        conf["spark.jars"] = ",".join(jars)
    else:
        # No local Delta jars: let Spark resolve them (needs the network the first time).
        if jars:
            conf["spark.jars"] = ",".join(jars)
        packages = [p for p in conf.get("spark.jars.packages", "").split(",") if p]
        conf["spark.jars.packages"] = ",".join([delta_package(), *packages])
        conf.setdefault("spark.jars.ivy", str(settings.home / ".cache" / "ivy"))
    return conf


def build_session(
    settings: Settings | None = None,
    overrides: Mapping[str, str] | None = None,
) -> SparkSession:
    """Get or create the process's SparkSession with the layered configuration.

    A SparkSession is one per JVM: the first call fixes static settings (master, jars);
    later calls return the same session. Per-job SQL settings belong on
    `session.newSession()`, which shares the context but not the SQL conf.
    """
    from pyspark.sql import SparkSession

    conf = spark_conf(settings, overrides)
    with _lock:
        active = SparkSession.getActiveSession()
        if active is not None:
            return active
        os.environ.setdefault("PYSPARK_PYTHON", _python())
        builder = SparkSession.builder
        for key, value in conf.items():
            builder = builder.config(key, value)
        return builder.getOrCreate()


def _python() -> str:
    import sys

    return sys.executable
