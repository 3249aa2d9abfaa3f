// The runs page: tiles, plots and the table of recent runs, refreshed every few seconds;
// operators start runs from the side form.
import { get, getOptional, items, post } from "./api.js";
import { emptyChart, sparkline, timeChart } from "./charts.js";
import { badge, currentUser, el, may, poll, progressBar, showError } from "./common.js";
import { durationOf, fmtAgo, fmtDateTime, fmtDuration, fmtNumber, fmtPercent, parseTime, t } from "./i18n.js";
import { progressOf } from "./progress.js";

const table = document.querySelector("#runs-table tbody");
const filterJob = document.getElementById("filter-job");
const filterState = document.getElementById("filter-state");
const more = document.getElementById("more-runs");
const DAY = 86400;
let limit = 50;

function query(extra = {}) {
  const params = new URLSearchParams({ limit: String(limit), ...extra });
  if (filterJob.value) params.set("job", filterJob.value);
  if (filterState.value) params.set("state", filterState.value);
  return `/runs?${params}`;
}

function row(run) {
  const p = progressOf(run);
  const parts = run.partitions || [];
  const shown = parts.length > 3 ? `${parts.slice(0, 3).join(", ")} … (+${fmtNumber(parts.length - 3)})` : parts.join(", ");
  return el(
    "tr",
    { "data-run": run.id, class: `row-${run.state}` },
    el("td", { class: "num mono" }, el("a", { href: `/runs/${run.id}`, text: `#${run.id}` })),
    el("td", {}, el("a", { href: `/runs/${run.id}`, class: "job-name", text: run.job })),
    el("td", {}, badge(run.state)),
    el("td", { class: "progress-col" }, progressBar(p.done, p.failed, p.total, run.state)),
    el("td", { class: "partitions", title: parts.join(", "), text: shown || t("what is due") }),
    el("td", { text: run.trigger }),
    el("td", { title: fmtDateTime(run.created_at), text: fmtAgo(run.created_at) }),
    el("td", { class: "num", text: fmtDuration(durationOf(run.started_at, run.ended_at)) }),
  );
}

function tiles(runs) {
  const now = Date.now() / 1000;
  const since = (run, seconds) => (parseTime(run.ended_at)?.getTime() ?? 0) / 1000 > now - seconds;
  const count = (pred) => runs.filter(pred).length;
  document.getElementById("tile-running").textContent = fmtNumber(count((r) => r.state === "running"));
  document.getElementById("tile-queued").textContent = fmtNumber(count((r) => r.state === "queued"));
  document.getElementById("tile-succeeded").textContent = fmtNumber(count((r) => r.state === "succeeded" && since(r, DAY)));
  document.getElementById("tile-failed").textContent = fmtNumber(count((r) => r.state === "failed" && since(r, DAY)));
  const week = runs.filter((r) => ["succeeded", "failed"].includes(r.state) && since(r, 7 * DAY));
  const ok = week.filter((r) => r.state === "succeeded").length;
  document.getElementById("tile-rate").textContent = week.length ? fmtPercent(ok / week.length) : "–";
}

function charts(runs) {
  const finished = runs.filter((r) => r.ended_at && r.started_at).sort((a, b) => parseTime(a.ended_at) - parseTime(b.ended_at));
  const durations = document.getElementById("chart-durations");
  if (finished.length) {
    const jobs = [...new Set(finished.map((r) => r.job))].slice(0, 6);
    const xs = finished.map((r) => parseTime(r.ended_at).getTime() / 1000);
    const series = jobs.map((job) => ({ label: job, values: finished.map((r) => (r.job === job ? durationOf(r.started_at, r.ended_at) : null)) }));
    timeChart(durations, xs, series, { kind: "duration", points: true });
  } else emptyChart(durations, t("No finished runs yet."));

  const success = document.getElementById("chart-success");
  const today = Math.floor(Date.now() / 1000 / DAY) * DAY;
  const days = Array.from({ length: 14 }, (_, i) => today - (13 - i) * DAY);
  const rate = days.map((day) => {
    const those = finished.filter((r) => {
      const end = parseTime(r.ended_at).getTime() / 1000;
      return end >= day && end < day + DAY && ["succeeded", "failed"].includes(r.state);
    });
    return those.length ? those.filter((r) => r.state === "succeeded").length / those.length : null;
  });
  if (rate.some((v) => v !== null)) timeChart(success, days, [{ label: t("Success rate"), values: rate, color: "#16a34a" }], { kind: "percent", byDay: true, bars: true });
  else emptyChart(success, t("No finished runs yet."));

  const queue = document.getElementById("chart-queue");
  const now = Date.now() / 1000;
  const steps = Array.from({ length: 49 }, (_, i) => now - (48 - i) * 1800);
  const waiting = steps.map((x) => runs.filter((r) => {
    const made = parseTime(r.created_at).getTime() / 1000;
    const began = parseTime(r.started_at || r.ended_at)?.getTime() / 1000 || Infinity;
    return made <= x && began > x;
  }).length);
  if (runs.length) timeChart(queue, steps, [{ label: t("Queued runs"), values: waiting, color: "#d97706" }], { whole: true });
  else emptyChart(queue, t("No runs yet."));
}

