// Treadle's web UI: plain DOM, no build step, no dependencies. Every value from the API is
// put in the page as text (textContent), never as HTML. The credentials stay in this tab
// (sessionStorage) and go to the API as `Authorization: Bearer`.
"use strict";

const API = "/api/v1";
const TOKEN = "treadle.token";
const view = document.getElementById("view");

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function show(...nodes) { view.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined)); }

function toast(message) {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

function headers(json) {
  const out = json ? { "Content-Type": "application/json" } : {};
  const token = sessionStorage.getItem(TOKEN);
  if (token) out.Authorization = "Bearer " + token;
  return out;
}

async function api(method, path, body) {
  const response = await fetch(API + path, {
    method, headers: headers(body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new Error(`${error.message || response.statusText} [${response.status} ${error.code || ""}]`);
  }
  return data;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const text = q.toString();
  return text ? "?" + text : "";
}

function json(value) { return JSON.stringify(value, null, 2); }
function statusText(status) { return el("span", { class: "status-" + status }, status); }
function ms(value) { return value === null || value === undefined ? "" : `${Math.round(value)} ms`; }
function link(id) { return el("a", { href: "#/execution/" + encodeURIComponent(id) }, id); }
function parseJson(text, what) {
  try { return text.trim() === "" ? undefined : JSON.parse(text); }
  catch (e) { throw new Error(`${what} is not JSON: ${e.message}`); }
}
function action(label, run) {
  return el("button", { type: "button", onclick: async () => {
    try { await run(); } catch (e) { toast(e.message); }
  } }, label);
}

// -- executions -------------------------------------------------------------------------------

async function executions(params) {
  const workflow = el("input", { placeholder: "workflow", value: params.get("workflow") || "" });
  const status = el("select", {}, ["", "pending", "running", "suspended", "completed", "failed",
    "cancelled"].map((s) => el("option", { value: s, selected: s === (params.get("status") || "") },
    s || "any status")));
  const body = el("tbody");
  const more = el("button", { type: "button", hidden: true }, "More");
  let cursor = null;
  async function load() {
    const page = await api("GET", "/executions" + query({
      workflow: workflow.value, status: status.value, limit: 50, cursor }));
    for (const item of page.items) {
      body.append(el("tr", {}, el("td", {}, link(item.id)), el("td", {}, item.workflow),
        el("td", {}, statusText(item.status)), el("td", {}, item.created_at),
        el("td", {}, ms(item.duration_ms)), el("td", {}, item.error || "")));
    }
    cursor = page.next_cursor;
    more.hidden = !cursor;
  }
  more.addEventListener("click", () => load().catch((e) => toast(e.message)));
  const filters = el("form", { class: "row", onsubmit: (e) => {
    e.preventDefault();
    location.hash = "#/executions" + query({ workflow: workflow.value, status: status.value });
  } }, workflow, status, el("button", { type: "submit" }, "Filter"));
  show(el("h2", {}, "Executions"), filters, el("table", {},
    el("thead", {}, el("tr", {}, ["id", "workflow", "status", "created", "duration", "error"]
      .map((h) => el("th", {}, h)))), body), more);
  await load();
}

function waterfall(timeline) {
  const start = Date.parse(timeline.started_at);
  const end = timeline.completed_at ? Date.parse(timeline.completed_at) : Date.now();
  const span = Math.max(1, end - start);
  const rows = timeline.steps.map((step) => {
    const at = step.started_at ? Date.parse(step.started_at) - start : 0;
    const width = Math.max(0.2, 100 * (step.duration_ms || 0) / span);
    const bar = el("div", { class: "bar " + step.status });
    bar.style.marginLeft = `${(100 * at / span).toFixed(2)}%`;  // CSSOM: the CSP forbids style=""
    bar.style.width = `${width.toFixed(2)}%`;
    const details = el("tr", { hidden: true }, el("td", { colspan: 6 },
      el("div", {}, "input"), el("pre", {}, json(step.input)),
      el("div", {}, "output"), el("pre", {}, json(step.output)),
      step.error ? [el("div", {}, "error"), el("pre", {}, json(step.error))] : null));
    const row = el("tr", { onclick: () => { details.hidden = !details.hidden; } },
      el("td", {}, String(step.pos ?? "")), el("td", {}, step.name), el("td", {}, step.type),
      el("td", {}, statusText(step.status)), el("td", {}, ms(step.duration_ms)),
      el("td", {}, el("div", { class: "lane" }, bar)));
    return [row, details];
  });
  return el("table", {}, el("thead", {}, el("tr", {}, ["#", "step", "type", "status", "duration",
    "timeline"].map((h) => el("th", {}, h)))), el("tbody", {}, rows.flat()));
}

// A page of an execution that is still moving reloads itself (twice a second) until it ends,
// pauses or is left; after an action (cancel, resume...) it follows for up to 20 s whatever
// the state, as the engine applies the action in the background. It never reloads while the
// user is typing in it.
let following = null;
const FOLLOW_AFTER_ACTION = 40;

async function execution(id, follow = 0) {
  clearTimeout(following);
  const here = location.hash;
  const path = "/executions/" + encodeURIComponent(id);
  const [timeline, paused] = await Promise.all([api("GET", path + "/timeline"),
    api("GET", path + "/breakpoint")]);
  const reload = (n) => execution(id, n).catch((e) => toast(e.message));
  const refresh = () => reload(FOLLOW_AFTER_ACTION);
  const done = ["completed", "failed", "cancelled"].includes(timeline.status);
  const moving = ["pending", "running"].includes(timeline.status);
  if (!done && (follow > 0 || (moving && !paused.paused))) {
    const tick = () => {
      if (location.hash !== here) return;
      const editing = document.activeElement && view.contains(document.activeElement) &&
        ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName);
      if (editing) following = setTimeout(tick, 500);  // never replace what the user types
      else reload(Math.max(0, follow - 1));
    };
    following = setTimeout(tick, 500);
  }
  const started = (answer) => { location.hash = "#/execution/" + encodeURIComponent(answer.id); };

  const mode = el("select", {}, ["exact", "modified", "step_from"].map((m) => el("option", {}, m)));
  const fromStep = el("select", {}, [...new Set(timeline.steps.map((s) => s.name))]
    .map((name) => el("option", {}, name)));
  const modifications = el("textarea", { placeholder: "modifications (JSON object), for modified" });
  const replay = el("div", { class: "card" }, el("strong", {}, "Replay"),
    el("div", { class: "row" }, mode, "from step", fromStep,
      action("Replay", async () => {
        const body = { mode: mode.value };
        if (mode.value === "modified") body.modifications = parseJson(modifications.value, "modifications") || {};
        if (mode.value === "step_from") body.from_step = fromStep.value;
        started(await api("POST", path + "/replay", body));
      })), modifications);

  const actions = el("div", { class: "row" },
    done ? null : action("Cancel", async () => { await api("POST", path + "/cancel", {}); refresh(); }),
    ["failed", "cancelled"].includes(timeline.status)
      ? action("Retry", async () => started(await api("POST", path + "/retry", {}))) : null,
    action("Refresh", () => reload(0)),
    el("a", { href: "#/diff" + query({ left: id }) }, "Diff with…"));

  let breakpoint = null;
  if (paused.paused) {
    const input = el("textarea", {}, json(paused.input));
    const output = el("textarea", { placeholder: "output for skip (JSON)" });
    breakpoint = el("div", { class: "card" },
      el("strong", {}, `Paused before step ${paused.step} (position ${paused.position})`),
      paused.condition ? el("div", {}, "condition: ", el("code", {}, paused.condition)) : null,
      el("div", {}, "earlier outputs"), el("pre", {}, json(paused.steps)),
      el("div", {}, "input of the step (edit to change it)"), input,
      el("div", { class: "row" },
        action("Resume", async () => {
          await api("POST", path + "/breakpoint/resume", { input: parseJson(input.value, "input") });
          refresh();
        }),
        action("Skip", async () => {
          await api("POST", path + "/breakpoint/skip", { output: parseJson(output.value, "output") ?? null });
          refresh();
        }),
        action("Abort", async () => { await api("POST", path + "/breakpoint/abort", {}); refresh(); })),
      output);
  }
  show(
    el("h2", {}, `${timeline.pipeline} `, statusText(timeline.status)),
    el("div", {}, "execution ", el("code", {}, timeline.execution_id), " · ",
      ms(timeline.duration_ms), " · trigger ", (timeline.trigger && timeline.trigger.type) || "",
      timeline.parent_id ? [" · parent ", link(timeline.parent_id)] : null),
    timeline.error ? el("pre", {}, json(timeline.error)) : null,
    actions, breakpoint, waterfall(timeline), replay);
}

// -- live -------------------------------------------------------------------------------------

let stopLive = null;

async function live(params) {
  const pipeline = el("input", { placeholder: "pipeline (all)", value: params.get("pipeline") || "" });
  const body = el("tbody");
  const state = el("span", { id: "live-state" }, "connecting");
  const form = el("form", { class: "row", onsubmit: (e) => {
    e.preventDefault();
    location.hash = "#/live" + query({ pipeline: pipeline.value });
  } }, pipeline, el("button", { type: "submit" }, "Follow"), state);
  show(el("h2", {}, "Live"), form, el("table", {}, el("thead", {}, el("tr", {},
    ["at", "event", "execution", "pipeline", "step", "details"].map((h) => el("th", {}, h)))), body));
  const controller = new AbortController();
  stopLive = () => controller.abort();
  const response = await fetch(API + "/executions/live" + query({ pipeline: pipeline.value }),
    { headers: headers(false), signal: controller.signal });
  if (!response.ok) throw new Error(`the live stream answered ${response.status}`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = "message";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) { state.textContent = "ended"; return; }
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, cut).replace(/\r$/, "");
      buffer = buffer.slice(cut + 1);
      if (line.startsWith(": subscribed")) state.textContent = "following";  // nothing is missed from here
      else if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) {
        const data = JSON.parse(line.slice(5));
        const { at, execution_id: ex, pipeline: p, step, ...rest } = data;
        body.prepend(el("tr", {}, el("td", {}, at), el("td", {}, event), el("td", {}, link(ex)),
          el("td", {}, p || ""), el("td", {}, step || ""), el("td", {}, el("code", {}, JSON.stringify(rest)))));
        while (body.children.length > 300) body.lastChild.remove();
      } else if (line === "") event = "message";
    }
  }
}

