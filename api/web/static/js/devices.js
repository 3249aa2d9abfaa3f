// The fleet: each device's health as sparklines, online or not, and its alarms, which an
// operator acknowledges here.
import { getOptional, items, post } from "./api.js";
import { sparkline, timeChart } from "./charts.js";
import { currentUser, el, may, poll, showError } from "./common.js";
import { fmtAgo, fmtDateTime, fmtNumber, fmtPercent, parseTime, t } from "./i18n.js";

let user = null;
const errorBox = document.getElementById("devices-error");
const histories = new Map(); // "tenant/device" -> heartbeats, newest read every minute
let historiesReadAt = 0;
const HISTORY_DEVICES = 40;
const SEVERITY = { info: t("info"), warning: t("warning"), critical: t("critical") };

function series(device, key) {
  const history = histories.get(`${device.tenant}/${device.device}`) || [];
  const values = history.map((h) => h[`${key}_percent`] ?? h[key] ?? null);
  return values.length ? values : [device[`${key}_percent`] ?? null];
}

// Each shown device's recent heartbeats, for its sparklines (the fleet list has only the last).
async function readHistories(devices) {
  if (Date.now() - historiesReadAt < 60_000) return;
  historiesReadAt = Date.now();
  await Promise.all(devices.slice(0, HISTORY_DEVICES).map(async (d) => {
    const body = await getOptional(`/devices/${encodeURIComponent(d.tenant)}/${encodeURIComponent(d.device)}?limit=60`);
    const rows = (body && body.history) || [];
    const time = (h) => parseTime(h.ts || h.received_at || h.time)?.getTime() ?? 0;
    histories.set(`${d.tenant}/${d.device}`, rows.slice().sort((a, b) => time(a) - time(b)));
  }));
}

function metricCell(device, key) {
  const values = series(device, key);
  const last = values.filter((v) => v !== null).pop();
  const share = last === undefined ? null : last > 1 ? last / 100 : last;
  const color = share !== null && share > 0.9 ? "#dc2626" : share !== null && share > 0.75 ? "#d97706" : "#2563eb";
  const line = sparkline(values.map((v) => (v === null ? null : v > 1 ? v / 100 : v)), { color, max: 1 });
  return el("td", {}, el("div", { class: "metric" }, line, el("span", { text: fmtPercent(share) })));
}

let shownDevice = null;

// One device's CPU, memory and disk over its recent heartbeats, as a plot.
function showDevice(key) {
  shownDevice = key;
  const history = histories.get(key) || [];
  document.getElementById("device-card").hidden = false;
  document.getElementById("device-name").textContent = key;
  const xs = history.map((h) => parseTime(h.ts).getTime() / 1000);
  const share = (name) => history.map((h) => (h[`${name}_percent`] == null ? null : h[`${name}_percent`] / 100));
  timeChart(document.getElementById("chart-device"), xs, [
    { label: t("CPU"), values: share("cpu") },
    { label: t("Memory"), values: share("memory") },
    { label: t("Disk"), values: share("disk") },
  ], { kind: "percent" });
}

function deviceRow(d) {
  const online = d.online ?? d.status === "online";
  const key = `${d.tenant}/${d.device}`;
  return el(
    "tr",
    { class: `clickable ${online ? "" : "row-offline"}`, "data-device": key, onclick: () => showDevice(key) },
    el("td", { class: "mono", text: d.device || d.name }),
    el("td", { text: d.tenant }),
    el("td", {}, el("span", { class: `badge ${online ? "state-succeeded" : "state-cancelled"}`, text: online ? t("online") : t("offline") })),
    el("td", { text: fmtAgo(d.last_seen || d.last_seen_at), title: fmtDateTime(d.last_seen || d.last_seen_at) }),
    metricCell(d, "cpu"),
    metricCell(d, "memory"),
    metricCell(d, "disk"),
    el("td", { class: "num", text: fmtNumber(d.outbox_backlog) }),
    el("td", { class: "num", text: fmtNumber(d.shed_count) }),
  );
}

function alarmRow(a) {
  const id = a.alarm_id;
  const acked = a.acked;
  const ack = !acked && user && may(user, "operator")
    ? el("button", { type: "button", class: "btn btn-small", text: t("Acknowledge"), onclick: async (e) => {
        e.target.disabled = true;
        showError(errorBox, null);
        try {
          await post(`/alarms/${encodeURIComponent(id)}/ack`);
          await refresh();
        } catch (error) {
          showError(errorBox, error);
          e.target.disabled = false;
        }
      } })
    : el("span", { class: "muted", text: acked ? `${(a.acked_by || "").replace(/^(user|token):/, "")} · ${fmtAgo(a.acked_at)}` : "–" });
  return el(
    "tr",
    { class: acked ? "" : `alarm-open severity-${a.severity}` },
    el("td", { text: fmtDateTime(a.ts) }),
    el("td", {}, el("span", { class: `badge severity-${a.severity}`, text: SEVERITY[a.severity] || a.severity })),
    el("td", { class: "mono", text: `${a.tenant}/${a.device}` }),
    el("td", { text: a.rule }),
    el("td", { text: a.metric }),
    el("td", { class: "num", text: fmtNumber(a.value) }),
    el("td", { class: "num", text: fmtNumber(a.threshold ?? a.baseline) }),
    el("td", {}, ack),
  );
}

async function refresh() {
  const [devicesBody, alarmsBody] = await Promise.all([getOptional("/devices"), getOptional("/alarms")]);
  document.getElementById("unavailable").hidden = devicesBody !== null;
  const devices = items(devicesBody);
  const alarms = items(alarmsBody);
  const online = devices.filter((d) => d.online ?? d.status === "online").length;
  document.getElementById("tile-online").textContent = devicesBody ? fmtNumber(online) : "–";
  document.getElementById("tile-offline").textContent = devicesBody ? fmtNumber(devices.length - online) : "–";
  document.getElementById("tile-alarms").textContent = alarmsBody ? fmtNumber(alarms.filter((a) => !a.acked).length) : "–";
  document.getElementById("tile-backlog").textContent = devicesBody ? fmtNumber(devices.reduce((s, d) => s + (d.outbox_backlog ?? 0), 0)) : "–";
  await readHistories(devices);
  if (shownDevice) showDevice(shownDevice);
  document.querySelector("#devices-table tbody").replaceChildren(...devices.map(deviceRow));
  document.getElementById("devices-empty").hidden = devices.length > 0;
  document.querySelector("#alarms-table tbody").replaceChildren(...alarms.map(alarmRow));
  document.getElementById("alarms-empty").hidden = alarms.length > 0;
  document.getElementById("updated").textContent = t("Updated {time}", { time: new Date().toLocaleTimeString(document.documentElement.lang) });
}

currentUser().then((me) => {
  user = me;
  poll(refresh, 10);
});