async function refresh() {
  const [page, all] = await Promise.all([get(query()), filterJob.value || filterState.value ? get(`/runs?limit=500`) : null]);
  const runs = items(page);
  const overview = all ? items(all) : runs;
  addJobs(overview.map((r) => r.job));
  table.replaceChildren(...runs.map(row));
  document.getElementById("runs-empty").hidden = runs.length > 0;
  more.hidden = !(page && page.next_cursor) && runs.length < limit;
  tiles(overview);
  charts(overview);
  document.getElementById("updated").textContent = t("Updated {time}", { time: new Intl.DateTimeFormat(document.documentElement.lang, { timeStyle: "medium" }).format(new Date()) });
}

const knownJobs = new Set();

// Job names for the filter and the form: the job catalog when the server has one, and
// every job seen in the runs.
function addJobs(names) {
  for (const name of [...names].sort()) {
    if (!name || knownJobs.has(name)) continue;
    knownJobs.add(name);
    filterJob.append(el("option", { value: name, text: name }));
    document.getElementById("job-names").append(el("option", { value: name }));
  }
}

// Each job: where it queues, when it fires next, how its last run went, its success rate
// and the trend of its successful runs' durations.
function jobRow(job) {
  const last = job.last_run;
  const durations = job.durations_s || [];
  return el(
    "tr",
    {},
    el("td", {}, el("span", { class: "job-name", text: job.name }), job.description ? el("div", { class: "muted small", text: job.description }) : null),
    el("td", { class: "mono", text: job.queue || "–" }),
    el("td", { class: "mono", text: job.schedule || "–" }),
    el("td", { text: job.next_fire_times && job.next_fire_times.length ? fmtAgo(job.next_fire_times[0]) : "–", title: (job.next_fire_times || []).map(fmtDateTime).join("\n") }),
    el("td", {}, last ? el("a", { href: `/runs/${last.id}` }, badge(last.state)) : "–"),
    el("td", { class: "num", text: fmtPercent(job.success_rate) }),
    el("td", { title: durations.map(fmtDuration).join(" · ") }, durations.length > 1 ? el("div", { class: "metric" }, sparkline(durations, { color: "#2563eb" }), el("span", { text: fmtDuration(durations[durations.length - 1]) })) : el("span", { class: "muted", text: durations.length ? fmtDuration(durations[0]) : "–" })),
  );
}

async function jobs() {
  const body = await getOptional("/jobs");
  if (!body) return;
  const list = items(body);
  addJobs(list.map((j) => j.name || j));
  document.querySelector("#jobs-table tbody").replaceChildren(...list.map(jobRow));
  document.getElementById("jobs-card").hidden = list.length === 0;
}

async function setUpSubmit() {
  const user = await currentUser();
  if (!may(user, "operator")) return;
  document.getElementById("submit-card").hidden = false;
  const form = document.getElementById("submit-form");
  const error = document.getElementById("submit-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, null);
    const partitions = document.getElementById("submit-partitions").value.split(/[\s,;]+/).filter(Boolean);
    const body = { job: document.getElementById("submit-job").value, partitions, rerun: document.getElementById("submit-rerun").checked };
    try {
      const run = await post("/runs", body);
      location.assign(`/runs/${run.id}`);
    } catch (e) {
      showError(error, e);
    }
  });
}

filterJob.addEventListener("change", refresh);
filterState.addEventListener("change", refresh);
more.addEventListener("click", () => {
  limit += 50;
  refresh();
});

currentUser().then(() => {
  setUpSubmit();
  poll(refresh, 3);
  poll(jobs, 30);
});
