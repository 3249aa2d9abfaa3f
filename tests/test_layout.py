"""The layout's promises: imports point one way, the agent stays light, the repository
stands alone. Read from the source, so a new module is held to them as soon as it exists."""

from __future__ import annotations

import ast
import re
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
    """No path out of the checkout, and every upper-case doc a file names is one of ours."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    ours = {Path(name).name for name in tracked}
    found = []
    for name in tracked:
        path = REPO / name
        if not path.is_file() or path.is_symlink():
            continue
        text = path.read_text(errors="replace")
        if re.search(r"\.\./shared\b", text):
            found.append(f"{name}: a path out of the repository")
        for doc in set(re.findall(r"(?<![/\w.-])[A-Z][A-Z_]{3,}\.md\b", text)) - ours:
            found.append(f"{name}: {doc} is not in the repository")
    assert found == []
