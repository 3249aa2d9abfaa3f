"""The dashboard's pages on the real API app: in the browser's language, switchable, with
their assets served by the service itself, and nothing a request sends echoed unescaped."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.extras import require

require("jinja2")

PAGES = ["/", "/runs/7", "/workers", "/devices", "/tables", "/login"]


def _page_data(html: str) -> dict:
    found = re.search(r'<script id="page-data" type="application/json">(.*?)</script>', html, re.S)
    assert found, "the page has no data for its scripts"
    return json.loads(found.group(1))


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_in_the_browsers_language(client, path: str):
    german = client.get(path, headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    spanish = client.get(path, headers={"Accept-Language": "es-ES"})

    assert german.status_code == 200
    assert german.headers["content-language"] == "de"
    assert '<html lang="de">' in german.text
    assert "Abmelden" in german.text or "Anmelden" in german.text
    assert '<html lang="es">' in spanish.text
    assert _page_data(spanish.text)["locale"] == "es"


def test_the_scripts_get_their_strings_from_the_same_catalogs(client):
    data = _page_data(client.get("/runs/3", headers={"Accept-Language": "de"}).text)

    assert data["runId"] == 3
    assert data["messages"]["Following live"] == "Live verfolgt"
    assert data["states"]["succeeded"] == "erfolgreich"


def test_the_language_switch_remembers_the_choice_and_stays_on_the_site(client):
    switched = client.get(
        "/language", params={"lang": "es", "next": "/runs/3?x=1"}, follow_redirects=False
    )
    away = client.get(
        "/language",
        params={"lang": "de", "next": "https://elsewhere.example/"},
        follow_redirects=False,
    )
    sneaky = client.get(
        "/language",
        params={"lang": "de", "next": "//elsewhere.example/x"},
        follow_redirects=False,
    )

    for other in ("/\\elsewhere.example", "/x\r\nSet-Cookie: a=b", "javascript:alert(1)"):
        answer = client.get(
            "/language", params={"lang": "de", "next": other}, follow_redirects=False
        )
        assert answer.headers["location"] == "/", other
    assert switched.status_code == 303
    assert switched.headers["location"] == "/runs/3?x=1"
    assert "edgebatch_lang=es" in switched.headers["set-cookie"]
    assert away.headers["location"] == "/"
    assert sneaky.headers["location"] == "/"
    client.cookies.set("edgebatch_lang", "es")
    page = client.get("/", headers={"Accept-Language": "de"})
    assert '<html lang="es">' in page.text and "Ejecuciones" in page.text


def test_an_unknown_language_is_a_clear_400(client):
    answer = client.get("/language", params={"lang": "tlh"})

    assert answer.status_code == 400
    assert "unknown language 'tlh'" in answer.text and "de" in answer.text


@pytest.mark.parametrize("path", ["/runs/abc", "/runs/0", "/runs/99999999999999999999999"])
def test_a_bad_run_page_address_is_a_4xx(client, path: str):
    assert 400 <= client.get(path).status_code < 500


def test_what_a_request_sends_is_never_echoed_unescaped(client):
    evil = '/x"></script><script>alert(1)</script>'

    page = client.get("/login", params={"next": evil})

    elsewhere = client.get("/login", params={"next": "https://elsewhere.example/"})

    assert "<script>alert(1)" not in page.text
    assert _page_data(page.text)["next"] == evil  # a path of this site, kept but escaped
    assert _page_data(elsewhere.text)["next"] == "/"  # not this site: home instead


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/static/vendor/uplot/uPlot.iife.min.js", "javascript"),
        ("/static/vendor/uplot/uPlot.min.css", "css"),
        ("/static/css/dashboard.css", "css"),
        ("/static/js/run.js", "javascript"),
        ("/static/img/favicon.svg", "svg"),
    ],
)
def test_assets_come_from_the_service_itself(client, path: str, kind: str):
    answer = client.get(path)

    assert answer.status_code == 200
    assert kind in answer.headers["content-type"]


def test_no_asset_outside_the_static_folder_is_served(client):
    for path in ["/static/../pages.py", "/static/%2e%2e/pages.py", "/static/js/../../i18n.py"]:
        assert client.get(path).status_code == 404, path


def test_no_page_loads_anything_from_another_host(client):
    for path in PAGES:
        page = client.get(path)
        assert not re.search(r'(src|href)="(https?:)?//', page.text), path
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "connect-src 'self'" in policy, path


def test_the_api_still_answers_beside_the_pages(client):
    assert client.get("/api/v1/runs").status_code == 401
    assert client.get("/api/v1/openapi.json").status_code == 200


def test_a_page_holds_no_data_so_it_may_answer_anyone(client, app_settings):
    from edgebatch.framework.state import StateStore

    with StateStore.from_settings(app_settings) as store:
        run = store.create_run("secret_plant_job", partitions=["2026-11-30"])

    page = client.get(f"/runs/{run.id}")  # no session

    assert page.status_code == 200
    assert "secret_plant_job" not in page.text and "2026-11-30" not in page.text
    assert client.get(f"/api/v1/runs/{run.id}").status_code == 401  # the data stays guarded


def test_the_pages_are_not_api_routes(client):
    from edgebatch.api.app import route_table
    from edgebatch.api.web.pages import PAGE_PATHS

    api_paths = {route.path for route in route_table(client.app)}
    schema = client.get("/api/v1/openapi.json").json()["paths"]

    assert not api_paths & PAGE_PATHS
    assert not set(schema) & PAGE_PATHS
