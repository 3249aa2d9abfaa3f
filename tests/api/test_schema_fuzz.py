"""Property-based requests over the API's own OpenAPI description (schemathesis): whatever
a client sends, with an admin's token or none, the answer is never a 5xx. Bounded: a few
examples per operation, so the whole run stays within seconds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.api.conftest import Api, open_api
from tests.api.fleet_tables import now, write_alarms, write_health

pytestmark = pytest.mark.integration

# Readiness answers 503 by design when the broker is away (there is none in this test).
SKIP = ("/readyz", "/healthz")


@pytest.fixture(scope="module")
def fuzz_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    home = tmp_path_factory.mktemp("fuzz")
    gen = open_api(
        home, f"sqlite:///{home / 's.db'}", ingest_per_s=1e6, ingest_burst=1e6, login_per_minute=1e6
    )
    api = next(gen)
    run = api.store.create_run("device_daily", partitions=["2026-11-01"], params={"tenant": "acme"})
    api.store.append_log(run.id, "a line")
    api.store.transition_run(run.id, "cancelled")
    write_health(api.root, [{"tenant": "acme", "device": "d1", "ts": now()}])
    write_alarms(api.root, [{"alarm_id": "1" * 32, "tenant": "acme", "device": "d1", "ts": now()}])
    yield api
    gen.close()


def fuzz(operation, token: str, failures: list[str]) -> None:
    """A few generated requests to one operation, with the token and without one."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=5,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case) -> None:
        for headers in ({"Authorization": f"Bearer {token}"}, {}):
            response = case.call(headers=headers)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.query} {case.body!r:.100}: "
                    f"{response.status_code} {response.text[:200]}"
                )

    check()


def test_no_request_gets_a_5xx(fuzz_api: Api):
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", fuzz_api.app)
    failures: list[str] = []
    results: list[Any] = list(schema.get_all_operations())
    operations = [result.ok() for result in results]
    assert len(operations) > 30
    for operation in operations:
        if operation.path in SKIP:
            continue
        ingest = operation.path.startswith("/api/v1/ingest")
        fuzz(operation, fuzz_api.tokens["device" if ingest else "admin"], failures)
    assert failures == []
