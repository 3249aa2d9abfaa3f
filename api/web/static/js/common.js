// What every signed-in page shares: the top bar (user, sign out, language), DOM helpers,
// state badges, progress bars and a poll loop that rests while the tab is hidden.
import { get, post, rememberCsrf, toSignIn } from "./api.js";
import { stateName, t } from "./i18n.js";

for (const select of document.querySelectorAll("select[data-autosubmit]")) {
  select.addEventListener("change", () => select.form.submit());
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function badge(state) {
  return el("span", { class: `badge state-${state}`, "data-state": state, text: stateName(state) });
}

export function setBadge(node, state) {
  node.className = `badge state-${state}`;
  node.dataset.state = state;
  node.textContent = stateName(state);
}

// done/total with the failed share in red; `running` animates the bar.
export function progressBar(done, failed, total, state) {
  const bar = el("div", { class: `progress state-${state}` });
  updateProgress(bar, done, failed, total, state);
  return bar;
}

export function updateProgress(node, done, failed, total, state) {
  node.className = `progress ${node.classList.contains("big") ? "big " : ""}state-${state}`;
  let ok = node.querySelector(".bar");
  if (!ok) {
    ok = el("div", { class: "bar" });
    node.append(ok);
  }
  let bad = node.querySelector(".bar-failed");
  if (!bad) {
    bad = el("div", { class: "bar-failed" });
    node.append(bad);
  }
  let label = node.querySelector(".progress-label");
  if (!label) {
    label = el("span", { class: "progress-label" });
    node.append(label);
  }
  const share = (n) => (total > 0 ? `${Math.min(100, (100 * n) / total)}%` : "0%");
  ok.style.width = share(done);
  bad.style.width = share(failed);
  bad.style.left = share(done);
  label.textContent = total > 0 ? t("{done} of {total}", { done, total }) : "";
}

export function showError(node, error) {
  node.textContent = error ? error.message || String(error) : "";
  node.hidden = !error;
}

let me = null;

export async function currentUser() {
  if (!me) {
    me = await get("/auth/me");
    rememberCsrf(me.csrf_token);
    const name = document.getElementById("user-name");
    if (name) {
      const roles = { viewer: t("viewer"), operator: t("operator"), admin: t("admin") };
      const role = me.role || (me.roles && me.roles[0]) || "";
      const who = (me.name || me.username || "").replace(/^(user|token):/, "");
      name.textContent = role ? `${who} · ${roles[role] || role}` : who;
    }
  }
  return me;
}

const RANK = { viewer: 0, operator: 1, admin: 2 };

export function may(user, role) {
  const have = user.role || (user.roles && user.roles[0]) || "viewer";
  return (RANK[have] ?? 0) >= RANK[role];
}

document.getElementById("sign-out")?.addEventListener("click", async () => {
  try {
    await post("/auth/logout");
  } finally {
    sessionStorage.clear();
    toSignIn();
  }
});

// Call `fn` now and every `seconds` while the tab is visible; returns a stop function.
export function poll(fn, seconds) {
  let timer = null;
  let stopped = false;
  const live = document.getElementById("live");
  const tick = async () => {
    if (stopped) return;
    try {
      await fn();
      if (live) live.hidden = false;
      live?.classList.remove("stale");
    } catch (error) {
      live?.classList.add("stale");
      console.warn(error);
    }
    if (!stopped) timer = setTimeout(tick, document.hidden ? seconds * 5000 : seconds * 1000);
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
