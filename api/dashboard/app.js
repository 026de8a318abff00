// Lode dashboard: plain JavaScript, no build step, no external assets. It
// polls the JSON API and renders into elements by id. Number formats here are
// part of what the browser test checks (cmd/lode/browser_test.go): keep both
// in step.
"use strict";

const UNITS = ["H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s", "EH/s"];
const PAGE = 25; // rows per page of blocks and payments

function formatHashrate(h) {
  let i = 0;
  while (h >= 1000 && i < UNITS.length - 1) { h /= 1000; i++; }
  return h.toFixed(2) + " " + UNITS[i];
}

function formatBTC(sats) {
  // Integer satoshis → BTC with 8 decimals, without floating point.
  const neg = sats < 0; let s = Math.abs(sats);
  const whole = Math.floor(s / 1e8), frac = String(s % 1e8).padStart(8, "0");
  return (neg ? "-" : "") + whole + "." + frac + " BTC";
}

function formatNumber(n) {
  if (n === 0) return "0";
  if (Math.abs(n) < 0.001 || Math.abs(n) >= 1e15) return n.toExponential(3);
  return n.toLocaleString("en-US", { maximumFractionDigits: 3 });
}

function formatPercent(f) { return (f * 100).toFixed(2) + " %"; }

function formatTime(t) {
  if (!t || t.startsWith("0001-")) return "–";
  return new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

// formatAgo says how long ago t was: "42 s ago", "5 min ago", "3 h ago".
function formatAgo(t, now) {
  if (!t || t.startsWith("0001-")) return "never";
  const s = Math.max(0, Math.round((now - Date.parse(t)) / 1000));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  if (s < 86400) return Math.floor(s / 3600) + " h ago";
  return Math.floor(s / 86400) + " d ago";
}

// lastShare is a worker's "last share" cell: how long ago, and "offline"
// when the API says so (no share for api.worker_offline_after).
function lastShare(w, now) {
  return (w.offline ? "offline · " : "") + formatAgo(w.last_share, now);
}

function short(s) { return s && s.length > 20 ? s.slice(0, 10) + "…" + s.slice(-8) : (s || ""); }

// el builds an element: attrs are attributes ("text" sets the text), children
// are appended (economics.js and alerts.js build their views with it).
function el(tag, attrs, children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children || []) e.appendChild(c);
  return e;
}

function text(id, value) { const el = document.getElementById(id); if (el) el.textContent = value; }

// explorer is the block explorer base URL from /api/v1/pool ("": no links).
let explorer = "";

// link returns an explorer link for a txid, block hash or address, or the
// plain text when links are off.
function link(kind, value, label) {
  if (!explorer || !value) return label;
  const a = document.createElement("a");
  a.href = explorer + "/" + kind + "/" + encodeURIComponent(value);
  a.rel = "noopener noreferrer";
  a.target = "_blank";
  a.textContent = label;
  return a;
}

function row(cells, classes) {
  const tr = document.createElement("tr");
  cells.forEach((c, i) => {
    const td = document.createElement("td");
    if (c instanceof Node) td.appendChild(c); else td.textContent = c;
    if (classes && classes[i]) td.className = classes[i];
    tr.appendChild(td);
  });
  return tr;
}

function fill(id, rows, empty, columns) {
  const body = document.getElementById(id);
  body.replaceChildren();
  if (rows.length === 0) {
    const tr = document.createElement("tr"); const td = document.createElement("td");
    td.colSpan = columns; td.className = "muted"; td.textContent = empty;
    tr.appendChild(td); body.appendChild(tr); return;
  }
  rows.forEach(r => body.appendChild(r));
}

async function getJSON(path) {
  const res = await fetch(path, { cache: "no-store" });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) { const e = new Error(body.error || res.statusText); e.status = res.status; throw e; }
  return body;
}

