"""Jobs of the `edgebatch notify` command test: their contacts come from the environment,
where the test puts the addresses of the receivers it started."""

from __future__ import annotations

import os

from edgebatch.framework.definitions import define_job


def _nothing(ctx) -> None:
    """Only the definition matters here: the test records the runs' outcomes itself."""


watched_loader = define_job(
    "watched_loader",
    [_nothing],
    contacts=[
        os.environ.get("EDGEBATCH_TEST_HOOK", "https://hooks.invalid/none"),
        os.environ.get("EDGEBATCH_TEST_MAIL", "nobody@plant.test"),
    ],
    sla="30m",
)
