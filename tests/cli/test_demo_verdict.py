"""The demo's last word: a count that does not match what the agents produced fails it."""

from __future__ import annotations

from rich.console import Console

from edgebatch.cli.demo import check_counts


def test_a_mismatch_between_produced_and_counted_readings_fails_the_demo():
    console = Console(record=True, width=120)
    assert check_counts(console, 34560, 34559) is False
    assert check_counts(console, 34560, None) is False
    assert check_counts(console, 34560, 34560) is True
    first, second, third = console.export_text().splitlines()
    assert "34559: MISMATCH: the demo fails" in first and "None: MISMATCH" in second
    assert third.endswith("34560: exactly once")