function renderPool(p) {
  explorer = p.explorer || "";
  text("pool-hashrate-10m", formatHashrate(p.hashrate["10m"]));
  text("pool-hashrate-1h", formatHashrate(p.hashrate["1h"]));
  text("pool-hashrate-24h", formatHashrate(p.hashrate["24h"]));
  text("pool-miners", String(p.miners));
  text("pool-workers", String(p.workers));
  text("pool-reject-rate", formatPercent(p.reject_rate || 0));
  text("net-height", String(p.network.height));
  text("net-difficulty", formatNumber(p.network.difficulty));
  // Expected hashes per block ÷ the 600 s target spacing.
  text("net-hashrate", formatHashrate(p.network.difficulty * 4294967296 / 600));
  text("round-progress", (p.round_progress * 100).toFixed(2) + " %");
  text("pool-fee", p.fee_percent + " %");
  text("pool-window", p.pplns_window + " × difficulty");
  const b = p.last_block;
  text("last-block", b ? `#${b.height} ${b.status} · ${formatBTC(b.reward)} · ${formatTime(b.found_at)}` : "none yet");
}

// Chart ranges: which part of a series (GET …/hashrate) each shows.
const RANGES = {
  "10m": s => s.minutes.slice(-10),
  "1h": s => s.minutes,
  "24h": s => s.slots,
};

// drawLine draws points (time, hashrate) into an svg of the given height
// and returns the peak.
function drawLine(svg, pts, height) {
  svg.replaceChildren();
  if (pts.length < 2) return 0;
  const t0 = Date.parse(pts[0].time), t1 = Date.parse(pts[pts.length - 1].time);
  const max = Math.max(...pts.map(p => p.hashrate)) || 1;
  const coords = pts.map(p => {
    const x = t1 === t0 ? 0 : (Date.parse(p.time) - t0) / (t1 - t0) * 800;
    const y = (height - 5) - p.hashrate / max * (height - 15);
    return x.toFixed(1) + "," + y.toFixed(1);
  });
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", coords.join(" "));
  svg.appendChild(line);
  return Math.max(...pts.map(p => p.hashrate));
}

function seriesCaption(pts, peak, what) {
  const avg = pts.reduce((a, p) => a + p.hashrate, 0) / (pts.length || 1);
  return `${what}: ${pts.length} points · average ${formatHashrate(avg)} · peak ${formatHashrate(peak)} · ` +
    `${formatTime(pts[0] && pts[0].time)} → ${formatTime(pts[pts.length - 1] && pts[pts.length - 1].time)}`;
}

let poolRange = "1h", poolSeries = null;

function renderPoolSeries(s) {
  poolSeries = s;
  const pts = RANGES[poolRange](s);
  const peak = drawLine(document.getElementById("chart"), pts, 200);
  text("chart-caption", seriesCaption(pts, peak, { "10m": "last 10 minutes", "1h": "last hour", "24h": "last 24 hours" }[poolRange]));
}

// renderHistory is the fallback when the process has no series reader: the
// in-memory samples of /api/v1/pool/history.
function renderHistory(h) {
  const pts = h.points || [];
  if (pts.length < 2) { document.getElementById("chart").replaceChildren(); text("chart-caption", "collecting samples (one every " + h.interval_seconds + " s)"); return; }
  const peak = drawLine(document.getElementById("chart"), pts, 200);
  text("chart-caption", `${pts.length} samples · peak ${formatHashrate(peak)} · ${formatTime(pts[0].time)} → ${formatTime(pts[pts.length - 1].time)}`);
}

function renderWorkers(ws, now) {
  fill("workers-body", ws.map(w => row([link("address", w.address, short(w.address)), w.name || "(default)",
    formatHashrate(w.hashrate["10m"]), formatHashrate(w.hashrate["1h"]), String(w.accepted),
    formatPercent(w.reject_rate || 0), formatNumber(w.best_share || 0), lastShare(w, now)],
  ["mono", null, null, null, null, null, null, w.offline ? "offline" : null])), "no active workers", 8);
}

// renderMiners lists the top addresses; each links to its miner page.
function renderMiners(ms, now) {
  fill("miners-body", ms.map(m => {
    const a = document.createElement("a");
    a.href = "#miner=" + encodeURIComponent(m.address);
    a.textContent = short(m.address);
    return row([a, String(m.workers), formatHashrate(m.hashrate["10m"]), formatHashrate(m.hashrate["1h"]),
      formatHashrate(m.hashrate["24h"]), formatAgo(m.last_share, now)], ["mono"]);
  }), "no active miners", 6);
}

function formatEffort(e) { return e > 0 ? formatPercent(e) : "–"; }

