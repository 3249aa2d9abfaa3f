"""Run the benchmarks: all of them, or the ones named.

python -m bench.run            # every bench/*.py that defines run()
python -m bench.run spark_delta
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import time
from pathlib import Path

from bench.common import RESULTS, markdown_table, write_results

# Modules the benchmarks import (helpers, jobs they run), not benchmarks themselves.
_NOT_BENCHMARKS = {"common", "run", "framework_jobs"}


def discover() -> list[str]:
    here = Path(__file__).parent
    names = [m.name for m in pkgutil.iter_modules([str(here)])]
    return sorted(n for n in names if n not in _NOT_BENCHMARKS and not n.startswith("_"))


def write_index() -> None:
    parts = [
        "# Benchmark results",
        "",
        "Written by `make bench`; each table compares a figure "
        "with its baseline measured in the same run.",
        "",
    ]
    for path in sorted(RESULTS.glob("*.json")):
        parts.append(markdown_table(path.stem, json.loads(path.read_text())))
    (RESULTS / "README.md").write_text("\n".join(parts))


def main(argv: list[str]) -> int:
    names = argv or discover()
    unknown = sorted(set(names) - set(discover()))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(discover())}")
        return 2
    failed = 0
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        start = time.perf_counter()
        print(f"== {name}", flush=True)
        try:
            figures = module.run()
        except Exception as exc:  # one broken benchmark must not hide the others
            print(f"   failed: {exc!r}")
            failed += 1
            continue
        out = write_results(name, figures, time.perf_counter() - start)
        for f in figures:
            d = f.as_dict()
            print(f"   {d['metric']}: {d['value']:g} {d['unit']}", end="")
            print(f"  ratio={d['ratio']}  met={d['met']}")
        print(f"   -> {out}")
    write_index()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