// -- diff, dead letters, dashboard --------------------------------------------------------------

async function diff(params) {
  const left = el("input", { placeholder: "left execution", value: params.get("left") || "" });
  const right = el("input", { placeholder: "right execution", value: params.get("right") || "" });
  const form = el("form", { class: "row", onsubmit: (e) => {
    e.preventDefault();
    location.hash = "#/diff" + query({ left: left.value, right: right.value });
  } }, left, right, el("button", { type: "submit" }, "Compare"));
  show(el("h2", {}, "Diff"), form);
  if (!left.value || !right.value) return;
  const result = await api("GET", "/executions/diff" + query({ left: left.value, right: right.value }));
  view.append(el("pre", {}, json(result.summary)),
    el("div", {}, "input differences"), el("pre", {}, json(result.input_diff)),
    el("table", {}, el("thead", {}, el("tr", {}, ["step", "status", "left", "right", "diff"]
      .map((h) => el("th", {}, h)))), el("tbody", {}, result.step_diffs.map((d) => el("tr", {},
      el("td", {}, d.step), el("td", {}, d.status), el("td", {}, el("pre", {}, json(d.left_output))),
      el("td", {}, el("pre", {}, json(d.right_output))), el("td", {}, el("pre", {}, json(d.diff))))))));
}

