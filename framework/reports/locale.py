"""Numbers, money, dates and the few words of a report, in the reader's language (Babel).

Money stays `Decimal` end to end: Babel formats a Decimal without passing it through a
float, so a bill shows exactly the cents the billing job computed.

    fmt = Formatter("de")
    fmt.money(Decimal("1234.56"), "EUR")  # '1.234,56\xa0€'
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal

from edgebatch.framework.errors import FrameworkError

LANGUAGES = ("en", "de", "es")
# The locale each language formats in (the region decides separators and currency layout).
_LOCALES = {"en": "en_US", "de": "de_DE", "es": "es_ES"}

_WORDS: dict[str, dict[str, str]] = {
    "bill": {"en": "Water bill", "de": "Wasserrechnung", "es": "Factura de agua"},
    "customer": {"en": "Customer", "de": "Kunde", "es": "Cliente"},
    "period": {"en": "Billing period", "de": "Abrechnungszeitraum", "es": "Periodo de facturación"},
    "issued": {"en": "Issued", "de": "Ausgestellt", "es": "Emitida"},
    "meter": {"en": "Meter", "de": "Zähler", "es": "Contador"},
    "from_to": {"en": "Period", "de": "Zeitraum", "es": "Periodo"},
    "consumption": {"en": "Consumption (m³)", "de": "Verbrauch (m³)", "es": "Consumo (m³)"},
    "tier": {"en": "Tier", "de": "Stufe", "es": "Tramo"},
    "unit_price": {"en": "Unit price", "de": "Preis je m³", "es": "Precio por m³"},
    "amount": {"en": "Amount", "de": "Betrag", "es": "Importe"},
    "estimated": {"en": "estimated", "de": "geschätzt", "es": "estimado"},
    "estimated_note": {
        "en": "Lines marked estimated are estimated for gaps in the meter's readings.",
        "de": "Als geschätzt markierte Zeilen überbrücken Lücken in den Zählerdaten.",
        "es": "Las líneas marcadas como estimadas cubren huecos en las lecturas del contador.",
    },
    "total": {"en": "Total", "de": "Gesamtbetrag", "es": "Total"},
    "run_report": {"en": "Run report", "de": "Laufbericht", "es": "Informe de ejecuciones"},
    "job": {"en": "Job", "de": "Job", "es": "Trabajo"},
    "run": {"en": "Run", "de": "Lauf", "es": "Ejecución"},
    "state": {"en": "State", "de": "Status", "es": "Estado"},
    "started": {"en": "Started", "de": "Gestartet", "es": "Inicio"},
    "duration": {"en": "Duration (s)", "de": "Dauer (s)", "es": "Duración (s)"},
    "iterations": {"en": "Iterations", "de": "Iterationen", "es": "Iteraciones"},
    "failed": {"en": "Failed", "de": "Fehlgeschlagen", "es": "Fallidas"},
    "rows": {"en": "Rows written", "de": "Geschriebene Zeilen", "es": "Filas escritas"},
    "runs": {"en": "Runs", "de": "Läufe", "es": "Ejecuciones"},
    "failures": {"en": "Failures", "de": "Fehler", "es": "Fallos"},
    "none": {"en": "None.", "de": "Keine.", "es": "Ninguno."},
}


class ReportLanguageError(FrameworkError):
    """A report was asked for in a language it is not written in."""


class Formatter:
    """Formats for one language; `language` is one of `LANGUAGES`."""

    def __init__(self, language: str) -> None:
        if language not in LANGUAGES:
            raise ReportLanguageError(
                f"reports are written in {', '.join(LANGUAGES)}, not {language!r}"
            )
        self.language = language
        self.locale = Locale.parse(_LOCALES[language])

    def word(self, key: str) -> str:
        return _WORDS[key][self.language]

    def money(self, amount: Decimal, currency: str) -> str:
        if not isinstance(amount, Decimal):
            raise TypeError(f"money must be a Decimal, got {type(amount).__name__}")
        return format_currency(amount, currency, locale=self.locale)

    def number(self, value: Decimal | int | float, places: int | None = None) -> str:
        if places is None:
            return format_decimal(value, locale=self.locale)
        pattern = "#,##0." + "0" * places if places else "#,##0"
        return format_decimal(value, format=pattern, locale=self.locale)

    def date(self, value: dt.date) -> str:
        return format_date(value, format="medium", locale=self.locale)

    def datetime(self, value: dt.datetime) -> str:
        text = format_datetime(value, format="medium", locale=self.locale, tzinfo=dt.UTC)
        # CLDR puts a narrow no-break space before AM/PM; the PDF's standard fonts lack it.
        return text.replace("\u202f", " ")
