"use strict";
// Alerts on the miner page (docs/alerts.md): with the token the pool
// operator gave for the address, a miner lists, adds and removes its
// subscriptions (a signed webhook, an email, a Discord or Telegram chat)
// through /api/v1/alerts/subscriptions. Everything is built here, so the
// page's own script and markup stay untouched; when the API says alerts
// are off (503), nothing shows. The token stays in the form: it is sent
// only as the Authorization header of these requests.
(function () {
  const API = "api/v1/alerts/subscriptions";
  const EVENTS = [
    ["worker_offline", "worker offline", true], ["worker_online", "worker back online", true],
    ["payout_sent", "payout sent", true], ["payout_stuck", "payout stuck", true],
    ["block_found", "block found", false], ["block_orphaned", "block orphaned", false],
  ];
  // Which fields each kind of subscription takes.
  const FIELDS = {
    webhook: ["url", "secret"], email: ["email"], discord: ["url"], telegram: ["url", "chat-id"],
  };

  function field(name, label, input) {
    return el("label", { class: "alerts-field", id: "alerts-field-" + name }, [el("span", { text: label }), input]);
  }

  const kind = el("select", { id: "alerts-kind", name: "kind" },
    Object.keys(FIELDS).map(k => el("option", { value: k, text: k })));
  const section = el("div", { id: "alerts", hidden: "" }, [
    el("h3", { text: "Alerts" }),
    el("p", { class: "muted", text: "Be told when a worker goes offline, a payout is sent or stuck, or the pool " +
      "finds a block. Subscribing needs this address's token: ask the pool operator for it." }),
    el("form", { id: "alerts-form", autocomplete: "off" }, [
      field("token", "Token", el("input", { id: "alerts-token", name: "token", type: "password", spellcheck: "false" })),
      el("button", { type: "button", id: "alerts-show", text: "Show my subscriptions" }),
      field("kind", "Send by", kind),
      field("url", "URL", el("input", { id: "alerts-url", name: "url", type: "url", placeholder: "https://…" })),
      field("email", "Email", el("input", { id: "alerts-email", name: "email", type: "email", placeholder: "you@example.org" })),
      field("secret", "Signing secret", el("input", { id: "alerts-secret", name: "secret", type: "password",
        placeholder: "HMAC key your receiver checks" })),
      field("chat-id", "Chat id", el("input", { id: "alerts-chat-id", name: "chat_id" })),
      el("fieldset", { id: "alerts-events" }, [el("legend", { text: "Events" })].concat(EVENTS.map(([v, label, on]) => {
        const box = el("input", { type: "checkbox", name: "event", value: v });
        box.checked = on;
        return el("label", { class: "alerts-event" }, [box, document.createTextNode(" " + label)]);
      }))),
      el("button", { type: "submit", id: "alerts-subscribe", text: "Subscribe" }),
    ]),
    el("p", { id: "alerts-status", class: "muted", role: "status" }),
    el("div", { class: "scroll" }, [el("table", {}, [
      el("thead", {}, [el("tr", {}, ["Kind", "Sent to", "Events", "Since", ""].map(h => el("th", { text: h })))]),
      el("tbody", { id: "alerts-subs" }),
    ])]),
  ]);
  const miner = document.getElementById("miner");
  if (!miner) return;
  miner.appendChild(section);
  // Its layout, with the page's colours (style.css).
  document.head.appendChild(el("style", { text:
    "#alerts-form { display: grid; gap: .4rem; max-width: 40rem; }" +
    "#alerts-form .alerts-field { display: flex; gap: .5rem; align-items: center; }" +
    "#alerts-form .alerts-field > span { min-width: 8rem; color: var(--muted); }" +
    "#alerts-form .alerts-field > input, #alerts-form .alerts-field > select { flex: 1; width: auto; max-width: none; }" +
    "#alerts-form [hidden] { display: none; }" +
    "#alerts-events { border: 1px solid var(--line); border-radius: 4px; display: flex; flex-wrap: wrap; gap: .25rem 1rem; }" +
    "#alerts-events input { width: auto; }" +
    "#alerts-form button { justify-self: start; }" }));
  const $ = id => document.getElementById(id);

  function address() { return new URLSearchParams(location.hash.slice(1)).get("miner") || ""; }
  function status(msg, bad) { const s = $("alerts-status"); s.textContent = msg; s.className = bad ? "error" : "muted"; }

  function showFields() {
    const want = FIELDS[kind.value];
    for (const name of ["url", "email", "secret", "chat-id"]) $("alerts-field-" + name).hidden = !want.includes(name);
  }
  kind.addEventListener("change", showFields);
  showFields();

  // call sends one request with the token; it returns the JSON body (null
  // for 204) or throws an Error carrying the API's message and status.
  async function call(method, path, body) {
    const headers = { "Authorization": "Bearer " + $("alerts-token").value.trim() };
    if (body) headers["Content-Type"] = "application/json";
    const res = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined, cache: "no-store" });
    const out = res.status === 204 ? null : await res.json().catch(() => ({}));
    if (!res.ok) {
      const e = new Error(res.status === 401 ? "the token is not this address's (ask the pool operator)"
        : (out && out.error) || res.statusText);
      e.status = res.status;
      throw e;
    }
    return out;
  }

  function target(s) { return s.kind === "email" ? s.email : s.url + (s.chat_id ? " (chat " + s.chat_id + ")" : ""); }

  function render(subs) {
    const body = $("alerts-subs");
    body.replaceChildren();
    if (subs.length === 0) {
      body.appendChild(el("tr", {}, [el("td", { colspan: "5", class: "muted", text: "no subscriptions" })]));
      return;
    }
    for (const s of subs) {
      const drop = el("button", { type: "button", class: "alerts-unsubscribe", "data-id": s.id, text: "Unsubscribe" });
      drop.addEventListener("click", () => unsubscribe(s));
      body.appendChild(el("tr", { "data-id": s.id }, [
        el("td", { text: s.kind }), el("td", { class: "mono", text: target(s) }),
        el("td", { text: (s.events || []).join(", ") }),
        el("td", { text: new Date(s.created).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") }),
        el("td", {}, [drop]),
      ]));
    }
  }

  async function list() {
    const r = await call("GET", API + "?address=" + encodeURIComponent(address()));
    render(r.subscriptions || []);
    return r.subscriptions || [];
  }

  $("alerts-show").addEventListener("click", async () => {
    try {
      const subs = await list();
      status(subs.length + " subscription(s).");
    } catch (e) {
      status("Could not list: " + e.message, true);
    }
  });

  $("alerts-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    const req = { address: address(), kind: kind.value,
      events: [...document.querySelectorAll("#alerts-events input:checked")].map(b => b.value) };
    const want = FIELDS[kind.value];
    if (want.includes("url")) req.url = $("alerts-url").value.trim();
    if (want.includes("email")) req.email = $("alerts-email").value.trim();
    if (want.includes("secret")) req.secret = $("alerts-secret").value;
    if (want.includes("chat-id")) req.chat_id = $("alerts-chat-id").value.trim();
    try {
      const s = await call("POST", API, req);
      status("Subscribed: " + s.kind + " to " + target(s) + ".");
      $("alerts-secret").value = "";
      await list();
    } catch (e) {
      status("Could not subscribe: " + e.message, true);
    }
  });

  async function unsubscribe(s) {
    try {
      await call("DELETE", API + "/" + encodeURIComponent(s.id) + "?address=" + encodeURIComponent(address()));
      status("Unsubscribed: " + s.kind + " to " + target(s) + ".");
      await list();
    } catch (e) {
      status("Could not unsubscribe: " + e.message, true);
    }
  }

  // The section shows on a miner page when the pool takes subscriptions:
  // a request without a token is refused (401), not unavailable (503).
  let enabled = null;
  async function update() {
    const addr = address();
    if (addr && enabled === null) {
      const res = await fetch(API + "?address=" + encodeURIComponent(addr), { cache: "no-store" }).catch(() => null);
      enabled = !!res && res.status !== 503 && res.status !== 404;
    }
    section.hidden = !addr || !enabled;
    if (section.dataset.address !== addr) { // another miner: not the previous one's list
      section.dataset.address = addr;
      $("alerts-subs").replaceChildren();
      status("");
    }
  }
  window.addEventListener("hashchange", update);
  update();
})();
