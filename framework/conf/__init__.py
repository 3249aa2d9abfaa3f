"""Files the framework reads at run time, bundled with the package.

`spark-defaults.conf` and `fairscheduler.xml` live at the repository's root, where Spark
users expect them; the copies here (links in the checkout, files in a wheel) are what an
installed edgebatch falls back to when the project home has none of its own.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def bundled_file(name: str) -> Path:
    """The real path of a bundled file, links followed (so relative paths in it resolve
    against the checkout in a development install, and the package in a wheel). Inside
    an executor's zip of the project it names no file: callers check."""
    return Path(str(resources.files(__name__).joinpath(name))).resolve()
