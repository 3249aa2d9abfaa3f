// Plots where a person would rather look than read: uPlot (served by this service, see
// static/vendor/) for time series and bars, a tiny SVG for sparklines in table rows.
import { fmtDateTime, fmtDay, fmtDuration, fmtDurationShort, fmtNumber, fmtPercent, locale, t } from "./i18n.js";

const uPlot = window.uPlot;
const COLORS = ["#2563eb", "#16a34a", "#dc2626", "#d97706", "#7c3aed", "#0891b2", "#db2777"];
const charts = new WeakMap();

function sizeOf(node) {
  return { width: Math.max(240, node.clientWidth || 320), height: 180 };
}

function axisValues(kind) {
  if (kind === "duration") return (u, values) => values.map((v) => fmtDurationShort(v));
  if (kind === "percent") return (u, values) => values.map((v) => fmtPercent(v));
  return (u, values) => values.map((v) => fmtNumber(v));
}

const hourMinute = new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit" });

// Ticks as days when the plot spans more than two days, else as hours and minutes.
function timeAxis(byDay) {
  return {
    stroke: "#64748b",
    grid: { stroke: "#eef2f7" },
    space: 70,
    values: (u, values) => {
      const span = (u.scales.x.max ?? 0) - (u.scales.x.min ?? 0);
      return values.map((v) => (byDay || span > 2 * 86400 ? fmtDay(v * 1000) : hourMinute.format(v * 1000)));
    },
  };
}

// A plot of one point, or of bars, needs room around the data to be read.
function xRange(byDay, bars) {
  return (u, min, max) => {
    const pad = bars ? (byDay ? 43200 : 900) : 0;
    if (min === max) return [min - (pad || 1800), max + (pad || 1800)];
    return [min - pad, max + pad];
  };
}

// Counts move in whole steps: no "0.5 runs" on an axis.
const WHOLE = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 100000, 1000000];

// series: [{label, values, kind?}] over xs (epoch seconds); redraws in place when called again.
export function timeChart(node, xs, series, { kind = "number", byDay = false, bars = false, points = false, whole = false } = {}) {
  if (!uPlot) return;
  const data = [xs, ...series.map((s) => s.values)];
  const existing = charts.get(node);
  if (existing && existing.series.length === series.length + 1) {
    existing.setData(data);
    return;
  }
  existing?.destroy();
  node.textContent = "";
  const opts = {
    ...sizeOf(node),
    legend: { show: series.length > 1 },
    cursor: { points: { size: 6 } },
    scales: { x: { time: true, range: xRange(byDay, bars) }, y: { range: kind === "percent" ? [0, 1] : (u, min, max) => [0, Math.max(max * 1.1, 1)] } },
    axes: [timeAxis(byDay), { stroke: "#64748b", grid: { stroke: "#eef2f7" }, size: 72, values: axisValues(kind), incrs: whole ? WHOLE : undefined }],
    series: [
      { label: t("Time"), value: (u, v) => (v === null ? "–" : fmtDateTime(new Date(v * 1000))) },
      ...series.map((s, i) => ({
        label: s.label,
        stroke: s.color || COLORS[i % COLORS.length],
        width: 2,
        fill: bars ? `${s.color || COLORS[i % COLORS.length]}55` : undefined,
        paths: bars ? uPlot.paths.bars({ size: [0.6, 40] }) : points ? () => null : undefined,
        points: { show: points || undefined, size: points ? 7 : 4, fill: s.color || COLORS[i % COLORS.length] },
        spanGaps: false,
        value: (u, v) => (v === null || v === undefined ? "–" : kind === "duration" ? fmtDuration(v) : axisValues(kind)(u, [v])[0]),
      })),
    ],
  };
  const chart = new uPlot(opts, data, node);
  charts.set(node, chart);
  new ResizeObserver(() => chart.setSize(sizeOf(node))).observe(node);
}

export function emptyChart(node, text) {
  charts.get(node)?.destroy();
  charts.delete(node);
  node.textContent = "";
  node.append(Object.assign(document.createElement("p"), { className: "chart-empty muted", textContent: text }));
}

// A sparkline of `values` (nulls are gaps), 120 x 28, with the last value as a dot.
export function sparkline(values, { width = 120, height = 28, color = "#2563eb", max = null } = {}) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("class", "sparkline");
  const present = values.filter((v) => v !== null && v !== undefined);
  if (present.length === 0) return svg;
  const top = max ?? Math.max(...present);
  const bottom = Math.min(0, ...present);
  const span = top - bottom || 1;
  const step = values.length > 1 ? (width - 4) / (values.length - 1) : 0;
  let d = "";
  let last = null;
  values.forEach((v, i) => {
    if (v === null || v === undefined) return;
    const x = 2 + i * step;
    const y = height - 2 - ((Math.min(top, Math.max(bottom, v)) - bottom) / span) * (height - 4);
    d += `${d && last === i - 1 ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
    last = i;
  });
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", color);
  path.setAttribute("stroke-width", "1.5");
  svg.append(path);
  const [x, y] = d.split(/[ML]/).filter(Boolean).pop().split(",");
  const dot = document.createElementNS(ns, "circle");
  Object.entries({ cx: x, cy: y, r: 2.5, fill: color }).forEach(([k, v]) => dot.setAttribute(k, v));
  svg.append(dot);
  return svg;
}
