"""The landing line is declared once: what the collector writes is what the key scan and
the bronze load read, and the metric's fields everywhere are the wire format's."""

from __future__ import annotations

import json

from edgebatch.edge.wire import (
    METRIC_FIELDS,
    METRIC_TIMES,
    Alarm,
    Batch,
    Health,
    parse_message,
)
from edgebatch.warehouse import catalog
from edgebatch.warehouse.collector.limits import normalized_times
from edgebatch.warehouse.collector.records import envelope, quarantine_line
from edgebatch.warehouse.landing import lines
from tests.warehouse.helpers import alarm, batch, health


def landable(topic: str, payload: bytes) -> Batch | Alarm | Health:
    """A message of a kind the collector lands, parsed."""
    msg = parse_message(topic, payload)
    assert isinstance(msg, Batch | Alarm | Health), msg
    return msg


def _columns(ddl: str) -> list[str]:
    return [c.split()[0] for c in ddl.split(", ")]


def test_a_line_the_collector_writes_has_the_declared_envelope_and_times():
    for kind, build in (("batch", batch), ("alarm", alarm), ("health", health)):
        name = f"edgebatch/acme/d1/{kind}"
        _, payload = build("acme", "d1", 4)
        line = json.loads(envelope(name, payload, 0.0, normalized_times(landable(name, payload))))
        assert tuple(line) == lines.ENVELOPE, kind
        assert tuple(line[lines.NORM]) == tuple(k for k, _ in lines.NORM_FIELDS[kind]), kind
        assert line[lines.TOPIC] == name and line[lines.PAYLOAD] == json.loads(payload)
    _, payload = batch("acme", "d1", 4)
    norm = json.loads(normalized_times(landable("edgebatch/acme/d1/batch", payload)))
    assert [len(pair) for pair in norm[lines.NORM_METRICS]] == [len(METRIC_TIMES)] * 2


def test_a_quarantine_line_has_the_declared_fields():
    record = json.loads(quarantine_line("edgebatch/a/b/batch", b"x", "why", 0.0, "c"))
    assert tuple(record) == lines.QUARANTINE_NAMES
    assert _columns(lines.QUARANTINE_LINE) == list(lines.QUARANTINE_NAMES)


def test_every_metric_field_of_the_wire_is_read_by_the_load_and_kept_by_bronze():
    assert "name" in lines.BATCH_LINE
    for field in lines.METRIC_VALUES:
        assert f"{field} " in lines.BATCH_LINE
    bronze = _columns(catalog.EDGE_BATCHES.schema)
    kept = ["metric" if f == "name" else f for f in METRIC_FIELDS]
    assert [c for c in bronze if c in kept] == kept
    assert "count BIGINT NOT NULL" in catalog.EDGE_BATCHES.schema


def test_the_load_reads_lines_with_the_declared_schemas():
    from edgebatch.jobs import bronze_load

    schemas = {kind: schema for kind, _, schema, _ in bronze_load.TARGETS}
    assert schemas == lines.LINE_SCHEMAS