async function dlq(params) {
  const pipeline = el("input", { placeholder: "pipeline", value: params.get("pipeline") || "" });
  const form = el("form", { class: "row", onsubmit: (e) => {
    e.preventDefault();
    location.hash = "#/dlq" + query({ pipeline: pipeline.value });
  } }, pipeline, el("button", { type: "submit" }, "Show"));
  show(el("h2", {}, "Dead letters"), form);
  if (!pipeline.value) return;
  const base = "/dlq/pipelines/" + encodeURIComponent(pipeline.value);
  const page = await api("GET", base + query({ limit: 200 }));
  const reload = () => dlq(params).catch((e) => toast(e.message));
  view.append(el("div", { class: "row" }, `${page.depth} waiting`, page.alerting ? " (alerting)" : "",
    action("Replay all", async () => { await api("POST", base + "/replay-all"); reload(); })),
  el("table", {}, el("thead", {}, el("tr", {}, ["execution", "failed at", "step", "error", "input", ""]
    .map((h) => el("th", {}, h)))), el("tbody", {}, page.messages.map((m) => el("tr", {},
    el("td", {}, link(m.id)), el("td", {}, m.failed_at), el("td", {}, m.failed_step || ""),
    el("td", {}, (m.error && m.error.message) || ""), el("td", {}, el("pre", {}, json(m.trigger_data))),
    el("td", {}, action("Replay", async () => {
      await api("POST", `${base}/${encodeURIComponent(m.id)}/replay`); reload();
    }), action("Discard", async () => {
      await api("DELETE", `${base}/${encodeURIComponent(m.id)}`); reload();
    })))))));
}

