"""The dashboard's pages: server-rendered shells in the operator's language.

Each page is a Jinja2 template with the strings translated and a small ES module
(`static/js/{page}.js`) that reads the data from `/api/v1` with the session cookie and
keeps it live. Data never goes through these routes, so what a page shows is exactly what
the API allows the signed-in user to see; a page whose API call answers 401 sends the
browser to the sign-in page.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from edgebatch.api.web import i18n
from edgebatch.framework.state import RunState

STATIC_PREFIX = "/static"
# Scripts, styles, images and API calls from this service only; no framing by other sites.
# (Inline style attributes stay allowed: the progress bars and the charts set widths.)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
MAX_ID = 2**62
COOKIE_MAX_AGE = 365 * 24 * 3600


def _static(path: str) -> str:
    return f"{STATIC_PREFIX}/{path}"


@functools.cache
def environment(lang: str) -> Environment:
    """One template environment per language, its gettext installed (thread-safe to share)."""
    env = Environment(
        loader=PackageLoader("edgebatch.api.web", "templates"),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.globals["static"] = _static
    return env


def request_locale(request: Request) -> str:
    return i18n.negotiate(request.cookies.get(i18n.COOKIE), request.headers.get("accept-language"))


def _state_names(lang: str) -> dict[str, str]:
    gettext = i18n.translations(lang).gettext
    names = {
        RunState.QUEUED: gettext("queued"),
        RunState.RUNNING: gettext("running"),
        RunState.SUCCEEDED: gettext("succeeded"),
        RunState.FAILED: gettext("failed"),
        RunState.CANCELLED: gettext("cancelled"),
        RunState.SKIPPED: gettext("skipped"),
    }
    return {str(state.value): name for state, name in names.items()}


def render(request: Request, page: str, **context: Any) -> HTMLResponse:
    """`templates/{page}.html` in the request's language, with the page's script data."""
    lang = request_locale(request)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    states = _state_names(lang)
    data = i18n.page_strings(lang, {"page": page, "states": states, **context.pop("data", {})})
    html = (
        environment(lang)
        .get_template(f"{page}.html")
        .render(
            lang=lang,
            page=page,
            here=here,
            languages=i18n.language_names(),
            fmt=i18n.LocaleFormat(lang),
            now=datetime.now(UTC),
            page_data=data,
            states=list(states),
            state_names=states,
            **context,
        )
    )
    response = HTMLResponse(html)
    response.headers["Content-Language"] = lang
    response.headers["Vary"] = "Accept-Language, Cookie"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _local_path(target: str | None) -> str:
    """`target` if it is a path on this site, else `/`: a redirect never leaves the site."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    # Browsers read "/\\host" as "//host"; nor may a control character reach the header.
    if "\\" in target or any(ord(c) < 32 for c in target):
        return "/"
    return target


def runs_page(request: Request) -> Response:
    return render(request, "runs")


def run_page(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    if not 1 <= run_id <= MAX_ID:
        return PlainTextResponse(f"no run {run_id}: run ids are 1 or more", status_code=404)
    return render(request, "run", run_id=run_id, data={"runId": run_id})


def workers_page(request: Request) -> Response:
    return render(request, "workers")


def devices_page(request: Request) -> Response:
    return render(request, "devices")


def tables_page(request: Request) -> Response:
    return render(request, "tables")


def login_page(request: Request) -> Response:
    return render(request, "login", data={"next": _local_path(request.query_params.get("next"))})


def switch_language(request: Request) -> Response:
    """Remember the operator's language in a cookie and go back to the page they were on."""
    lang = request.query_params.get("lang", "")
    have = i18n.available_locales()
    if lang not in have:
        return PlainTextResponse(
            f"unknown language {lang[:16]!r}; available: {', '.join(have)}", status_code=400
        )
    response = RedirectResponse(_local_path(request.query_params.get("next")), status_code=303)
    response.set_cookie(i18n.COOKIE, lang, max_age=COOKIE_MAX_AGE, samesite="lax")
    return response


# The pages are shells that hold no data (their scripts ask /api/v1, which checks who asks),
# so they answer anyone, like the sign-in page: plain routes, outside the API's route table
# and its OpenAPI description.
PAGES: tuple[tuple[str, Callable[[Request], Response]], ...] = (
    ("/", runs_page),
    ("/runs/{run_id:int}", run_page),
    ("/workers", workers_page),
    ("/devices", devices_page),
    ("/tables", tables_page),
    ("/login", login_page),
    ("/language", switch_language),
)
PAGE_PATHS = frozenset(path for path, _ in PAGES)
