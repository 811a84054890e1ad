// The c41 studio page: runs (live over server-sent events), outputs,
// services, and a form per skill generated from its input schema.
// Everything from the server is put in the page as text, never as HTML.
"use strict";

const live = new Map();   // this daemon's runs, from /api/events
let older = [];          // the journal's other runs, from /api/runs
let skills = [];
const ended = new Set();  // runs seen ended, to refresh outputs once

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

async function api(path, options = {}) {
  const r = await fetch(path, { headers: { "content-type": "application/json" }, ...options });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || `${r.status} ${r.statusText}`);
  return body;
}

function elapsed(ms) {
  if (ms === null || ms === undefined) return "";
  const s = Math.floor(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
}

// ---- tabs
function show(tab) {
  for (const b of document.querySelectorAll("nav button")) b.classList.toggle("active", b.dataset.tab === tab);
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== `tab-${tab}`;
  if (tab === "outputs") loadOutputs();
  if (tab === "services") loadServices();
  window.history.replaceState(null, "", `#${tab}`);
}

// ---- runs
function runRow(r) {
  const running = r.state === "running" || r.state === "waiting";
  const fraction = r.state === "ok" ? 1 : (r.fraction ?? 0);
  const stage = [r.stage, r.step ? `step ${r.step[0]}/${r.step[1]}` : null].filter(Boolean).join(" · ");
  const actions = el("td", { class: "actions" });
  if (running) {
    actions.append(el("button", { class: "cancel", onclick: () => act(r.id, "cancel") , text: "Cancel" }));
  }
  if (r.resumable) {
    actions.append(el("button", { class: "resume", onclick: () => act(r.id, "resume"), text: "Resume" }));
  }
  const preview = r.preview ? el("img", { class: "preview", src: r.preview, alt: "latest preview" }) : null;
  return el("tr", { "data-run": r.id, "data-state": r.state },
    el("td", {}, el("b", { text: r.skill }), el("br"), el("code", { text: r.id.slice(0, 8), title: r.id })),
    el("td", {}, el("span", { class: `state ${r.state}`, text: r.state }), el("br"),
      el("span", { class: "stage", text: stage })),
    el("td", { class: "msg" },
      el("div", { class: "bar", "data-fraction": fraction.toFixed(3) }, el("span", { style: `width:${(fraction * 100).toFixed(1)}%` })),
      el("div", { class: "message", text: r.message || (r.state === "failed" ? r.text : "") || "" })),
    el("td", { class: "queue", text: r.queue_position ? `#${r.queue_position}` : "" }),
    el("td", { class: "backend", text: r.backend || "" }),
    el("td", { class: "elapsed", "data-started": running ? r.started_ms : null, text: elapsed(r.elapsed_ms) }),
    el("td", {}, preview),
    actions);
}

function renderRuns() {
  const rows = [...live.values()].sort((a, b) => b.started_ms - a.started_ms);
  const seen = new Set(rows.map((r) => r.id));
  rows.push(...older.filter((r) => !seen.has(r.id)));
  const body = document.querySelector("#runs tbody");
  // Keep a preview element whose image did not change, so it does not flicker.
  const old = new Map([...body.querySelectorAll("tr")].map((tr) => [tr.dataset.run, tr]));
  const fresh = rows.map((r) => {
    const row = runRow(r);
    const before = old.get(r.id)?.querySelector("img.preview");
    const now = row.querySelector("img.preview");
    if (before && now && before.getAttribute("src") === now.getAttribute("src")) now.replaceWith(before);
    return row;
  });
  body.replaceChildren(...fresh);
  document.getElementById("no-runs").hidden = rows.length > 0;
}

async function act(id, what) {
  try {
    await api(`/api/runs/${id}/${what}`, { method: "POST" });
    if (what === "resume") loadRuns();
  } catch (e) {
    alert(`${what}: ${e.message}`);
  }
}

async function loadRuns() {
  const { runs } = await api("/api/runs");
  older = runs.filter((r) => !r.live);
  for (const r of runs.filter((r) => r.live)) live.set(r.id, r);
  renderRuns();
}

function listen() {
  const source = new EventSource("/api/events");
  const badge = document.getElementById("live");
  source.onopen = () => { badge.textContent = "live"; badge.classList.add("on"); };
  source.onerror = () => { badge.textContent = "reconnecting…"; badge.classList.remove("on"); };
  source.addEventListener("runs", (e) => {
    const { runs } = JSON.parse(e.data);
    let newlyEnded = false;
    for (const r of runs) {
      live.set(r.id, r);
      if (r.ended_ms && !ended.has(r.id)) { ended.add(r.id); newlyEnded = true; }
    }
    renderRuns();
    if (newlyEnded && !document.getElementById("tab-outputs").hidden) loadOutputs();
  });
}

// Elapsed time of running runs, between events.
setInterval(() => {
  for (const td of document.querySelectorAll("td.elapsed[data-started]")) {
    td.textContent = elapsed(Date.now() - Number(td.dataset.started));
  }
}, 1000);

// ---- outputs
function player(f) {
  if (f.mime.startsWith("image/")) return el("img", { src: f.url, alt: f.file, loading: "lazy" });
  if (f.mime.startsWith("video/")) return el("video", { src: f.url, controls: true, preload: "metadata" });
  if (f.mime.startsWith("audio/")) return el("audio", { src: f.url, controls: true, preload: "metadata" });
  return null;
}

async function loadOutputs() {
  const { files } = await api("/api/outputs");
  const cards = files.map((f) => {
    const copy = el("button", { class: "copy", text: "copy", onclick: () => navigator.clipboard?.writeText(f.reference) });
    return el("div", { class: "card", "data-file": f.file },
      el("a", { class: "open", href: f.url, target: "_blank", rel: "noopener" }, player(f) || el("div", { class: "meta", text: f.file })),
      el("div", { class: "meta" },
        el("b", { text: f.skill }), ` · ${f.mime} · ${(f.bytes / 1024).toFixed(0)} KiB`,
        f.seed !== null && f.seed !== undefined ? el("span", { class: "seed", text: ` · seed ${f.seed}` }) : null,
        f.made_ms ? ` · ${new Date(f.made_ms).toLocaleString()}` : "",
        el("br"), el("code", { class: "reference", text: f.reference }), " ", copy,
        el("details", {}, el("summary", { text: "input" }), el("pre", { text: JSON.stringify(f.input, null, 2) }))));
  });
  document.getElementById("gallery").replaceChildren(...cards);
  document.getElementById("no-outputs").hidden = files.length > 0;
}

// ---- services
async function loadServices() {
  const note = document.getElementById("checking");
  note.textContent = "checking…";
  try {
    const { services, skills: list } = await api("/api/services");
    document.querySelector("#services tbody").replaceChildren(...services.map((s) =>
      el("tr", { "data-service": s.name },
        el("td", { text: s.name }), el("td", { text: s.kind }), el("td", {}, el("code", { text: s.url })),
        el("td", { class: s.ok ? "ok" : "bad", text: `${s.ok ? "ok" : "FAIL"}: ${s.detail}` }))));
    document.querySelector("#grants tbody").replaceChildren(...list.map((k) => {
      const flows = k.workflows ? [...k.workflows.lines, ...(k.workflows.problems || []).map((p) => `PROBLEM: ${p}`)] : [];
      return el("tr", { "data-skill": k.name },
        el("td", { text: k.name }),
        el("td", { class: k.problem ? "bad" : "", text: k.problem || (k.granted.length ? k.granted.join(", ") : (k.kinds.length ? `nothing granted (can use ${k.kinds.join(" or ")})` : "needs no service")) }),
        el("td", {}, el("pre", { text: flows.join("\n") })));
    }));
    note.textContent = "";
  } catch (e) {
    note.textContent = e.message;
  }
}

// ---- new run: a form from the skill's input schema
function typeOf(prop) {
  const t = Array.isArray(prop.type) ? prop.type.find((x) => x !== "null") : prop.type;
  if (t) return t;
  for (const alt of prop.anyOf || prop.oneOf || []) if (alt.type && alt.type !== "null") return alt.type;
  return "json";
}

function field(name, prop, required) {
  const type = typeOf(prop);
  const id = `f-${name}`;
  const label = el("label", { for: id, class: required ? "required" : "", text: name });
  let input;
  if (prop.enum) {
    input = el("select", { id, name });
    if (!required) input.append(el("option", { value: "", text: "" }));
    for (const v of prop.enum) input.append(el("option", { value: String(v), text: String(v), selected: v === prop.default }));
  } else if (type === "boolean") {
    input = el("input", { id, name, type: "checkbox", checked: prop.default === true });
  } else if (type === "integer" || type === "number") {
    input = el("input", { id, name, type: "number", min: prop.minimum ?? null, max: prop.maximum ?? null,
      step: type === "integer" ? (prop.multipleOf || 1) : "any", placeholder: prop.default ?? "" });
  } else if (type === "string" && prop.format === "c41-file") {
    input = el("input", { id, name, type: "text", placeholder: "artifact:… or a path on this machine" });
  } else if (type === "string") {
    const long = /prompt|text|caption|negative/.test(name);
    input = el(long ? "textarea" : "input", { id, name, type: long ? null : "text", placeholder: prop.default ?? "" });
  } else {
    input = el("textarea", { id, name, placeholder: "JSON", "data-json": true });
  }
  input.dataset.type = type;
  const help = prop.description ? el("div", { class: "help", text: prop.description }) : null;
  return [label, input, help];
}

function renderForm() {
  const skill = skills.find((s) => s.name === document.getElementById("skill").value);
  const form = document.getElementById("run-form");
  document.getElementById("form-error").textContent = "";
  if (!skill) return form.replaceChildren();
  document.getElementById("summary").textContent = skill.summary;
  const schema = skill.input_schema || {};
  const required = new Set(schema.required || []);
  const parts = [];
  for (const [name, prop] of Object.entries(schema.properties || {})) {
    parts.push(...field(name, prop, required.has(name)).filter(Boolean));
  }
  parts.push(el("button", { type: "submit", text: `Run ${skill.name}` }));
  form.replaceChildren(...parts);
}

function collect(form) {
  const input = {};
  for (const e of form.querySelectorAll("[name]")) {
    const type = e.dataset.type;
    if (type === "boolean") {
      if (e.checked) input[e.name] = true;
      continue;
    }
    const v = e.value.trim();
    if (v === "") continue;
    if (type === "integer" || type === "number") input[e.name] = Number(v);
    else if (e.dataset.json !== undefined) {
      try { input[e.name] = JSON.parse(v); } catch (err) { throw new Error(`${e.name}: not JSON (${err.message})`); }
    } else input[e.name] = v;
  }
  return input;
}

async function submit(ev) {
  ev.preventDefault();
  const error = document.getElementById("form-error");
  error.textContent = "";
  try {
    const skill = document.getElementById("skill").value;
    const { run } = await api("/api/runs", { method: "POST", body: JSON.stringify({ skill, input: collect(ev.target) }) });
    live.set(run, { id: run, skill, state: "running", started_ms: Date.now(), elapsed_ms: 0, live: true });
    show("runs");
    renderRuns();
  } catch (e) {
    error.textContent = e.message;
  }
}

async function loadSkills() {
  ({ skills } = await api("/api/skills"));
  const select = document.getElementById("skill");
  select.replaceChildren(...skills.map((s) => el("option", { value: s.name, text: s.name })));
  renderForm();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const b of document.querySelectorAll("nav button")) b.addEventListener("click", () => show(b.dataset.tab));
  for (const a of document.querySelectorAll("[data-goto]")) a.addEventListener("click", (e) => { e.preventDefault(); show(a.dataset.goto); });
  document.getElementById("skill").addEventListener("change", renderForm);
  document.getElementById("run-form").addEventListener("submit", submit);
  document.getElementById("check").addEventListener("click", loadServices);
  loadRuns().then(listen);
  loadSkills();
  const tab = location.hash.slice(1);
  show(["runs", "outputs", "services", "new"].includes(tab) ? tab : "runs");
});
