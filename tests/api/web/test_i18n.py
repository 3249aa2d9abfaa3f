"""The operator's language: every string the pages use is in the English catalog, the other
catalogs translate it or fall back to English (never to a key), and the locale a request
gets follows its cookie, then its browser."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.extras import require

require("babel")

from babel.messages.pofile import read_po  # noqa: E402

from edgebatch.api.web import i18n, messages  # noqa: E402

LOCALES = Path(messages.source_dir()) / "locales"
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def _catalog(lang: str):
    return messages.read_catalog(LOCALES / lang / "LC_MESSAGES" / "messages.po", lang)


def _ids(lang: str) -> set[str]:
    return {m.id for m in _catalog(lang) if m.id}


def test_every_string_the_pages_use_is_in_the_english_catalog():
    used = set(messages.extract())

    english = _ids("en")

    assert used - english == set(), "run `make messages` to add them"
    assert english - used == set(), "strings no page uses any more: run `make messages`"
    assert {"Sign in", "Following live", "succeeded", "{done} of {total}"} <= used


def test_the_scripts_strings_are_found_in_the_scripts():
    found = set(i18n.script_messages())

    assert {"Following live", "Reconnecting…", "{done} of {total}"} <= found
    assert "Sign in" not in found  # a template's string, not a script's


@pytest.mark.parametrize("lang", ["de", "es"])
def test_a_catalog_has_only_english_keys_and_translates_or_falls_back(lang: str):
    english = _ids("en")
    gettext = i18n.translations(lang).gettext

    for message in _catalog(lang):
        if not message.id:
            continue
        assert message.id in english, f"{lang} has {message.id!r}, which en lacks"
    for msgid in english:
        shown = gettext(msgid)
        assert shown, f"{lang}: {msgid!r} shows as nothing"
        assert PLACEHOLDER.findall(shown) == PLACEHOLDER.findall(msgid) or shown == msgid, (
            f"{lang}: {msgid!r} -> {shown!r} changes its placeholders"
        )


@pytest.mark.parametrize("lang", ["de", "es"])
def test_german_and_spanish_are_complete(lang: str):
    untranslated = [m.id for m in _catalog(lang) if m.id and (not m.string or m.fuzzy)]

    assert untranslated == []


def _write_po(folder: Path, lang: str, body: str) -> None:
    path = folder / lang / "LC_MESSAGES" / "messages.po"
    path.parent.mkdir(parents=True)
    header = (
        f'msgid ""\nmsgstr ""\n"Language: {lang}\\n"\n'
        '"Content-Type: text/plain; charset=utf-8\\n"\n\n'
    )
    path.write_text(header + body, encoding="utf-8")


def test_a_missing_empty_or_fuzzy_translation_reads_as_english(tmp_path: Path):
    _write_po(
        tmp_path,
        "en",
        'msgid "Runs"\nmsgstr ""\n\nmsgid "Queued"\nmsgstr ""\n\n'
        'msgid "Log"\nmsgstr ""\n\nmsgid "Tables"\nmsgstr ""\n',
    )
    _write_po(
        tmp_path,
        "de",
        'msgid "Runs"\nmsgstr "Läufe"\n\nmsgid "Queued"\nmsgstr ""\n\n'
        '#, fuzzy\nmsgid "Log"\nmsgstr "Logbuch?"\n',
    )

    german = i18n.load_translations(tmp_path, "de")

    assert german.gettext("Runs") == "Läufe"
    assert german.gettext("Queued") == "Queued"  # empty in de
    assert german.gettext("Log") == "Log"  # fuzzy: not trusted
    assert german.gettext("Tables") == "Tables"  # absent from de


def test_every_catalog_parses_without_errors():
    for folder in sorted(p for p in LOCALES.iterdir() if p.is_dir()):
        with (folder / "LC_MESSAGES" / "messages.po").open("rb") as fp:
            read_po(fp, locale=folder.name, abort_invalid=True)


@pytest.mark.parametrize(
    ("cookie", "header", "expected"),
    [
        ("es", "de-DE,de;q=0.9", "es"),  # the operator's choice wins
        (None, "de-AT,de;q=0.9,en;q=0.5", "de"),
        (None, "fr-FR, es;q=0.5, en;q=0.1", "es"),
        (None, "en-GB;q=0.2, de;q=0.8", "de"),
        (None, "fr", "en"),
        (None, "de;q=0", "en"),
        (None, ";;;q=x,,", "en"),
        ("xx", None, "en"),
        (None, None, "en"),
    ],
)
def test_the_locale_follows_the_cookie_then_the_browser(cookie, header, expected):
    assert i18n.negotiate(cookie, header) == expected


def test_the_languages_are_named_in_themselves():
    names = i18n.language_names()

    assert list(names)[0] == "en"
    assert names["de"] == "Deutsch"
    assert names["es"].lower() == "español"


def test_dates_and_numbers_are_formatted_for_the_locale():
    when = datetime(2026, 12, 3, 14, 5, 9, tzinfo=UTC)

    de, es, en = i18n.LocaleFormat("de"), i18n.LocaleFormat("es"), i18n.LocaleFormat("en")

    assert de.number(1234567.5) == "1.234.567,5"
    assert en.number(1234567.5) == "1,234,567.5"
    assert es.percent(0.25).replace("\xa0", " ") == "25 %"
    assert de.datetime(when).startswith("03.12.2026")
    assert "Dec" in en.datetime(when)
    assert de.duration(90) == "2 Minuten" or "Min" in de.duration(90)
    assert en.number(None) == ""
