// One run: its facts and progress, its iterations, and a log pane that follows new lines
// as the server sends them (Server-Sent Events, resuming from the last id it saw).
import { API, get, items, post } from "./api.js";
import { badge, currentUser, el, may, poll, setBadge, showError, updateProgress } from "./common.js";
import { durationOf, fmtDateTime, fmtDuration, fmtNumber, fmtTime, page, stateName, t } from "./i18n.js";
import { progressOf } from "./progress.js";

const runId = page.runId;
const logPane = document.getElementById("log");
const follow = document.getElementById("log-follow");
const streamState = document.getElementById("log-stream");
const iterationFilter = document.getElementById("log-iteration");
const errorBox = document.getElementById("run-error");
const partitionOf = new Map();
let lastLogId = 0;
let source = null;
let stopPolling = null;
let user = null;
const seen = new Set();

function setText(id, text) {
  document.getElementById(id).textContent = text;
}

function iterationRow(it) {
  // Spark's task counts are sampled while an iteration runs; once it ended the bar is full.
  const ended = !["queued", "running"].includes(it.state);
  const tasks = !ended && it.tasks_total ? `${fmtNumber(it.tasks_done)} / ${fmtNumber(it.tasks_total)}` : "";
  const share = ended ? 100 : it.tasks_total ? Math.min(100, (100 * it.tasks_done) / it.tasks_total) : 0;
  return el(
    "tr",
    { "data-iteration": it.id, class: `row-${it.state}` },
    el("td", { class: "mono", text: it.partition ?? it.partition_key }),
    el("td", {}, badge(it.state)),
    el("td", { class: "num", text: fmtNumber(it.attempts), title: (it.attempt_list || []).map((a) => `${a.number}: ${stateName(a.state)}${a.error ? ` (${a.error})` : ""}`).join("\n") }),
    el("td", { class: "num", text: fmtNumber(it.rows_in) }),
    el("td", { class: "num", text: fmtNumber(it.rows_out) }),
    el("td", { class: "progress-col" }, el("div", { class: `progress slim state-${it.state}` }, el("div", { class: "bar", style: `width:${share}%` }), el("span", { class: "progress-label", text: tasks }))),
    el("td", { text: it.started_at ? fmtTime(it.started_at) : "–", title: fmtDateTime(it.started_at) }),
    el("td", { class: "num", text: fmtDuration(it.duration_s ?? durationOf(it.started_at, it.ended_at)) }),
    el("td", { class: "error-cell", text: it.error || "", title: it.error || "" }),
  );
}

async function iterationsOf(run) {
  if (Array.isArray(run.iteration_list)) return run.iteration_list;
  if (Array.isArray(run.iterations)) return run.iterations;
  return items(await get(`/runs/${runId}/iterations`));
}

async function refresh() {
  const run = await get(`/runs/${runId}`);
  const iterations = await iterationsOf(run);
  setText("run-job", run.job);
  setBadge(document.getElementById("run-state"), run.state);
  document.title = `#${runId} ${run.job} · ${document.getElementById("run-state").textContent} · edgebatch`;
  setText("run-trigger", run.trigger || "–");
  setText("run-by", run.triggered_by || "–");
  setText("run-created", fmtDateTime(run.created_at));
  setText("run-started", fmtDateTime(run.started_at));
  setText("run-ended", fmtDateTime(run.ended_at));
  setText("run-duration", fmtDuration(durationOf(run.started_at, run.ended_at)));
  const rows = run.rows_out ?? (iterations.some((it) => it.rows_out != null) ? iterations.reduce((sum, it) => sum + (it.rows_out || 0), 0) : null);
  setText("run-rows", fmtNumber(rows));
  const p = progressOf({ ...run, iteration_counts: null, iterations });
  updateProgress(document.getElementById("run-progress"), p.done, p.failed, p.total, run.state);
  const failure = document.getElementById("run-failure");
  failure.hidden = !run.error;
  failure.textContent = run.error || "";
  document.querySelector("#iterations-table tbody").replaceChildren(...iterations.map(iterationRow));
  document.getElementById("iterations-empty").hidden = iterations.length > 0;
  for (const it of iterations) {
    if (!partitionOf.has(it.id)) {
      const key = it.partition ?? it.partition_key;
      partitionOf.set(it.id, key);
      iterationFilter.append(el("option", { value: it.id, text: key }));
    }
  }
  actions(run);
  const finished = !["queued", "running"].includes(run.state);
  if (finished && stopPolling) {
    stopPolling();
    stopPolling = null;
  }
}

