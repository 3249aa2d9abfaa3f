// Queues and workers with their health, and how deep the queues have been.
import { getOptional, items } from "./api.js";
import { emptyChart, sparkline, timeChart } from "./charts.js";
import { currentUser, el, poll } from "./common.js";
import { fmtAgo, fmtDateTime, fmtNumber, parseTime, t } from "./i18n.js";

const depths = new Map(); // queue -> [[epoch s, depth]] seen since the page opened
const HEALTH = { healthy: t("healthy"), late: t("late"), dead: t("dead"), stopped: t("stopped") };

// stopped (said goodbye), dead (its heartbeat lapsed), late (a heartbeat overdue), healthy.
function health(worker) {
  if (worker.stopped_at || worker.state === "stopped") return "stopped";
  if (worker.alive === false) return "dead";
  const beat = parseTime(worker.heartbeat_at);
  const age = worker.heartbeat_age_s ?? (beat ? (Date.now() - beat.getTime()) / 1000 : Infinity);
  return age < 60 ? "healthy" : age < 300 ? "late" : "dead";
}

function runningOf(worker) {
  const h = worker.health || {};
  const running = h.running_iterations ?? h.iterations_running ?? h.running ?? h.active_runs;
  return Array.isArray(running) ? running.length : running;
}

function executorsOf(worker) {
  const h = worker.health || {};
  const now = h.executors ?? h.executor_count;
  const bounds = worker.desired_executors;
  const range = bounds ? `${fmtNumber(bounds.min_executors)}–${fmtNumber(bounds.max_executors)}` : "";
  const current = typeof now === "number" ? fmtNumber(now) : Array.isArray(now) ? fmtNumber(now.length) : "";
  return [current, range && `(${range})`].filter(Boolean).join(" ") || "–";
}

function queueRow(q) {
  const name = q.name || q.queue;
  const depth = q.queued ?? q.depth ?? 0;
  const history = depths.get(name) || [];
  return el(
    "tr",
    {},
    el("td", { class: "mono", text: name }),
    el("td", { class: "num", text: fmtNumber(depth) }),
    el("td", { class: "num", text: fmtNumber(q.running ?? 0) }),
    el("td", { text: q.oldest_queued_at ? fmtAgo(q.oldest_queued_at) : "–", title: fmtDateTime(q.oldest_queued_at) }),
    el("td", {}, sparkline(history.map(([, d]) => d), { color: "#d97706" })),
  );
}

function workerRow(w) {
  const state = health(w);
  const queues = (w.queues || []).join(", ");
  const name = w.spark_ui_url ? el("a", { href: w.spark_ui_url, text: w.worker_id, target: "_blank", rel: "noopener" }) : w.worker_id;
  return el(
    "tr",
    { class: state === "healthy" ? "" : "row-offline" },
    el("td", { class: "mono", title: `${w.host} · pid ${w.pid}` }, name),
    el("td", {}, el("span", { class: `badge health-${state}`, text: HEALTH[state] || state })),
    el("td", { text: queues || "–" }),
    el("td", { text: fmtAgo(w.heartbeat_at), title: fmtDateTime(w.heartbeat_at) }),
    el("td", { class: "num", text: fmtNumber(runningOf(w)) }),
    el("td", { class: "num", text: executorsOf(w) }),
  );
}

async function refresh() {
  const [queuesBody, workersBody] = await Promise.all([getOptional("/queues"), getOptional("/workers")]);
  document.getElementById("unavailable").hidden = queuesBody !== null || workersBody !== null;
  const queues = items(queuesBody);
  const workers = items(workersBody);
  const now = Date.now() / 1000;
  for (const q of queues) {
    const name = q.name || q.queue;
    const list = depths.get(name) || [];
    list.push([now, q.queued ?? q.depth ?? 0]);
    depths.set(name, list.slice(-120));
  }
  document.querySelector("#queues-table tbody").replaceChildren(...queues.map(queueRow));
  document.getElementById("queues-empty").hidden = queues.length > 0;
  document.querySelector("#workers-table tbody").replaceChildren(...workers.map(workerRow));
  document.getElementById("workers-empty").hidden = workers.length > 0;
  const chart = document.getElementById("chart-queue");
  const names = [...depths.keys()];
  const first = names.length ? depths.get(names[0]) : [];
  if (first.length > 1) {
    const xs = first.map(([x]) => x);
    timeChart(chart, xs, names.map((n) => ({ label: n, values: xs.map((_, i) => (depths.get(n)[i] || [])[1] ?? null) })), { whole: true });
  } else emptyChart(chart, t("Collecting queue depth…"));
  document.getElementById("updated").textContent = t("Updated {time}", { time: new Date().toLocaleTimeString(document.documentElement.lang) });
}

currentUser().then(() => poll(refresh, 5));