const pages = { blocks: 0, payments: 0 };

function renderBlocks(r) {
  const bs = r.blocks;
  fill("blocks-body", bs.map(b => row([link("block", b.hash, String(b.height)), b.status, formatBTC(b.reward), short(b.finder),
    String(b.confirmations), formatEffort(b.effort), formatTime(b.found_at)], [null, "status-" + b.status])), "no blocks found yet", 7);
  pager("blocks", r);
  renderLuck(bs);
  renderDifficulty(bs);
}

// renderDifficulty draws the network difficulty at each listed block, by
// height (the history of the network as the pool saw it).
function renderDifficulty(bs) {
  const pts = bs.filter(b => b.network_difficulty > 0).reverse()
    .map(b => ({ time: new Date(b.height * 1000).toISOString(), hashrate: b.network_difficulty, height: b.height }));
  const peak = drawLine(document.getElementById("difficulty-chart"), pts, 120);
  if (pts.length < 2) { text("difficulty-caption", pts.length ? `difficulty ${formatNumber(pts[0].hashrate)} at #${pts[0].height}` : "no blocks"); return; }
  const last = pts[pts.length - 1];
  text("difficulty-caption", `#${pts[0].height} → #${last.height} · now ${formatNumber(last.hashrate)} ` +
    `(network ≈ ${formatHashrate(last.hashrate * 4294967296 / 600)}) · peak ${formatNumber(peak)}`);
}

// renderLuck draws one bar per listed block, oldest left: its effort (100 %
// is a block's worth of expected work; the dashed line), red above it.
function renderLuck(bs) {
  const svg = document.getElementById("luck-chart");
  svg.replaceChildren();
  const known = bs.filter(b => b.effort > 0).reverse();
  if (known.length === 0) { text("luck-caption", "no effort known for these blocks"); return; }
  const max = Math.max(2, ...known.map(b => b.effort));
  const w = 800 / known.length;
  const ns = "http://www.w3.org/2000/svg";
  known.forEach((b, i) => {
    const rect = document.createElementNS(ns, "rect");
    const h = Math.max(1, b.effort / max * 110);
    rect.setAttribute("x", (i * w + w * 0.1).toFixed(1));
    rect.setAttribute("width", (w * 0.8).toFixed(1));
    rect.setAttribute("y", (120 - h).toFixed(1));
    rect.setAttribute("height", h.toFixed(1));
    rect.setAttribute("class", b.effort > 1 ? "bar unlucky" : "bar");
    const title = document.createElementNS(ns, "title");
    title.textContent = `#${b.height}: ${formatEffort(b.effort)}`;
    rect.appendChild(title);
    svg.appendChild(rect);
  });
  const par = document.createElementNS(ns, "line");
  const y = (120 - 1 / max * 110).toFixed(1);
  par.setAttribute("x1", "0"); par.setAttribute("x2", "800"); par.setAttribute("y1", y); par.setAttribute("y2", y);
  par.setAttribute("class", "par");
  svg.appendChild(par);
  const mean = known.reduce((a, b) => a + b.effort, 0) / known.length;
  text("luck-caption", `${known.length} blocks · mean effort ${formatEffort(mean)} (below 100 % is lucky)`);
}

function renderPayments(r) {
  fill("payments-body", r.payments.map(p => row([formatTime(p.time), link("address", p.address, short(p.address)), formatBTC(p.amount), p.status,
    link("tx", p.txid, short(p.txid))], [null, "mono", null, null, "mono"])), "no payments yet", 5);
  pager("payments", r);
}

// pager updates the newer/older buttons and the "rows a–b of n" text of a
// paged list from its response (total, offset).
function pager(name, r) {
  // Offsets and totals count blocks, or payouts (a payout lists a row per
  // address it paid).
  const total = r.total || 0, offset = r.offset || 0;
  document.getElementById(name + "-prev").disabled = offset === 0;
  document.getElementById(name + "-next").disabled = offset + PAGE >= total;
  text(name + "-page", offset >= total ? "" : `${offset + 1}–${Math.min(offset + PAGE, total)} of ${total}`);
}

let minerRange = "1h";

