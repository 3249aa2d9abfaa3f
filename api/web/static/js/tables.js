// Every declared table, and one table's history (versions, operations, rows written).
import { getOptional, items } from "./api.js";
import { emptyChart, timeChart } from "./charts.js";
import { currentUser, el, poll } from "./common.js";
import { fmtBytes, fmtDateTime, fmtNumber, parseTime, t } from "./i18n.js";

async function showHistory(name) {
  const body = await getOptional(`/tables/${name.split("/").map(encodeURIComponent).join("/")}/history?limit=50`);
  const versions = items(body).slice().sort((a, b) => a.version - b.version);
  document.getElementById("history-card").hidden = false;
  document.getElementById("history-name").textContent = name;
  const rowsOf = (v) => {
    const m = v.metrics || {};
    return Number(m.numOutputRows ?? m.num_output_rows ?? m.num_added_rows ?? m.numTargetRowsInserted ?? 0);
  };
  document.querySelector("#history-table tbody").replaceChildren(
    ...versions.slice().reverse().map((v) => el("tr", {},
      el("td", { class: "num", text: fmtNumber(v.version) }),
      el("td", { text: fmtDateTime(v.timestamp || v.ts) }),
      el("td", { text: v.operation }),
      el("td", { class: "num", text: fmtNumber(rowsOf(v)) }))),
  );
  const chart = document.getElementById("chart-rows");
  if (versions.length > 1) {
    const xs = versions.map((v) => parseTime(v.timestamp || v.ts).getTime() / 1000);
    timeChart(chart, xs, [{ label: t("Rows written"), values: versions.map(rowsOf) }], { bars: true });
  } else emptyChart(chart, t("No history yet."));
}

function tableRow(tbl) {
  const name = tbl.name;
  return el(
    "tr",
    { class: "clickable", onclick: () => showHistory(name) },
    el("td", { class: "mono" }, el("a", { href: "#", text: name, onclick: (e) => e.preventDefault() })),
    el("td", { text: (tbl.partition_by || tbl.partition_columns || []).join(", ") || "–" }),
    el("td", { class: "num", text: fmtNumber(tbl.rows ?? tbl.num_rows) }),
    el("td", { class: "num", text: fmtNumber(tbl.files ?? tbl.num_files) }),
    el("td", { class: "num", text: fmtBytes(tbl.bytes) }),
    el("td", { class: "num", text: fmtNumber(tbl.version) }),
    el("td", { class: tbl.problem ? "error-cell" : "muted", text: tbl.problem || (tbl.exists ? tbl.comment : t("not created yet")), title: tbl.problem || tbl.comment }),
  );
}

async function refresh() {
  const body = await getOptional("/tables");
  document.getElementById("unavailable").hidden = body !== null;
  const tables = items(body);
  document.querySelector("#tables-table tbody").replaceChildren(...tables.map(tableRow));
  document.getElementById("tables-empty").hidden = tables.length > 0;
  document.getElementById("updated").textContent = t("Updated {time}", { time: new Date().toLocaleTimeString(document.documentElement.lang) });
}

currentUser().then(() => poll(refresh, 30));
