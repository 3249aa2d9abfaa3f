// The page's language: strings from the server's catalogs (rendered into the page) and
// numbers, dates and durations formatted with the browser's Intl for the same locale.
const data = JSON.parse(document.getElementById("page-data").textContent);

export const page = data;
export const locale = data.locale || document.documentElement.lang || "en";
const messages = data.messages || {};

// t("Run {id} queued", {id: 4}): the translation (English if the catalog has none), filled in.
export function t(message, values) {
  let text = messages[message] || message;
  if (values) {
    for (const [key, value] of Object.entries(values)) {
      text = text.split(`{${key}}`).join(String(value));
    }
  }
  return text;
}

export function stateName(state) {
  return (data.states && data.states[state]) || state;
}

const numberFormat = new Intl.NumberFormat(locale);
const percentFormat = new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 1 });
const dateTimeFormat = new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "medium" });
const timeFormat = new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(locale, { month: "short", day: "numeric" });
const relative = new Intl.RelativeTimeFormat(locale, { numeric: "auto" });

export function fmtNumber(value) {
  return value === null || value === undefined ? "–" : numberFormat.format(value);
}

export function fmtPercent(value) {
  return value === null || value === undefined || Number.isNaN(value) ? "–" : percentFormat.format(value);
}

// The API speaks UTC ("2026-12-03T02:51:03" with or without a zone): read it as UTC.
export function parseTime(value) {
  if (!value) return null;
  if (value instanceof Date) return value;
  const text = /[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value}Z`;
  const parsed = new Date(text);
  return Number.isNaN(parsed.getTime()) ? null : parsed;
}

export function fmtDateTime(value) {
  const d = parseTime(value);
  return d ? dateTimeFormat.format(d) : "–";
}

export function fmtTime(value) {
  const d = parseTime(value);
  return d ? timeFormat.format(d) : "–";
}

export function fmtDay(value) {
  const d = value instanceof Date ? value : new Date(value);
  return dayFormat.format(d);
}

export function fmtAgo(value) {
  const d = parseTime(value);
  if (!d) return "–";
  const seconds = Math.round((d.getTime() - Date.now()) / 1000);
  const units = [["day", 86400], ["hour", 3600], ["minute", 60]];
  for (const [unit, size] of units) {
    if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
  }
  return relative.format(seconds, "second");
}

// 75.3 -> "1 min 15 s" in the locale's own unit words.
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "–";
  const unit = (value, name) => new Intl.NumberFormat(locale, { style: "unit", unit: name, unitDisplay: "short", maximumFractionDigits: name === "second" && value < 10 ? 1 : 0 }).format(value);
  if (seconds < 60) return unit(seconds, "second");
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.round(seconds % 60);
  if (h > 0) return `${unit(h, "hour")} ${unit(m, "minute")}`;
  return `${unit(m, "minute")} ${unit(s, "second")}`;
}

// 1536 -> "1.5 kB", in the locale's digits and unit words.
export function fmtBytes(bytes) {
  if (bytes === null || bytes === undefined) return "–";
  const units = ["byte", "kilobyte", "megabyte", "gigabyte", "terabyte"];
  let value = bytes;
  let i = 0;
  while (value >= 1000 && i < units.length - 1) {
    value /= 1000;
    i += 1;
  }
  return new Intl.NumberFormat(locale, { style: "unit", unit: units[i], unitDisplay: "short", maximumFractionDigits: i ? 1 : 0 }).format(value);
}

// An axis tick: one unit, chosen by size ("90 s" -> "1.5 min"), in the locale's words.
export function fmtDurationShort(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "";
  const [value, name] = seconds < 120 ? [seconds, "second"] : seconds < 7200 ? [seconds / 60, "minute"] : [seconds / 3600, "hour"];
  return new Intl.NumberFormat(locale, { style: "unit", unit: name, unitDisplay: "short", maximumFractionDigits: 1 }).format(value);
}

export function durationOf(start, end) {
  const a = parseTime(start);
  if (!a) return null;
  const b = parseTime(end) || new Date();
  return Math.max(0, (b.getTime() - a.getTime()) / 1000);
}