async function lookupMiner(addr) {
  const box = document.getElementById("miner"), err = document.getElementById("miner-error");
  if (!addr) { box.hidden = true; err.hidden = true; return; }
  try {
    const m = await getJSON("api/v1/miners/" + encodeURIComponent(addr));
    const now = Date.now();
    text("miner-address-shown", m.address);
    const al = document.getElementById("miner-address-link");
    al.hidden = !explorer;
    if (explorer) al.href = explorer + "/address/" + encodeURIComponent(m.address);
    text("miner-balance", formatBTC(m.balance));
    text("miner-immature", formatBTC(m.immature_balance || 0));
    text("miner-paid", formatBTC(m.paid));
    text("miner-threshold", formatBTC(m.payout_threshold || 0) + (m.payout_threshold_override ? " (own)" : ""));
    text("miner-per-day", m.estimated_per_day > 0 ? "≈ " + formatBTC(m.estimated_per_day) : "–");
    text("miner-hashrate", formatHashrate(m.hashrate["10m"]));
    text("miner-hashrate-24h", formatHashrate(m.hashrate["24h"]));
    text("miner-last-share", formatTime(m.last_share));
    fill("miner-workers", m.workers.map(w => row([w.name || "(default)", formatHashrate(w.hashrate["10m"]),
      formatHashrate(w.hashrate["1h"]), String(w.accepted), String(w.rejected), formatPercent(w.reject_rate || 0),
      formatNumber(w.best_share || 0), lastShare(w, now)], [null, null, null, null, null, null, null, w.offline ? "offline" : null])), "no workers", 8);
    // The API lists one page of workers (the first 50 by name).
    const more = document.getElementById("miner-workers-more");
    more.hidden = !(m.workers_total > m.workers.length);
    more.textContent = more.hidden ? "" : "first " + m.workers.length + " of " + m.workers_total + " workers, by name";
    const sel = document.getElementById("miner-chart-worker"), chosen = sel.value;
    sel.replaceChildren(new Option("all workers", ""));
    m.workers.forEach(w => sel.appendChild(new Option(w.name || "(default)", w.name)));
    sel.value = m.workers.some(w => w.name === chosen) ? chosen : "";
    fill("miner-credits", (m.credits || []).map(c => row([String(c.height), formatBTC(c.amount), formatTime(c.found_at),
      link("block", c.hash, short(c.hash))], [null, null, null, "mono"])), "no credits yet (blocks are credited at maturity)", 4);
    fill("miner-payments", m.payments.map(p => row([formatTime(p.time), formatBTC(p.amount), p.status, link("tx", p.txid, p.txid)],
      [null, null, null, "mono"])), "no payments yet", 4);
    box.hidden = false; err.hidden = true;
    await Promise.all([minerChart(m.address), minerWindows(m.address)]);
  } catch (e) {
    box.hidden = true; err.hidden = false;
    err.textContent = e.status === 404 ? "No shares from " + addr + " yet." : "Lookup failed: " + e.message;
  }
}

// WINDOW_BLOCKS is how many of the pool's latest blocks the miner page
// shows the address's part of.
const WINDOW_BLOCKS = 5;
// proofs caches proofs by block, status and address: a block's proof only
// changes when the block is credited.
const proofs = new Map();

// minerWindows shows, for each of the pool's latest blocks whose PPLNS window
// holds the address, its units, its share of the window and its credit, read
// from the block's proof (GET …/proof?address=), which the row offers for
// download.
async function minerWindows(addr) {
  const r = await getJSON(`api/v1/blocks?limit=${WINDOW_BLOCKS}`);
  const rows = [];
  for (const b of r.blocks) {
    const path = `api/v1/blocks/${b.hash}/proof?address=${encodeURIComponent(addr)}`;
    const key = b.hash + "|" + b.status + "|" + addr;
    let p = proofs.get(key);
    if (p === undefined) {
      // 404: no share in this window; 410: archive pruned; 503: not yet computed.
      p = await getJSON(path).catch(e => { if ([404, 410, 503].includes(e.status)) return null; throw e; });
      proofs.set(key, p);
    }
    if (!p) continue;
    const a = document.createElement("a");
    a.href = path;
    a.download = `proof-${b.height}-${addr}.json`;
    a.textContent = "proof.json";
    rows.push(row([String(b.height), formatNumber(Number(p.units) / 1e8), windowShare(p.units, p.total),
      p.credited ? formatBTC(p.credit) : "at maturity (" + b.status + ")", a]));
  }
  fill("miner-windows", rows, "no share in the windows of the pool's last " + WINDOW_BLOCKS + " blocks", 5);
}

