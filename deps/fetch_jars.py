"""Resolve a POM's runtime jars from Maven Central once into a project folder.

Spark already ships many of the same libraries (Hadoop client, Jackson, Parquet,
Scala); two copies of one library on a classpath is a bug waiting to happen, so
any jar whose artifact pyspark already carries is left out. A stamp file makes a
second run a no-op that touches no network.

    python deps/fetch_jars.py deps/delta.pom.xml .cache/jars/delta
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_VERSIONED = re.compile(r"^(?P<artifact>.+?)-\d[\w.\-]*\.jar$")


def artifact_of(jar_name: str) -> str:
    match = _VERSIONED.match(jar_name)
    return match.group("artifact") if match else jar_name.removesuffix(".jar")


def spark_artifacts() -> set[str]:
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    return {artifact_of(p.name) for p in jars.glob("*.jar")}


def fetch(pom: Path, dest: Path, prune_spark: bool) -> list[Path]:
    stamp = dest / ".stamp"
    if stamp.exists() and stamp.stat().st_mtime >= pom.stat().st_mtime:
        return sorted(dest.glob("*.jar"))
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={tmp}",
            ],
            check=True,
        )
        skip = spark_artifacts() if prune_spark else set()
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for jar in sorted(Path(tmp).glob("*.jar")):
            if artifact_of(jar.name) not in skip:
                shutil.copy2(jar, dest / jar.name)
    stamp.touch()
    return sorted(dest.glob("*.jar"))


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    prune = "--keep-all" not in argv
    args = [a for a in argv if not a.startswith("--")]
    jars = fetch(Path(args[0]), Path(args[1]), prune)
    print(f"{len(jars)} jars in {args[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
