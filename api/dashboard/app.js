// Lode dashboard: plain JavaScript, no build step. It polls the JSON API and
// renders into elements by id. Number formats here are part of what the
// browser test checks (api/browser_test.go): keep both in step.
"use strict";

const UNITS = ["H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s", "EH/s"];

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

function formatTime(t) {
  if (!t || t.startsWith("0001-")) return "–";
  return new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function short(s) { return s && s.length > 20 ? s.slice(0, 10) + "…" + s.slice(-8) : (s || ""); }

function text(id, value) { const el = document.getElementById(id); if (el) el.textContent = value; }

function row(cells, classes) {
  const tr = document.createElement("tr");
  cells.forEach((c, i) => {
    const td = document.createElement("td");
    td.textContent = c;
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
  text("pool-hashrate-10m", formatHashrate(p.hashrate["10m"]));
  text("pool-hashrate-1h", formatHashrate(p.hashrate["1h"]));
  text("pool-hashrate-24h", formatHashrate(p.hashrate["24h"]));
  text("pool-miners", String(p.miners));
  text("pool-workers", String(p.workers));
  text("net-height", String(p.network.height));
  text("net-difficulty", formatNumber(p.network.difficulty));
  text("round-progress", (p.round_progress * 100).toFixed(2) + " %");
  text("pool-fee", p.fee_percent + " %");
  text("pool-window", p.pplns_window + " × difficulty");
  const b = p.last_block;
  text("last-block", b ? `#${b.height} ${b.status} · ${formatBTC(b.reward)} · ${formatTime(b.found_at)}` : "none yet");
}

function renderChart(h) {
  const svg = document.getElementById("chart");
  svg.replaceChildren();
  const pts = h.points || [];
  if (pts.length < 2) { text("chart-caption", "collecting samples (one every " + h.interval_seconds + " s)"); return; }
  const t0 = Date.parse(pts[0].time), t1 = Date.parse(pts[pts.length - 1].time);
  const max = Math.max(...pts.map(p => p.hashrate)) || 1;
  const coords = pts.map(p => {
    const x = t1 === t0 ? 0 : (Date.parse(p.time) - t0) / (t1 - t0) * 800;
    const y = 195 - p.hashrate / max * 185;
    return x.toFixed(1) + "," + y.toFixed(1);
  });
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", coords.join(" "));
  svg.appendChild(line);
  text("chart-caption", `${pts.length} samples · peak ${formatHashrate(max)} · ${formatTime(pts[0].time)} → ${formatTime(pts[pts.length - 1].time)}`);
}

function renderWorkers(ws) {
  fill("workers-body", ws.map(w => row([short(w.address), w.name || "(default)", formatHashrate(w.hashrate["10m"]),
    formatHashrate(w.hashrate["1h"]), String(w.accepted), formatTime(w.last_share)], ["mono"])), "no active workers", 6);
}

function renderBlocks(bs) {
  fill("blocks-body", bs.map(b => row([String(b.height), b.status, formatBTC(b.reward), short(b.finder),
    String(b.confirmations), formatTime(b.found_at)], [null, "status-" + b.status])), "no blocks found yet", 6);
}

function renderPayments(ps) {
  fill("payments-body", ps.map(p => row([formatTime(p.time), short(p.address), formatBTC(p.amount), p.status, short(p.txid)],
    [null, "mono", null, null, "mono"])), "no payments yet", 5);
}

async function lookupMiner(addr) {
  const box = document.getElementById("miner"), err = document.getElementById("miner-error");
  if (!addr) { box.hidden = true; err.hidden = true; return; }
  try {
    const m = await getJSON("api/v1/miners/" + encodeURIComponent(addr));
    text("miner-balance", formatBTC(m.balance));
    text("miner-paid", formatBTC(m.paid));
    text("miner-hashrate", formatHashrate(m.hashrate["10m"]));
    text("miner-last-share", formatTime(m.last_share));
    fill("miner-workers", m.workers.map(w => row([w.name || "(default)", formatHashrate(w.hashrate["10m"]),
      formatHashrate(w.hashrate["1h"]), String(w.accepted), String(w.rejected), formatTime(w.last_share)])), "no workers", 6);
    // The API lists one page of workers (the first 50 by name).
    const more = document.getElementById("miner-workers-more");
    more.hidden = !(m.workers_total > m.workers.length);
    more.textContent = more.hidden ? "" : "first " + m.workers.length + " of " + m.workers_total + " workers, by name";
    fill("miner-payments", m.payments.map(p => row([formatTime(p.time), formatBTC(p.amount), p.status, p.txid], [null, null, null, "mono"])),
      "no payments yet", 4);
    box.hidden = false; err.hidden = true;
  } catch (e) {
    box.hidden = true; err.hidden = false;
    err.textContent = e.status === 404 ? "No shares from " + addr + " yet." : "Lookup failed: " + e.message;
  }
}

async function refresh() {
  const jobs = [
    getJSON("api/v1/pool").then(renderPool),
    getJSON("api/v1/pool/history").then(renderChart),
    getJSON("api/v1/workers?limit=100").then(r => renderWorkers(r.workers)),
    getJSON("api/v1/blocks?limit=50").then(r => renderBlocks(r.blocks)),
    getJSON("api/v1/payments?limit=50").then(r => renderPayments(r.payments)),
  ];
  const addr = new URLSearchParams(location.hash.slice(1)).get("miner");
  if (addr) jobs.push(lookupMiner(addr));
  const results = await Promise.allSettled(jobs);
  const failed = results.filter(r => r.status === "rejected");
  text("status", failed.length ? "some data unavailable: " + failed[0].reason.message : "updated " + formatTime(new Date().toISOString()));
  document.body.dataset.loaded = "1";
}

document.getElementById("miner-form").addEventListener("submit", ev => {
  ev.preventDefault();
  const addr = document.getElementById("miner-address").value.trim();
  location.hash = addr ? "miner=" + encodeURIComponent(addr) : "";
});
window.addEventListener("hashchange", () => {
  const addr = new URLSearchParams(location.hash.slice(1)).get("miner") || "";
  document.getElementById("miner-address").value = addr;
  lookupMiner(addr);
});
document.getElementById("miner-address").value = new URLSearchParams(location.hash.slice(1)).get("miner") || "";
refresh();
setInterval(refresh, 10000);