async function dashboard(params) {
  const pipeline = el("input", { placeholder: "pipeline (all)", value: params.get("pipeline") || "" });
  const period = el("input", { placeholder: "period", value: params.get("period") || "24h", size: 5 });
  const form = el("form", { class: "row", onsubmit: (e) => {
    e.preventDefault();
    location.hash = "#/dashboard" + query({ pipeline: pipeline.value, period: period.value });
  } }, pipeline, period, el("button", { type: "submit" }, "Show"));
  const data = await api("GET", "/dashboard/metrics" + query({ pipeline: pipeline.value, period: period.value }));
  const s = data.summary;
  show(el("h2", {}, "Dashboard"), form,
    el("div", { class: "card" }, `${s.total_executions} executions · ${s.success_rate}% success · `,
      `p50 ${ms(s.p50_duration_ms)} · p95 ${ms(s.p95_duration_ms)} · p99 ${ms(s.p99_duration_ms)} · `,
      `${s.error_count} errors · ${s.active} active · ${s.dlq_depth} dead letters`),
    el("table", {}, el("thead", {}, el("tr", {}, ["step", "count", "avg", "p95", "error rate"]
      .map((h) => el("th", {}, h)))), el("tbody", {}, data.by_step.map((row) => el("tr", {},
      el("td", {}, row.step), el("td", {}, row.count), el("td", {}, ms(row.avg_ms)),
      el("td", {}, ms(row.p95_ms)), el("td", {}, `${row.error_rate}%`))))));
}

// -- routing and credentials ----------------------------------------------------------------

const ROUTES = { executions, live, diff, dlq, dashboard };

async function route() {
  if (stopLive) { stopLive(); stopLive = null; }
  clearTimeout(following);
  const [path, search] = (location.hash.slice(1) || "/executions").split("?");
  const params = new URLSearchParams(search || "");
  const parts = path.split("/").filter(Boolean);
  show();  // a page that fails to load shows its error, not the previous page
  try {
    if (parts[0] === "execution" && parts[1]) await execution(decodeURIComponent(parts[1]));
    else await (ROUTES[parts[0]] || executions)(params);
  } catch (e) {
    if (e.name !== "AbortError") {
      view.append(el("p", { class: "status-failed" }, e.message));
    }
  }
}

async function whoami() {
  const who = document.getElementById("who");
  try {
    const me = await api("GET", "/auth/me");
    who.textContent = `${me.id} (${me.roles.join(", ")}${me.tenant_id ? " @ " + me.tenant_id : ""})`;
  } catch (e) {
    who.textContent = "not signed in";
  }
}

document.getElementById("auth").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = document.getElementById("token");
  if (input.value) sessionStorage.setItem(TOKEN, input.value.trim());
  input.value = "";
  whoami();
  route();
});
document.getElementById("forget").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN);
  whoami();
  route();
});
window.addEventListener("hashchange", route);
whoami();
route();
