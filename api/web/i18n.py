"""The operator's language: catalogs, which locale a request gets, and locale-aware formatting.

Catalogs are gettext `.po` files under `locales/{lang}/LC_MESSAGES/messages.po`, the
sources a translator edits. They are compiled in memory when the dashboard starts, so
there is no build step and nothing generated to forget. Message ids are the English text:
a string a catalog lacks (or leaves empty, or marks fuzzy) shows in English, never as a
key. The strings the page's scripts need are the `t("...")` calls in `static/js/`, found
with Babel's JavaScript extractor and rendered into each page from the same catalogs.

A request's locale: the `edgebatch_lang` cookie if it names a language we have, else the
best match of the browser's `Accept-Language`, else English.
"""

from __future__ import annotations

import dataclasses
import functools
import io
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from importlib import resources
from importlib.resources.abc import Traversable

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime, format_timedelta
from babel.messages.extract import extract_javascript
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import NullTranslations, Translations

DEFAULT_LOCALE = "en"
COOKIE = "edgebatch_lang"
DOMAIN = "messages"
# The keyword the scripts translate with: t("Run queued").
JS_KEYWORDS = {"t": None}


def _package() -> Traversable:
    return resources.files("edgebatch.api.web")


def locales_dir() -> Traversable:
    return _package() / "locales"


@functools.cache
def available_locales() -> tuple[str, ...]:
    """The languages with a catalog, English first."""
    found = sorted(
        entry.name
        for entry in locales_dir().iterdir()
        if entry.is_dir() and (entry / "LC_MESSAGES" / f"{DOMAIN}.po").is_file()
    )
    return (DEFAULT_LOCALE, *(x for x in found if x != DEFAULT_LOCALE))


def _compile(folder: Traversable, lang: str) -> Translations:
    """The catalog of `lang` as gettext translations (fuzzy and empty entries left out)."""
    with (folder / lang / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as fp:
        catalog = read_po(fp, locale=lang, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


def load_translations(folder: Traversable, lang: str) -> NullTranslations:
    """gettext for `lang` from the catalogs in `folder`: its own strings, else English.

    The English catalog comes second, and the message id (English itself) last, so a
    string no catalog has, or one marked fuzzy, still reads as English.
    """
    english = _compile(folder, DEFAULT_LOCALE)
    if lang == DEFAULT_LOCALE:
        return english
    chosen = _compile(folder, lang)
    chosen.add_fallback(english)
    return chosen


@functools.cache
def translations(lang: str) -> NullTranslations:
    """gettext for `lang` from the dashboard's catalogs (English for a language we lack)."""
    return load_translations(locales_dir(), lang if lang in available_locales() else "en")


def _accept_language(header: str) -> list[str]:
    """The languages of an `Accept-Language` header, best first (`q=0` dropped)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        name, _, params = part.strip().partition(";")
        name = name.strip()
        if not name or name == "*":
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0:
            ranked.append((-q, index, name))
    return [name for _, _, name in sorted(ranked)]


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The locale of a request: the cookie's choice, else the browser's, else English."""
    have = available_locales()
    if cookie and cookie in have:
        return cookie
    wanted = _accept_language(accept_language or "")
    match = Locale.negotiate(wanted, list(have), sep="-") if wanted else None
    if match is None and wanted:
        # "de-AT" negotiates against "de" only through its language part.
        bases = [w.split("-")[0].lower() for w in wanted]
        match = next((Locale.parse(b) for b in bases if b in have), None)
    return str(match.language) if match is not None else DEFAULT_LOCALE


@functools.cache
def language_names() -> dict[str, str]:
    """Each available language named in itself ("Deutsch", "español"), for the switcher."""
    names = {}
    for lang in available_locales():
        try:
            name = Locale.parse(lang).get_display_name(lang) or lang
        except UnknownLocaleError:
            name = lang
        names[lang] = name[:1].upper() + name[1:]
    return names


def _static_js() -> Iterable[Traversable]:
    folder = _package() / "static" / "js"
    return sorted((f for f in folder.iterdir() if f.name.endswith(".js")), key=lambda f: f.name)


@functools.cache
def script_messages() -> tuple[str, ...]:
    """Every `t("...")` of the page scripts: what each page hands its scripts, translated."""
    found: dict[str, None] = {}
    for script in _static_js():
        with script.open("rb") as fp:
            for _, _, message, _ in extract_javascript(fp, JS_KEYWORDS, [], {}):
                # t("{n} of {total}", {...}) comes back as (msgid, None): the id is first.
                msgid = message[0] if isinstance(message, tuple) else message
                if isinstance(msgid, str) and msgid:
                    found[msgid] = None
    return tuple(found)


def script_catalog(lang: str) -> dict[str, str]:
    """The scripts' strings in `lang` (English where the catalog has none)."""
    gettext = translations(lang).gettext
    return {message: gettext(message) for message in script_messages()}


@dataclasses.dataclass(frozen=True)
class LocaleFormat:
    """Dates, numbers and durations in one locale, for templates (server-side, UTC)."""

    lang: str

    def datetime(self, value: datetime | None, fmt: str = "medium") -> str:
        return "" if value is None else format_datetime(value, fmt, locale=self.lang)

    def number(self, value: float | int | None) -> str:
        return "" if value is None else format_decimal(value, locale=self.lang)

    def percent(self, value: float | None) -> str:
        return "" if value is None else format_percent(value, locale=self.lang)

    def duration(self, seconds: float | None) -> str:
        if seconds is None:
            return ""
        return format_timedelta(timedelta(seconds=seconds), threshold=1.5, locale=self.lang)


def page_strings(lang: str, extra: Mapping[str, object] | None = None) -> dict[str, object]:
    """What a page's scripts get: the locale, the strings, and extra per-page values."""
    return {"locale": lang, "messages": script_catalog(lang), **(extra or {})}
