"""The layout's promises: imports point one way, the agent stays light, the repository
stands alone. Read from the source, so a new module is held to them as soon as it exists."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# part folder -> edgebatch parts and third-party roots it must never import (even lazily)
FORBIDDEN: dict[str, set[str]] = {
    "edge": {
        "edgebatch.warehouse",
        "edgebatch.framework",
        "edgebatch.jobs",
        "edgebatch.api",
        "edgebatch.cli",
        "pyspark",
        "delta",
        "sqlalchemy",
        "fastapi",
        "msgspec",
    },
    "warehouse": {"edgebatch.framework", "edgebatch.jobs", "edgebatch.api", "edgebatch.cli"},
    "framework": {"edgebatch.edge", "edgebatch.jobs", "edgebatch.api", "edgebatch.cli"},
    "jobs": {"edgebatch.api", "edgebatch.cli"},
    "core": {
        "edgebatch.edge",
        "edgebatch.warehouse",
        "edgebatch.framework",
        "edgebatch.jobs",
        "pyspark",
    },
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _violations(part: str) -> list[str]:
    found = []
    for path in sorted((REPO / part).rglob("*.py")):
        for name in _imports(path):
            for banned in FORBIDDEN[part]:
                if name == banned or name.startswith(banned + "."):
                    found.append(f"{path.relative_to(REPO)} imports {name}")
    return found


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_a_part_imports_only_what_it_may(part: str):
    assert _violations(part) == []


def test_the_repository_points_to_no_file_outside_it():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    pointers = ("../shared", "ARCHITECTURE.md", "FIELD_NOTES", "STYLE.md")
    found = [
        f"{name}: {pointer}"
        for name in tracked
        if name != "tests/test_layout.py" and (REPO / name).is_file()
        for pointer in pointers
        if pointer in (REPO / name).read_text(errors="replace")
    ]
    assert found == []
