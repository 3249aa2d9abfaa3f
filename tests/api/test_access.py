"""Access control, generated from the app's route table: every route but the public few
has a guard; without a token it answers 401, with too low a role 403, with another
tenant's token 403 (unless it only lists what the caller may see), and with the right
token something that is neither. A new route is checked the moment it exists."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute

from edgebatch.api.access import PUBLIC_PATHS, RANK, DeviceGuard, RoleGuard
from edgebatch.api.app import route_table
from tests.api.conftest import Api, add_token, bearer
from tests.api.fleet_tables import now, write_alarms

pytestmark = pytest.mark.integration

ALARM_ID = "a" * 32
# Routes that answer another tenant's caller with what it may see (a filtered list, a
# definition shared by all), instead of refusing it.
NOT_TENANT_BOUND = {
    ("GET", "/api/v1/auth/me"),
    ("POST", "/api/v1/auth/logout"),
    ("GET", "/api/v1/jobs"),
    ("GET", "/api/v1/jobs/{name}"),
    ("GET", "/api/v1/tables"),
    ("GET", "/api/v1/uploads/{job}"),
}
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/runs"): {
        "json": {"job": "device_daily", "partitions": ["2026-11-01"], "tenant": "acme"}
    },
    ("POST", "/api/v1/alarms/{alarm_id}/ack"): {"json": {"note": "seen"}},
    ("PUT", "/api/v1/workers/{worker_id}/executors"): {
        "json": {"min_executors": 1, "max_executors": 2}
    },
    ("POST", "/api/v1/admin/users"): {
        "json": {"name": "newbie", "password": "password1", "tenants": ["acme"]}
    },
    ("POST", "/api/v1/admin/tokens"): {"json": {"name": "t", "tenants": ["acme"]}},
    ("POST", "/api/v1/uploads/{job}"): {"content": b"a,b\n1,2\n"},
    ("POST", "/api/v1/ingest/{tenant}/{device}"): {"content": b""},
}


def guard_of(route: APIRoute) -> RoleGuard | DeviceGuard | None:
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        if isinstance(dependant.call, RoleGuard | DeviceGuard):
            return dependant.call
        stack.extend(dependant.dependencies)
    return None


def routes(api: Api) -> list[tuple[str, APIRoute]]:
    return [(method, r) for r in route_table(api.app) for method in sorted(r.methods or ())]


@pytest.fixture
def world(api: Api) -> dict[str, str]:
    """One of everything a route can name, all of tenant acme."""
    store = api.store
    run = store.create_run("device_daily", partitions=["2026-11-01"], params={"tenant": "acme"})
    it = store.create_iterations(run.id, ["2026-11-01"])[0]
    store.claim_run(run.id, holder="test")
    store.claim_iteration(run.id)
    store.transition_iteration(it.id, "failed", error="boom")
    store.transition_run(run.id, "failed", error="boom")
    worker = store.register_worker("host:1:abc", queues=["default"])
    write_alarms(api.root, [{"alarm_id": ALARM_ID, "tenant": "acme", "device": "d1", "ts": now()}])
    api.tokens["device_other"] = add_token(store, "d9", "device", ["other"], device="other/d9")
    add_token(store, "throwaway", "viewer", ["acme"])
    token_id = store.list_tokens()[-1].id
    return {
        "run_id": str(run.id),
        "worker_id": worker.worker_id,
        "alarm_id": ALARM_ID,
        "tenant": "acme",
        "device": "d1",
        "job": "device_daily",
        "token_id": str(token_id),
        "kind": "bills",
        "period": "2026-11",
        "report_id": "c1",
    }


def url_for(route: APIRoute, world: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        if name == "name":
            if route.path.startswith("/api/v1/tables"):
                return "quarantine/rejected"
            if route.path.startswith("/api/v1/admin/users"):
                return "nobody"
            return "device_daily"
        return world[name]

    return re.sub(r"\{([^}]+)\}", value, route.path)


def call(api: Api, method: str, route: APIRoute, world: dict[str, str], headers: dict) -> int:
    extra = dict(BODIES.get((method, route.path), {}))
    if route.path.startswith("/api/v1/ingest"):
        extra["content"] = b'{"v": 1}'
    params = {"tenant": "acme", "name": "f.csv"}
    response = api.client.request(
        method, url_for(route, world), headers=headers, params=params, **extra
    )
    return response.status_code


def test_every_route_is_guarded_or_public(api: Api):
    unguarded = [
        f"{m} {r.path}"
        for m, r in routes(api)
        if guard_of(r) is None and r.path not in PUBLIC_PATHS
    ]
    assert unguarded == []
    assert len(routes(api)) > 30


def test_without_a_token_every_guarded_route_answers_401(api: Api, world):
    wrong = {}
    for method, route in routes(api):
        if guard_of(route) is None:
            continue
        for headers in ({}, bearer("eb_not-a-token"), {"Authorization": "Basic eA=="}):
            status = call(api, method, route, world, headers)
            if status != 401:
                wrong[f"{method} {route.path} {headers}"] = status
    assert wrong == {}


def test_too_low_a_role_is_refused_with_403(api: Api, world):
    below = {"viewer": "device", "operator": "viewer", "admin": "operator"}
    wrong = {}
    for method, route in routes(api):
        guard = guard_of(route)
        if guard is None:
            continue
        who = "viewer" if isinstance(guard, DeviceGuard) else below[guard.role]
        status = call(api, method, route, world, api.as_(who))
        if status != 403:
            wrong[f"{method} {route.path} as {who}"] = status
    assert wrong == {}
    assert set(below) == set(RANK)


def test_another_tenants_token_is_refused_with_403(api: Api, world):
    wrong = {}
    for method, route in routes(api):
        guard = guard_of(route)
        if guard is None or (method, route.path) in NOT_TENANT_BOUND:
            continue
        who = "device_other" if isinstance(guard, DeviceGuard) else f"other_{guard.role}"
        status = call(api, method, route, world, api.as_(who))
        if status != 403:
            wrong[f"{method} {route.path} as {who}"] = status
    assert wrong == {}


def test_the_right_token_gets_through_and_nothing_breaks(api: Api, world):
    wrong = {}
    for method, route in routes(api):
        guard = guard_of(route)
        if guard is None:
            continue
        who = "device" if isinstance(guard, DeviceGuard) else "admin"
        status = call(api, method, route, world, api.as_(who))
        if status in (401, 403) or status >= 500:
            wrong[f"{method} {route.path} as {who}"] = status
    assert wrong == {}