function actions(run) {
  if (!user || !may(user, "operator")) return;
  document.getElementById("run-actions").hidden = false;
  document.getElementById("run-cancel").hidden = !["queued", "running"].includes(run.state);
  document.getElementById("run-retry").hidden = !["failed", "cancelled"].includes(run.state);
}

function logLine(line) {
  const level = (line.level || "INFO").toUpperCase();
  const where = line.iteration_id ? partitionOf.get(line.iteration_id) || `#${line.iteration_id}` : "";
  const node = el(
    "div",
    { class: `log-line level-${level.toLowerCase()}`, "data-id": line.id, "data-iteration": line.iteration_id || "" },
    el("span", { class: "log-ts", text: fmtTime(line.ts), title: fmtDateTime(line.ts) }),
    el("span", { class: "log-level", text: level }),
    el("span", { class: "log-where", text: where }),
    el("span", { class: "log-msg", text: line.message }),
  );
  if (iterationFilter.value && String(line.iteration_id) !== iterationFilter.value) node.hidden = true;
  return node;
}

function appendLines(lines) {
  const fresh = lines.filter((line) => !seen.has(line.id));
  if (!fresh.length) return;
  for (const line of fresh) seen.add(line.id);
  logPane.append(...fresh.map(logLine));
  lastLogId = Math.max(lastLogId, ...fresh.map((l) => l.id));
  if (follow.checked) logPane.scrollTop = logPane.scrollHeight;
}

async function history() {
  // Pages of the past first, then the stream from the last id: no line twice, none missed.
  for (;;) {
    const body = await get(`/runs/${runId}/logs?after=${lastLogId}&limit=1000`);
    const lines = items(body);
    appendLines(lines);
    if (lines.length < 1000) return body.finished;
  }
}

function stream() {
  source?.close();
  source = new EventSource(`${API}/runs/${runId}/logs/stream?after=${lastLogId}`, { withCredentials: true });
  const onLine = (event) => {
    try {
      const line = JSON.parse(event.data);
      appendLines(Array.isArray(line) ? line : [line]);
    } catch (error) {
      console.warn("unreadable log event", error);
    }
  };
  source.onmessage = onLine;
  source.addEventListener("log", onLine);
  source.addEventListener("end", () => {
    source.close();
    // A line written just after the run's last move may follow the end: read once more.
    setTimeout(() => history().catch(console.warn), 1500);
    streamState.textContent = t("Log complete");
    streamState.className = "stream-state done";
  });
  source.onopen = () => {
    streamState.textContent = t("Following live");
    streamState.className = "stream-state live";
  };
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) return;
    streamState.textContent = t("Reconnecting…");
    streamState.className = "stream-state stale";
  };
}

iterationFilter.addEventListener("change", () => {
  for (const node of logPane.children) node.hidden = Boolean(iterationFilter.value) && node.dataset.iteration !== iterationFilter.value;
});

async function act(path, confirmText) {
  if (confirmText && !window.confirm(confirmText)) return;
  showError(errorBox, null);
  try {
    const result = await post(path);
    if (result && result.id && result.id !== runId) location.assign(`/runs/${result.id}`);
    else await refresh();
  } catch (error) {
    showError(errorBox, error);
  }
}

document.getElementById("run-cancel").addEventListener("click", () => act(`/runs/${runId}/cancel`, t("Cancel run {id}?", { id: runId })));
document.getElementById("run-retry").addEventListener("click", () => act(`/runs/${runId}/retry`));

currentUser().then(async (me) => {
  user = me;
  try {
    await refresh(); // the iterations first, so the log names each line's partition
  } catch (error) {
    showError(errorBox, error);
  }
  stopPolling = poll(refresh, 2);
  try {
    await history();
  } catch (error) {
    showError(errorBox, error);
  }
  stream();
});
