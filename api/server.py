"""`edgebatch api`: serve the app with uvicorn, after checking it may start."""

from __future__ import annotations

import logging

from edgebatch.errors import ConfigError
from edgebatch.settings import Settings

log = logging.getLogger(__name__)


def check_startable(settings: Settings) -> None:
    """Refuse to serve without a secret, unless `[api] demo` says this is a demo."""
    if not settings.api.secret and not settings.api.demo:
        raise ConfigError(
            f"[api] secret is not set in {settings.source}: set it (or EDGEBATCH_API_SECRET) "
            "to 16 or more random characters, e.g. `python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'`; or set [api] demo = true to run without "
            "one (sessions then end when the process does)"
        )


def serve(settings: Settings, *, host: str | None = None, port: int | None = None) -> int:
    import uvicorn

    from edgebatch.api.app import create_app

    check_startable(settings)
    if not settings.api.secret:
        log.warning("demo mode: no [api] secret; sign-ins last as long as this process")
    app = create_app(settings)
    uvicorn.run(
        app,
        host=host or settings.api.host,
        port=port or settings.api.port,
        workers=1,
        log_level="info",
        proxy_headers=True,
    )
    return 0
