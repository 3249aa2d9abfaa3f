"""No job reads silver or gold around the consent gate: `ctx.table` is the only reader the
jobs use, and it refuses a silver or gold table nobody registered with the gate."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from edgebatch.framework import consent
from edgebatch.framework.consent import (
    ConsentGateError,
    read_gated,
    subject_bearing,
    subject_free,
)
from edgebatch.warehouse.tables import declare

REPO = Path(__file__).resolve().parents[2]
# Delta readers a job could reach silver or gold with, bypassing `ctx.table`.
DIRECT_READERS = {"forPath", "forName", "load", "table", "read_table", "sql"}
# Tables jobs may read directly: the contract's bronze and the reference data.
DIRECT_SOURCES = {"edgebatch.warehouse.catalog", "edgebatch.warehouse.reference"}


def bypasses(source: str, name: str = "<job>") -> list[str]:
    """Places in a job module's source that read a Delta table other than through `ctx.table`.

    `ctx.table(...)` is the gate. Any other reader (`read_table`, `DeltaTable.forPath`,
    `spark.read...load`, `spark.table`, `spark.sql`) is allowed only on a table spec
    imported from bronze's catalog or the reference tables, and a literal naming a
    silver or gold path is refused wherever it appears outside a declaration.
    """
    tree = ast.parse(source, name)
    allowed: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in DIRECT_SOURCES:
            allowed.update(alias.asname or alias.name for alias in node.names)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if called not in DIRECT_READERS:
            continue
        if isinstance(func, ast.Name) and called != "read_table":
            continue  # a function of the module's own (bronze_load's `load`)
        receiver = func.value if isinstance(func, ast.Attribute) else None
        if isinstance(receiver, ast.Name) and receiver.id == "ctx" and called == "table":
            continue  # the gate
        spec_args = [a for a in node.args if isinstance(a, ast.Name) and a.id in allowed]
        if called == "read_table" and spec_args:
            continue
        found.append(f"{name}:{node.lineno}: {ast.unparse(node)[:80]}")
    return found


def test_no_job_reads_a_table_except_through_the_gate_or_from_bronze_and_reference():
    found = []
    for path in sorted((REPO / "jobs").glob("*.py")):
        found += bypasses(path.read_text(), str(path.relative_to(REPO)))
    for path in sorted((REPO / "jobs").rglob("*.sql")):
        if "silver/" in path.read_text() or "gold/" in path.read_text():
            found.append(f"{path.relative_to(REPO)} names a silver or gold table")
    assert found == []


@pytest.mark.parametrize(
    "line",
    [
        "read_table(ctx.spark, ctx.root, REGISTRY.get('silver/readings'))",
        "DeltaTable.forPath(ctx.spark, 'file:///w/gold/bills')",
        "ctx.spark.read.format('delta').load(path)",
        "ctx.spark.sql('SELECT * FROM delta.`/w/silver/readings`')",
        "ctx.spark.table('gold_bills')",
    ],
)
def test_the_check_catches_each_way_around_the_gate(line):
    source = f"from edgebatch.warehouse.catalog import EDGE_BATCHES\ndef f(ctx):\n    {line}\n"
    assert len(bypasses(source)) == 1


def test_the_check_lets_the_gate_and_bronze_reads_pass():
    source = (
        "from edgebatch.warehouse.reference import DEVICES\n"
        "def f(ctx):\n"
        "    ctx.table('silver/readings')\n"
        "    read_table(ctx.spark, ctx.root, DEVICES)\n"
    )
    assert bypasses(source) == []


def test_a_silver_table_registered_with_neither_kind_cannot_be_read():
    declare("silver/test_unregistered", "tenant STRING, x INT")
    with pytest.raises(ConsentGateError, match="neither as subject-bearing nor as subject-free"):
        read_gated(None, None, "silver/test_unregistered")  # type: ignore[arg-type]


def test_only_silver_and_gold_register_and_a_table_registers_one_way(monkeypatch):
    # The registry is process-wide; this test's table must not outlive it (consent_erase
    # walks every registered table).
    monkeypatch.setattr(consent, "_SUBJECT_BEARING", dict(consent._SUBJECT_BEARING))
    monkeypatch.setattr(consent, "_SUBJECT_FREE", dict(consent._SUBJECT_FREE))
    with pytest.raises(ConsentGateError, match="not in silver/ or gold/"):
        subject_bearing("bronze/edge_batches")
    subject_bearing("gold/test_both_ways", subject="customer")
    with pytest.raises(ConsentGateError, match="already registered as subject-bearing"):
        subject_free("gold/test_both_ways", "no people here")
    with pytest.raises(ConsentGateError, match="registered twice"):
        subject_bearing("gold/test_both_ways", subject="patient")
