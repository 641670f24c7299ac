// icaze console: polls the JSON API and fills in the server-rendered page. No framework,
// no build step; every text goes in through textContent.
"use strict";
const $ = (s) => document.querySelector(s);
const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content;
const SVG = "http://www.w3.org/2000/svg";

async function api(method, path, body, type) {
  const headers = {};
  if (csrf) headers["x-csrf-token"] = csrf;
  if (body !== undefined) headers["content-type"] = type || "application/json";
  const init = { method, headers, credentials: "same-origin" };
  if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
  const r = await fetch(path, init);
  let json = null;
  try { json = await r.json(); } catch (e) { json = null; }
  return { status: r.status, ok: r.ok, json: json || {} };
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function say(target, text, cls) {
  target.replaceChildren();
  target.className = "result " + (cls || "");
  if (text) target.append(el("span", text));
}

function fail(r) { return (r.json.error || "HTTP " + r.status) + (r.json.key ? " [" + r.json.key + "]" : ""); }

// Screens: one at a time, chosen by the address's #hash.
function show() {
  const screens = [...document.querySelectorAll(".screen")];
  if (!screens.length) return;
  const want = location.hash.slice(1);
  const on = screens.find((s) => s.id === want) || screens[0];
  screens.forEach((s) => s.classList.toggle("on", s === on));
  document.querySelectorAll("header nav a").forEach((a) => a.classList.toggle("on", a.hash === "#" + on.id));
}

// Charts: series of numbers (or null) over the sample times, drawn as polylines.
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  return [1, 2, 5, 10].map((m) => m * p).find((m) => m >= v);
}

function chart(svg, at, series) {
  svg.replaceChildren();
  // Ten minutes once there are; until then at least one, so a fresh start is readable.
  const W = 600, H = 160, end = at.length ? at[at.length - 1] : 0;
  const span = Math.min(600, Math.max(60, at.length ? end - at[0] : 0)), start = end - span;
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values.filter((v) => v !== null))));
  for (const f of [0, 0.5, 1]) {
    const g = document.createElementNS(SVG, "line");
    const y = H - 4 - f * (H - 12);
    Object.entries({ x1: 0, x2: W, y1: y, y2: y, class: "grid-line" }).forEach(([k, v]) => g.setAttribute(k, v));
    svg.append(g);
  }
  for (const s of series) {
    let points = [];
    const flush = () => {
      if (points.length) {
        const line = document.createElementNS(SVG, "polyline");
        line.setAttribute("class", s.cls);
        if (points.length === 1) points.unshift([points[0][0] - 2, points[0][1]]);
        line.setAttribute("points", points.map((p) => p[0].toFixed(1) + "," + p[1].toFixed(1)).join(" "));
        svg.append(line);
      }
      points = [];
    };
    s.values.forEach((v, i) => {
      if (v === null) return flush();
      const x = ((at[i] - start) / span) * W;
      points.push([x, H - 4 - (v / max) * (H - 12)]);
    });
    flush();
  }
  svg.dataset.span = span;
  return max;
}

function last(values) {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null) return values[i];
  return null;
}

function rows(table, list) {
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const cells of list) {
    const tr = el("tr");
    cells.forEach((c, i) => tr.append(el("td", c, i ? "n" : "")));
    body.append(tr);
  }
  if (!list.length) {
    const tr = el("tr");
    tr.append(el("td", "none", "muted"));
    body.append(tr);
  }
}

const fmt = (v, d) => (v === null || v === undefined ? "–" : Number(v).toFixed(d));

