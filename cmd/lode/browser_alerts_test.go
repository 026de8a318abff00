//go:build e2e

package main

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/lode-pool/lode/alerts"
	"github.com/lode-pool/lode/api"
	"github.com/lode-pool/lode/internal/btcaddr"
	"github.com/lode-pool/lode/internal/secret"
)

// alertsDriver is added to the dashboard by TestBrowserAlertsSubscriptions:
// it uses the miner page's alerts form as a miner would (fields, buttons,
// submit) and notes what the page shows after each step in <ol
// id="drive-log">, which the test reads from the DOM chromium dumps.
const alertsDriver = `(async function () {
  const log = document.createElement("ol"); log.id = "drive-log"; document.body.appendChild(log);
  const note = s => { const li = document.createElement("li"); li.textContent = s; log.appendChild(li); };
  const $ = id => document.getElementById(id);
  const until = async (what, ok) => {
    for (let i = 0; i < 400; i++) { if (ok()) return; await new Promise(r => setTimeout(r, 10)); }
    throw new Error("timeout: " + what);
  };
  const rows = () => [...document.querySelectorAll("#alerts-subs tr")].filter(tr => tr.dataset.id);
  const rowText = tr => [...tr.cells].slice(0, 3).map(c => c.textContent).join(" | ");
  const shown = () => ["url", "email", "secret", "chat-id"].filter(n => !$("alerts-field-" + n).hidden).join(",");
  const kind = k => { $("alerts-kind").value = k; $("alerts-kind").dispatchEvent(new Event("change")); };
  try {
    await until("alerts section", () => $("alerts") && !$("alerts").hidden);
    note("shown");
    $("alerts-token").value = "not-the-token";
    $("alerts-show").click();
    await until("refusal", () => $("alerts-status").textContent !== "");
    note($("alerts-status").textContent);
    $("alerts-token").value = "TOKEN";
    kind("telegram"); note("telegram: " + shown());
    kind("webhook"); note("webhook: " + shown());
    $("alerts-url").value = "https://miner.example/hook";
    $("alerts-secret").value = "hook-key";
    for (const b of document.querySelectorAll("#alerts-events input")) b.checked = b.value === "worker_offline" || b.value === "payout_sent";
    $("alerts-form").requestSubmit();
    await until("the webhook listed", () => rows().length === 1);
    note($("alerts-status").textContent);
    kind("email"); note("email: " + shown());
    $("alerts-email").value = "miner@example.org";
    for (const b of document.querySelectorAll("#alerts-events input")) b.checked = b.value !== "block_found" && b.value !== "block_orphaned";
    $("alerts-form").requestSubmit();
    await until("both listed", () => rows().length === 2);
    rows().forEach(tr => note("row: " + rowText(tr)));
    rows().find(tr => tr.cells[0].textContent === "webhook").querySelector("button").click();
    await until("the webhook gone", () => rows().length === 1);
    note($("alerts-status").textContent);
    rows().forEach(tr => note("row: " + rowText(tr)));
  } catch (e) {
    note("error: " + e.message);
  }
  document.body.dataset.driven = "1";
})();
`

// The miner page's alerts form (api/dashboard/alerts.js) in Chromium,
// against the subscription API as the daemon mounts it over a real Redis:
// a wrong token is refused with the page saying why; each kind shows its
// own fields; with the address's token the miner subscribes a signed
// webhook for two events and an email for the default four, sees both
// listed, and unsubscribes the webhook; Redis then holds the email alone.
// Without alerts the form is not shown.
func TestBrowserAlertsSubscriptions(t *testing.T) {
	f := recordFixture(t)
	const key = "browser-alerts-token-key"
	a := alerts.NewAPI(alerts.Config{Enabled: true, TokenSecret: secret.Literal(key),
		Email: alerts.EmailConfig{Server: "127.0.0.1:25", From: "pool@example.org"}},
		f.store, func(s string) (string, error) { return btcaddr.Canonical(s, &chaincfg.RegressionNetParams) })
	hs := newDashboardAPI(t, f, "", func(c *api.Config) { c.Alerts, c.AlertsAdmin = a.Handler(), a.AdminHandler() })
	token := alerts.NewTokens(key).Token(minerA)
	page := withScript(t, hs, strings.Replace(alertsDriver, "TOKEN", token, 1))

	dom := dumpDOM(t, page+"/#miner="+minerA)
	if !strings.Contains(dom, `data-driven="1"`) {
		t.Fatalf("the driver did not finish:\n%s", dom)
	}
	m := regexp.MustCompile(`(?s)<ol id="drive-log">(.*?)</ol>`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no drive log:\n%s", dom)
	}
	var got []string
	for _, li := range regexp.MustCompile(`(?s)<li>(.*?)</li>`).FindAllStringSubmatch(m[1], -1) {
		got = append(got, html.UnescapeString(li[1]))
	}
	want := []string{
		"shown",
		"Could not list: the token is not this address's (ask the pool operator)",
		"telegram: url,chat-id",
		"webhook: url,secret",
		"Subscribed: webhook to https://miner.example/hook.",
		"email: email",
		// Listed in the store's order: either first.
		"row: *",
		"row: *",
		"Unsubscribed: webhook to https://miner.example/hook.",
		"row: email | miner@example.org | worker_offline, worker_online, payout_sent, payout_stuck",
	}
	if len(got) != len(want) {
		t.Fatalf("the page went\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i := range want {
		if want[i] != "row: *" && got[i] != want[i] {
			t.Errorf("step %d: %q, want %q", i, got[i], want[i])
		}
	}
	both := got[6] + "\n" + got[7]
	for _, r := range []string{"row: webhook | https://miner.example/hook | worker_offline, payout_sent",
		"row: email | miner@example.org | worker_offline, worker_online, payout_sent, payout_stuck"} {
		if !strings.Contains(both, r) {
			t.Errorf("listed %q, want a row %q", both, r)
		}
	}
	subs, err := f.store.Subscriptions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 1 || subs[0].Kind != alerts.KindEmail || subs[0].Address != minerA || subs[0].Email != "miner@example.org" ||
		len(subs[0].Events) != 4 {
		t.Errorf("subscriptions in Redis %+v, want the email alone", subs)
	}
	if strings.Contains(dom, token) || strings.Contains(dom, "hook-key") {
		t.Error("the token or the webhook secret is left in the page")
	}

	off := newDashboardAPI(t, f, "")
	if dom := dumpDOM(t, off.URL+"/#miner="+minerA); !strings.Contains(dom, `<div id="alerts" hidden=""`) {
		t.Errorf("alerts form shown while alerts are off: %s", regexp.MustCompile(`<div id="alerts"[^>]*>`).FindString(dom))
	}
}

// withScript serves the dashboard of hs with script added after its own
// scripts, and everything else from hs; it returns the base URL.
func withScript(t *testing.T, hs *httptest.Server, script string) string {
	t.Helper()
	target, err := url.Parse(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/drive.js":
			w.Header().Set("Content-Type", "text/javascript")
			_, _ = io.WriteString(w, script)
		case "/":
			res, err := http.Get(hs.URL + "/")
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, strings.Replace(string(b), "</body>", `<script src="drive.js"></script></body>`, 1))
		default:
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(front.Close)
	return front.URL
}
