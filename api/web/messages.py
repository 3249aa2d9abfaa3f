"""The dashboard's translatable strings, found in its sources, and the catalogs kept in step.

`python -m edgebatch.api.web.messages` (or `make messages`) finds every string of the
templates (`{{ _("...") }}`), the scripts (`t("...")`) and the page module (`gettext("...")`),
writes them to the English catalog, and adds the new ones (untranslated) to every other
catalog, so a translator opens one `.po` file and fills in the empty `msgstr`s. Until
then those strings show in English.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from edgebatch.api.web import i18n

METHODS = [
    ("**/templates/**.html", "jinja2"),
    ("**/static/js/**.js", "javascript"),
    ("pages.py", "python"),
]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "t": None}
HEADER = "Translations of the edgebatch dashboard."


def source_dir() -> Path:
    return Path(__file__).resolve().parent


def extract(folder: Path | None = None) -> dict[str, list[tuple[str, int]]]:
    """Every translatable string of the dashboard, with where it is used (file, line)."""
    folder = folder or source_dir()
    found: dict[str, list[tuple[str, int]]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(folder), METHODS, OPTIONS, KEYWORDS, strip_comment_tags=True
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault(msgid, []).append((filename, lineno))
    return found


def read_catalog(path: Path, lang: str) -> Catalog:
    with path.open("rb") as fp:
        return read_po(fp, locale=lang, domain=i18n.DOMAIN)


def _write(catalog: Catalog, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fp:
        write_po(fp, catalog, width=100, sort_output=True, include_previous=False)


def update_catalogs(folder: Path | None = None) -> dict[str, list[str]]:
    """Bring every catalog in step with the sources; returns the new strings per language.

    Strings no longer used are dropped, so no catalog keeps a key the pages lack.
    """
    folder = folder or source_dir()
    found = extract(folder)
    locales = folder / "locales"
    added: dict[str, list[str]] = {}
    langs = sorted(p.name for p in locales.iterdir() if p.is_dir())
    for lang in langs:
        path = locales / lang / "LC_MESSAGES" / f"{i18n.DOMAIN}.po"
        old = read_catalog(path, lang) if path.exists() else None
        new = Catalog(
            locale=lang,
            domain=i18n.DOMAIN,
            project="edgebatch",
            header_comment=f"# {HEADER}\n# Language: {lang}",
            creation_date=old.creation_date if old else datetime.now(UTC),
            revision_date=datetime.now(UTC),
            fuzzy=False,
        )
        added[lang] = []
        for msgid, where in sorted(found.items()):
            previous = old.get(msgid) if old else None
            string = previous.string if previous is not None else ""
            if previous is None:
                added[lang].append(msgid)
            flags = previous.flags if previous is not None else ()
            new.add(msgid, string, locations=where, flags=flags)
        _write(new, path)
    return added


def main(argv: list[str] | None = None) -> int:
    for lang, new in update_catalogs().items():
        print(f"{lang}: {len(new)} new string(s){': ' if new else ''}{'; '.join(new)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