function drawNow(n) {
  const h = n.history;
  $("#now-at").textContent = "at " + n.at.slice(11, 19) + " (Baku), every " + $("#now").dataset.refresh + " s";
  const mosMax = chart($("#mos-chart"), h.at, [{ values: h.mos_per_s, cls: "mos" }]);
  $("#mos-now").textContent = "now " + fmt(last(h.mos_per_s), 1) + "/s · scale 0–" + mosMax + "/s · last " + $("#mos-chart").dataset.span + " s";
  const repMax = chart($("#reply-chart"), h.at, [
    { values: h.reply_p50_ms, cls: "p50" },
    { values: h.reply_p99_ms, cls: "p99" },
  ]);
  $("#reply-now").textContent = "last " + fmt(last(h.reply_p50_ms), 1) + " / " + fmt(last(h.reply_p99_ms), 1) + " ms · scale 0–" + repMax + " ms";
  const t = n.today;
  rows($("#outcomes"), Object.entries(t.by_code).map(([code, c]) => {
    const denied = Object.entries(c.denied).map(([r, k]) => r + " " + k).join(", ") || "0";
    return [code, c.granted, c.active, denied];
  }));
  $("#mos-today").textContent = t.mos + " MOs today (" + t.scope + "), " + t.distinct_documents + " documents, " + t.revoked + " revoked";
  $("#invalid-share").textContent = (100 * t.invalid.share).toFixed(1) + "% bad";
  rows($("#invalid"), Object.entries(t.invalid.by_reason).sort((a, b) => b[1] - a[1])
    .map(([r, k]) => [r, k, t.mos ? ((100 * k) / t.mos).toFixed(1) + "%" : "–"]));
  const binds = (b) => b.transmitter + "/" + b.receiver + "/" + b.transceiver;
  rows($("#binds"), n.operators.map((o) => [o.operator, binds(o.binds), o.queue.depth + " / " + o.queue.capacity]));
  rows($("#connectors"), n.connectors.map((c) => [c.connector, c.state + " (" + c.binds_up + "/" + c.binds_wanted + ")", c.queue.depth + " / " + c.queue.capacity]));
  $("#smpp").textContent = n.smpp;
  $("#store").textContent = n.store.kind + ": " + (n.store.ok ? "ok" : n.store.error);
  $("#store").className = n.store.ok ? "good" : "bad";
  $("#rules-version").textContent = n.rules.version + " (loaded " + n.rules.loaded_at.slice(0, 19).replace("T", " ") + ")";
}

async function poll() {
  const now = $("#now");
  if (!now) return;
  try {
    const r = await api("GET", "/v1/now");
    if (r.ok) drawNow(r.json);
    else $("#now-at").textContent = fail(r);
  } catch (e) {
    $("#now-at").textContent = "no answer: " + e;
  }
  setTimeout(poll, 1000 * Number(now.dataset.refresh));
}

const STATUS = { valid: "VALID", expired: "EXPIRED", not_yet_valid: "NOT YET VALID", revoked: "REVOKED", unknown: "UNKNOWN" };

async function check(ev) {
  ev.preventDefault();
  const id = $("#check-id").value.trim(), doc = $("#check-document").value.trim();
  const v = $("#verdict");
  const q = doc ? "?document=" + encodeURIComponent(doc) : "";
  const r = await api("GET", "/v1/permits/" + encodeURIComponent(id) + q);
  const [status, detail] = [v.querySelector(".status"), v.querySelector(".detail")];
  if (!r.ok) {
    v.className = "verdict error";
    status.textContent = "CANNOT CHECK";
    detail.textContent = fail(r);
    return;
  }
  const p = r.json, mismatch = p.document_matches === false && p.status !== "unknown";
  v.className = "verdict " + (mismatch ? "mismatch" : p.status);
  status.textContent = mismatch ? "NOT THIS DOCUMENT" : STATUS[p.status] || p.status;
  const lines = [p.permit_id];
  if (p.status !== "unknown") {
    lines.push("code " + p.code + (p.label ? " (" + p.label + ")" : "") + ", " + p.window + ", " + p.valid_from.slice(0, 10));
    lines.push("document " + p.document + (p.document_matches === true ? " ✔ matches" : ""));
  }
  if (p.revocation_reason) lines.push("revoked: " + p.revocation_reason);
  detail.textContent = lines.join("\n");
}

async function revoke(ev) {
  ev.preventDefault();
  const out = $("#revoke-result");
  const r = await api("POST", "/v1/permits/" + encodeURIComponent($("#revoke-id").value.trim()) + "/revoke", { reason: $("#revoke-reason").value });
  say(out, r.ok ? "Permit " + r.json.permit_id + " is now " + r.json.status + " (" + r.json.document + ")" : fail(r), r.ok ? "good" : "bad");
}

