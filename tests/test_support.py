"""The suite's own helpers: a missing extra skips on a laptop and fails in CI; the one wait
returns the first truthy value or names what it waited for."""

from __future__ import annotations

import pytest

from tests.support.extras import require
from tests.support.net import accepts, free_port
from tests.support.wait import wait_until


def test_a_missing_extra_skips_outside_ci_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require("edgebatch_no_such_extra")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(ImportError, match="CI is set"):
        require("edgebatch_no_such_extra")
    assert require("json").dumps([]) == "[]"


def test_wait_until_returns_the_first_truthy_value_or_names_what_it_waited_for():
    calls = iter([0, None, 7])
    assert wait_until(lambda: next(calls), 5, "a seven", interval=0) == 7
    with pytest.raises(AssertionError, match="waiting for nothing at all"):
        wait_until(lambda: False, 0.05, "nothing at all")


def test_a_free_port_has_no_listener():
    assert not accepts("127.0.0.1", free_port())
