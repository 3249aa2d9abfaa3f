"""Alembic environment of the state store.

The store runs this itself on open (`StateStore` passes its own connection in
`config.attributes["connection"]`, inside a transaction that holds the
migration lock). A developer can also point the `alembic` command at it with
`-x url=...` or `sqlalchemy.url` to write a new revision with autogenerate.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from edgebatch.framework.state.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url", ""
    )


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite alters tables by copying them; batch mode does that for later revisions.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (given := config.attributes.get("connection")) is not None:
    _migrate(given)
else:
    engine = create_engine(_url())
    try:
        with engine.begin() as connection:
            _migrate(connection)
    finally:
        engine.dispose()