async function block(ev, unblock) {
  if (ev) ev.preventDefault();
  const out = $("#block-result"), doc = $("#block-document").value.trim();
  if (!doc) return say(out, "enter a document", "bad");
  const path = "/v1/blocklist/" + encodeURIComponent(doc);
  let r;
  if (unblock) r = await api("DELETE", path);
  else {
    const body = { reason: $("#block-reason").value };
    const codes = $("#block-codes").value.split(/[\s,]+/).filter(Boolean).map(Number);
    if (codes.length) body.codes = codes;
    if ($("#block-until").value.trim()) body.until = $("#block-until").value.trim();
    r = await api("PUT", path, body);
  }
  if (!r.ok) return say(out, fail(r), "bad");
  say(out, unblock ? r.json.document + " unblocked" : r.json.document + " blocked for codes " + JSON.stringify(r.json.codes) + (r.json.until ? " until " + r.json.until : ""), "good");
}

let checked = null;

async function rulesCheck() {
  const out = $("#rules-result"), apply = $("#rules-apply"), text = $("#rules-text").value;
  apply.disabled = true;
  checked = null;
  const r = await api("POST", "/v1/rules/check", text, "text/plain; charset=utf-8");
  out.replaceChildren();
  if (r.status === 422 && r.json.errors) {
    out.className = "result bad";
    out.append(el("strong", r.json.error));
    const ul = el("ul");
    for (const e of r.json.errors) {
      const li = el("li");
      li.append(el("code", e.key), " " + e.message);
      ul.append(li);
    }
    return out.append(ul);
  }
  if (!r.ok) return say(out, fail(r), "bad");
  if (!r.json.changed) return say(out, "Valid, and the same as the rules in force: nothing to apply.", "good");
  out.className = "result";
  out.append(el("strong", "Valid. Changes from the rules in force (" + r.json.in_force + " → " + r.json.version + "):"));
  const pre = el("div", null, "diff");
  for (const l of r.json.diff) {
    const cls = { "+": "add", "-": "del", "…": "gap" }[l.op] || "";
    const line = el("span", null, cls);
    line.append(el("span", String(l.line || "").padStart(4) + " ", "no"), l.op === "…" ? "…" : l.op + " " + l.text);
    pre.append(line, cls ? "" : "\n");
  }
  out.append(pre);
  checked = { text, base: r.json.in_force };
  apply.disabled = false;
}

async function rulesApply() {
  const out = $("#rules-result"), apply = $("#rules-apply");
  if (!checked || checked.text !== $("#rules-text").value) return rulesCheck();
  apply.disabled = true;
  const headers = { "content-type": "text/plain; charset=utf-8", "x-rules-base": checked.base };
  if (csrf) headers["x-csrf-token"] = csrf;
  const r = await fetch("/v1/rules", { method: "PUT", headers, body: checked.text, credentials: "same-origin" });
  const json = await r.json().catch(() => ({}));
  checked = null;
  if (!r.ok) return say(out, fail({ status: r.status, json }), "bad");
  $("#rules-base").textContent = json.version;
  say(out, "Applied: the rules in force are now version " + json.version + ".", "good");
}

async function signIn(ev) {
  ev.preventDefault();
  const r = await api("POST", "/v1/session", { token: $("#token").value });
  if (r.ok) return location.reload();
  say($("#login-result"), fail(r), "bad");
}

function on(sel, event, fn) { const e = $(sel); if (e) e.addEventListener(event, fn); }

document.addEventListener("DOMContentLoaded", () => {
  on("#login", "submit", signIn);
  on("#sign-out", "click", async () => { await api("DELETE", "/v1/session"); location.replace("/"); });
  on("#check-form", "submit", check);
  on("#revoke-form", "submit", revoke);
  on("#block-form", "submit", (e) => block(e, false));
  on("#unblock", "click", () => block(null, true));
  on("#rules-check", "click", rulesCheck);
  on("#rules-apply", "click", rulesApply);
  on("#rules-text", "input", () => { $("#rules-apply").disabled = true; });
  window.addEventListener("hashchange", show);
  show();
  poll();
});
