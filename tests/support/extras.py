"""Optional dependencies in tests: skipped on a developer's machine, required in CI.

A module that cannot import its extra (pyspark, msgspec, ...) would otherwise skip
quietly, and a CI run missing an install step would pass having tested nothing.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def require(module: str) -> ModuleType:
    """`module`, imported; without it the test is skipped, unless `CI` is set: then it fails."""
    if not in_ci():
        return pytest.importorskip(module)
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{module} cannot be imported and CI is set, so the tests that need it fail rather "
            f"than skip: install the project with its extras (pip install -e '.[server,dev]'): "
            f"{exc}"
        ) from exc
