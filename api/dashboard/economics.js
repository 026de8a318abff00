"use strict";
// Miner economics on the dashboard (docs/economics.md): the hashprice tile
// (template vs trailing fees), the retarget card with its band and ETA, the
// prices, the break-even ladder chart and the worker table (hashrate with
// its 95 % interval, revenue, cost, margin, advice); the miner page shows the
// same table for its address. Everything is built here from
// GET /api/v1/economics, /fleet and /workers, so the page's own script and
// markup stay untouched; when the API says economics is off, nothing shows.
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const REFRESH_MS = 30000;
  const WINDOW = 1; // index of the 1 h window in each worker's hashrate list

  function card(title, id) {
    return el("div", { class: "card" }, [el("h2", { text: title }), el("p", { id: id, text: "–" })]);
  }
  function hashrate(h) {
    const units = ["H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s", "EH/s"];
    let i = 0;
    while (h >= 1000 && i < units.length - 1) { h /= 1000; i++; }
    return h.toFixed(2) + " " + units[i];
  }
  function sats(v) { return Math.round(v).toLocaleString("en-US") + " sat"; }
  function interval(iv, fmt) {
    if (!iv) return "–";
    return fmt(iv.value) + " [" + fmt(iv.low) + ", " + fmt(iv.high) + "]";
  }
  function set(id, s) { const e = document.getElementById(id); if (e) e.textContent = s; }
  async function get(path) {
    const res = await fetch(path, { cache: "no-store" });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.error || res.status + " " + res.statusText);
    return body;
  }

  // The section, after the pool's cards.
  const section = el("section", { id: "economics", hidden: "" }, [
    el("h2", { text: "Mining economics" }),
    el("div", { class: "cards" }, [
      card("Hashprice (template)", "econ-hashprice-template"),
      card("Hashprice (trailing fees)", "econ-hashprice-trailing"),
      el("div", { class: "card wide" }, [el("h2", { text: "Next retarget" }), el("p", { id: "econ-retarget", text: "–" })]),
      card("Power price", "econ-power"),
      card("BTC price", "econ-btc"),
      card("Curtailable now", "econ-curtailable"),
    ]),
    el("h3", { text: "Break-even ladder" }),
    document.createElementNS(SVG, "svg"),
    el("p", { id: "econ-ladder-caption", class: "muted" }),
    el("h3", { text: "Workers: revenue, cost and advice (1 h hashrate, 95 % interval)" }),
    el("div", { class: "scroll" }, [table("econ-workers")]),
    el("p", { id: "econ-note", class: "muted" }),
  ]);
  const ladder = section.querySelector("svg");
  ladder.setAttribute("id", "econ-ladder");
  ladder.setAttribute("class", "chart");
  ladder.setAttribute("viewBox", "0 0 800 160");
  ladder.setAttribute("preserveAspectRatio", "none");
  ladder.setAttribute("role", "img");
  ladder.setAttribute("aria-label", "break-even power price per device model");

  function table(bodyId) {
    const head = ["Worker", "Model", "Hashrate [95 %]", "Revenue/day", "Cost/day", "Margin/day", "Break-even", "Advice"];
    return el("table", {}, [el("thead", {}, [el("tr", {}, head.map(h => el("th", { text: h })))]), el("tbody", { id: bodyId })]);
  }

  function workerRows(bodyId, workers, empty) {
    const body = document.getElementById(bodyId);
    if (!body) return;
    body.replaceChildren();
    if (!workers.length) {
      body.appendChild(el("tr", {}, [el("td", { colspan: "8", class: "muted", text: empty })]));
      return;
    }
    for (const w of workers) {
      const h = w.hashrate[WINDOW];
      const hr = h.method === "upper_bound" ? "< " + hashrate(h.high)
        : h.method === "not_connected" ? "not connected"
          : hashrate(h.hashrate) + " [" + hashrate(h.low) + ", " + hashrate(h.high) + "]";
      const m = w.money;
      const advice = el("td", { class: "advice-" + w.advice.advice, title: w.advice.reason, text: w.advice.advice });
      body.appendChild(el("tr", {}, [
        el("td", { text: w.worker }), el("td", { text: w.device.model + " (" + w.device.source + ")" }),
        el("td", { text: hr }), el("td", { text: interval(m.revenue_sat_per_day, sats) }),
        el("td", { text: interval(m.cost_sat_per_day, sats) }), el("td", { text: interval(m.margin_sat_per_day, sats) }),
        el("td", { text: m.break_even_sat_per_kwh.toFixed(1) + " sat/kWh" }), advice,
      ]));
    }
  }

  function drawLadder(fleet) {
    ladder.replaceChildren();
    const steps = fleet.ladder || [];
    if (!steps.length) { set("econ-ladder-caption", "no workers measured yet"); return; }
    const cur = fleet.current_sat_per_kwh;
    const top = Math.max(...steps.map(s => s.break_even_sat_per_kwh), cur || 0) * 1.1 || 1;
    const w = 800 / steps.length;
    steps.forEach((s, i) => {
      const h = s.break_even_sat_per_kwh / top * 150;
      const r = document.createElementNS(SVG, "rect");
      r.setAttribute("x", String(i * w + 4));
      r.setAttribute("y", String(155 - h));
      r.setAttribute("width", String(Math.max(w - 8, 1)));
      r.setAttribute("height", String(h));
      r.setAttribute("class", s.profitable === false ? "bar unlucky" : "bar");
      const t = document.createElementNS(SVG, "title");
      t.textContent = s.model + ": break-even " + s.break_even_sat_per_kwh.toFixed(1) + " sat/kWh";
      r.appendChild(t);
      ladder.appendChild(r);
    });
    if (cur != null) {
      const y = 155 - cur / top * 150;
      const l = document.createElementNS(SVG, "line");
      l.setAttribute("id", "econ-ladder-price");
      l.setAttribute("x1", "0"); l.setAttribute("x2", "800");
      l.setAttribute("y1", String(y)); l.setAttribute("y2", String(y));
      l.setAttribute("class", "price");
      ladder.appendChild(l);
    }
    set("econ-ladder-caption", steps.map(s => s.model + " " + s.break_even_sat_per_kwh.toFixed(1)).join(" · ") +
      " sat/kWh" + (cur != null ? "; power now " + cur.toFixed(1) + " sat/kWh, " + fleet.current_rung + " model(s) below it" : "; no power price"));
  }

  function priceText(p, unit) {
    if (!p) return "none";
    let s = p.value + " " + unit + " (" + p.source;
    if (p.age_seconds) s += ", " + Math.round(p.age_seconds) + " s old";
    if (p.stale) s += ", STALE: not used";
    return s + ")";
  }

  function renderOverview(o) {
    const hp = o.network.hashprice || {};
    const show = v => v ? v.sat_per_th_day.toFixed(2) + " sat/TH/day · " + v.btc_per_ph_day.toFixed(8) + " BTC/PH/day" : "–";
    set("econ-hashprice-template", show(hp.template));
    set("econ-hashprice-trailing", hp.trailing_mean ? show(hp.trailing_mean) + " (median " + hp.trailing_median.sat_per_th_day.toFixed(2) + ")" : "not read yet");
    const r = o.network.retarget;
    if (r.available) {
      const pct = x => (x >= 0 ? "+" : "") + x.toFixed(2) + " %";
      const lo = (r.next_difficulty_low / r.difficulty - 1) * 100, hi = (r.next_difficulty_high / r.difficulty - 1) * 100;
      set("econ-retarget", pct(r.change_percent) + " [" + pct(lo) + ", " + pct(hi) + "] at height " + r.next_height +
        ", ETA " + new Date(r.eta).toISOString().slice(0, 16).replace("T", " ") + " UTC");
    } else {
      set("econ-retarget", "at height " + r.next_height + ": no forecast (" + r.reason + ")");
    }
    set("econ-power", priceText(o.prices.power_per_kwh, o.prices.currency + "/kWh"));
    set("econ-btc", priceText(o.prices.btc, o.prices.currency));
    set("econ-curtailable", Math.round(o.curtailable_watts).toLocaleString("en-US") + " W");
    const asOf = new Date(o.workers_as_of), at = new Date(o.time);
    set("econ-note", at - asOf > 60000 ? "worker figures are " + Math.round((at - asOf) / 1000) + " s old (statistics not readable)" : "");
  }

  // The miner page's part, inside #miner.
  function minerPart() {
    let part = document.getElementById("econ-miner");
    const miner = document.getElementById("miner");
    if (!part && miner) {
      part = el("div", { id: "econ-miner", hidden: "" }, [
        el("h3", { text: "Economics of this address" }),
        el("p", { id: "econ-miner-total", class: "muted" }),
        el("div", { class: "scroll" }, [table("econ-miner-workers")]),
      ]);
      miner.appendChild(part);
    }
    return part;
  }

  function minerAddress() { return new URLSearchParams(location.hash.slice(1)).get("miner") || ""; }

  async function refreshMiner() {
    const addr = minerAddress();
    const part = minerPart();
    if (!part) return;
    if (!addr || section.hidden) { part.hidden = true; return; }
    try {
      const a = await get("api/v1/economics/workers?address=" + encodeURIComponent(addr));
      part.hidden = false;
      const t = a.total;
      set("econ-miner-total", t.workers + " worker(s), " + hashrate(t.hashrate.value) + ", revenue " +
        interval(t.revenue_sat_per_day, sats) + "/day" + (t.margin_sat_per_day ? ", margin " + interval(t.margin_sat_per_day, sats) + "/day" : ""));
      workerRows("econ-miner-workers", a.workers, "no workers of this address measured in the last 24 h");
    } catch (e) {
      part.hidden = true;
    }
  }

  async function refresh() {
    try {
      const [o, fleet, ws] = await Promise.all([get("api/v1/economics"), get("api/v1/economics/fleet"), get("api/v1/economics/workers")]);
      section.hidden = false;
      renderOverview(o);
      drawLadder(fleet);
      workerRows("econ-workers", ws.workers.slice(0, 50), "no workers measured in the last 24 h");
    } catch (e) {
      // Off (503 "economics is off") or not computed yet: the section stays
      // hidden until the figures exist.
      section.hidden = true;
    }
    refreshMiner();
  }

  function mount() {
    const cards = document.querySelector("main > section.cards");
    if (cards && cards.parentNode) cards.parentNode.insertBefore(section, cards.nextSibling);
    else document.body.appendChild(section);
    const style = document.createElement("style");
    style.textContent = "svg line.price{stroke:var(--bad);stroke-width:2;stroke-dasharray:6 4;vector-effect:non-scaling-stroke}" +
      "td.advice-run{color:var(--good)}td.advice-curtail{color:var(--bad)}td.advice-hold{color:var(--accent)}";
    document.head.appendChild(style);
    window.addEventListener("hashchange", refreshMiner);
    refresh();
    setInterval(refresh, REFRESH_MS);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount); else mount();
})();