// windowShare is units / total as a percentage; both are decimal strings of
// up to ~10^23, beyond a double's exact range, so the ratio is taken in
// BigInt.
function windowShare(units, total) {
  if (!total || total === "0") return "–";
  return (Number(BigInt(units) * 1000000n / BigInt(total)) / 10000).toFixed(4) + " %";
}

async function minerChart(addr) {
  const worker = document.getElementById("miner-chart-worker").value;
  let path = "api/v1/miners/" + encodeURIComponent(addr) + "/hashrate";
  if (worker) path += "?worker=" + encodeURIComponent(worker);
  try {
    const s = await getJSON(path);
    const pts = RANGES[minerRange](s);
    const peak = drawLine(document.getElementById("miner-chart"), pts, 160);
    text("miner-chart-caption", seriesCaption(pts, peak, (worker || "all workers") + ", " +
      { "10m": "last 10 minutes", "1h": "last hour", "24h": "last 24 hours" }[minerRange]));
  } catch (e) {
    text("miner-chart-caption", "hashrate history unavailable: " + e.message);
  }
}

function minerFromHash() { return new URLSearchParams(location.hash.slice(1)).get("miner") || ""; }

async function refresh() {
  const now = Date.now();
  // The pool first: it carries the explorer setting the tables link with.
  const pool = getJSON("api/v1/pool").then(renderPool);
  await pool.catch(() => {});
  const jobs = [
    pool,
    getJSON("api/v1/pool/hashrate").then(renderPoolSeries)
      .catch(e => { if (e.status !== 503) throw e; return getJSON("api/v1/pool/history").then(renderHistory); }),
    getJSON("api/v1/workers?limit=100").then(r => renderWorkers(r.workers, now)),
    getJSON("api/v1/miners?limit=20").then(r => renderMiners(r.miners, now)),
    getJSON(`api/v1/blocks?limit=${PAGE}&offset=${pages.blocks}`).then(renderBlocks),
    getJSON(`api/v1/payments?limit=${PAGE}&offset=${pages.payments}`).then(renderPayments),
  ];
  const addr = minerFromHash();
  if (addr) jobs.push(lookupMiner(addr));
  const results = await Promise.allSettled(jobs);
  const failed = results.filter(r => r.status === "rejected");
  text("status", failed.length ? "some data unavailable: " + failed[0].reason.message : "updated " + formatTime(new Date().toISOString()));
  document.body.dataset.loaded = "1";
}

function ranges(id, set) {
  document.getElementById(id).addEventListener("click", ev => {
    const b = ev.target.closest("button[data-range]");
    if (!b) return;
    document.querySelectorAll("#" + id + " button").forEach(x => x.classList.toggle("on", x === b));
    set(b.dataset.range);
  });
}
ranges("chart-ranges", r => { poolRange = r; if (poolSeries) renderPoolSeries(poolSeries); });
ranges("miner-chart-ranges", r => { minerRange = r; const a = minerFromHash(); if (a) minerChart(a); });
document.getElementById("miner-chart-worker").addEventListener("change", () => { const a = minerFromHash(); if (a) minerChart(a); });
for (const name of ["blocks", "payments"]) {
  document.getElementById(name + "-prev").addEventListener("click", () => { pages[name] = Math.max(0, pages[name] - PAGE); refresh(); });
  document.getElementById(name + "-next").addEventListener("click", () => { pages[name] += PAGE; refresh(); });
}
document.getElementById("miner-form").addEventListener("submit", ev => {
  ev.preventDefault();
  const addr = document.getElementById("miner-address").value.trim();
  location.hash = addr ? "miner=" + encodeURIComponent(addr) : "";
});
window.addEventListener("hashchange", () => {
  const addr = minerFromHash();
  document.getElementById("miner-address").value = addr;
  lookupMiner(addr);
});
document.getElementById("miner-address").value = minerFromHash();
refresh();
setInterval(refresh, 10000);
