"""The web dashboard served at `/`: pages, their scripts and styles, and their languages.

`mount_dashboard(app, settings)` adds it to the API's app; the pages read everything
through `/api/v1`, so the dashboard needs nothing of the API but its routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi.staticfiles import StaticFiles

if TYPE_CHECKING:
    from fastapi import FastAPI

    from edgebatch.settings import Settings


def mount_dashboard(app: FastAPI, settings: Settings | None = None) -> None:
    """Serve the pages at `/` and their assets at `/static` (all from the package)."""
    from edgebatch.api.web.pages import PAGES, STATIC_PREFIX

    for path, page in PAGES:
        app.add_route(path, page, methods=["GET"], include_in_schema=False)
    app.mount(
        STATIC_PREFIX,
        # The development install links each file from a tree under build/: follow links
        # (a request still cannot leave the folder: the path is checked before it is read).
        StaticFiles(packages=[("edgebatch.api.web", "static")], follow_symlink=True),
        name="dashboard-static",
    )
