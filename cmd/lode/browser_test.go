package main

import (
	"context"
	"fmt"
	"html"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// chromium returns the path of Debian's chromium. Tests install nothing on
// the host: `make test` runs scripts/install-deps.sh --browser first, which
// installs the package. It never skips: without a browser the dashboard is
// untested.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is missing: run `make test` (scripts/install-deps.sh --browser installs it) or `apt-get install -y chromium` as root")
	return ""
}

// dumpDOM loads url in headless chromium, lets the page's scripts run for a
// few seconds of virtual time, and returns the serialized DOM.
func dumpDOM(t *testing.T, url string) string {
	t.Helper()
	bin := chromium(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir="+t.TempDir(),
		"--virtual-time-budget=5000", "--dump-dom", url)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return string(out)
}

// textOf returns the text of the element with the given id (no nested tags).
func textOf(t *testing.T, dom, id string) string {
	t.Helper()
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*>([^<]*)<`).FindStringSubmatch(dom)
	if m == nil {
		t.Errorf("no element #%s in the rendered page", id)
		return ""
	}
	return html.UnescapeString(m[1])
}

// rows returns the cell texts of each row of the tbody with the given id.
func rows(t *testing.T, dom, id string) [][]string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<tbody id="` + regexp.QuoteMeta(id) + `">(.*?)</tbody>`).FindStringSubmatch(dom)
	if m == nil {
		t.Errorf("no tbody #%s in the rendered page", id)
		return nil
	}
	var out [][]string
	for _, r := range regexp.MustCompile(`(?s)<tr>(.*?)</tr>`).FindAllStringSubmatch(m[1], -1) {
		var cells []string
		for _, c := range regexp.MustCompile(`(?s)<td[^>]*>(.*?)</td>`).FindAllStringSubmatch(r[1], -1) {
			cells = append(cells, html.UnescapeString(c[1]))
		}
		out = append(out, cells)
	}
	return out
}

// formatHashrate and formatBTC mirror api/dashboard/app.js.
func formatHashrate(h float64) string {
	units := []string{"H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s", "EH/s"}
	i := 0
	for h >= 1000 && i < len(units)-1 {
		h /= 1000
		i++
	}
	return fmt.Sprintf("%.2f %s", h, units[i])
}

func formatBTC(sats int64) string {
	sign := ""
	if sats < 0 {
		sign, sats = "-", -sats
	}
	return fmt.Sprintf("%s%d.%08d BTC", sign, sats/1e8, sats%1e8)
}

// TestDashboardInBrowser renders the embedded dashboard in headless
// chromium against the API over recorded data and checks the numbers the
// page shows.
func TestDashboardInBrowser(t *testing.T) {
	f := recordFixture(t)
	hs := newFixtureAPI(t, f)
	dom := dumpDOM(t, hs.URL+"/#miner="+minerA)
	if !strings.Contains(dom, `data-loaded="1"`) {
		t.Fatalf("the dashboard did not finish loading:\n%s", dom)
	}
	const two32 = 4294967296.0
	checks := map[string]string{
		"pool-hashrate-10m": formatHashrate(f.poolDifficulty * two32 / 600),
		"pool-hashrate-1h":  formatHashrate(f.poolDifficulty * two32 / 3600),
		"pool-hashrate-24h": formatHashrate(f.poolDifficulty * two32 / 86400),
		"pool-miners":       "2",
		"pool-workers":      "3",
		"net-height":        "202",
		"round-progress":    "0.00 %",
		"pool-fee":          "1 %",
		"miner-balance":     formatBTC(f.creditA),
		"miner-paid":        formatBTC(f.paidA),
		"miner-hashrate":    formatHashrate(70 * two32 / 600),
	}
	for id, want := range checks {
		if got := textOf(t, dom, id); got != want {
			t.Errorf("#%s shows %q, want %q", id, got, want)
		}
	}
	if got := textOf(t, dom, "status"); !strings.HasPrefix(got, "updated ") {
		t.Errorf("status line %q: some API call failed", got)
	}

	blocks := rows(t, dom, "blocks-body")
	if len(blocks) != 2 || blocks[0][0] != "150" || blocks[0][1] != "pending" || blocks[1][0] != "101" ||
		blocks[1][1] != "credited" || blocks[1][2] != formatBTC(f.minedBlock.Reward) || blocks[1][4] != "100" {
		t.Errorf("blocks table %q", blocks)
	}
	workers := rows(t, dom, "workers-body")
	if len(workers) != 3 || workers[0][1] != "rig1" || workers[0][2] != formatHashrate(60*two32/600) || workers[0][4] != "30" {
		t.Errorf("workers table %q", workers)
	}
	mw := rows(t, dom, "miner-workers")
	if len(mw) != 2 || mw[0][0] != "rig1" || mw[0][3] != "30" || mw[0][4] != "1" || mw[1][0] != "rig2" ||
		mw[1][1] != formatHashrate(10*two32/600) {
		t.Errorf("miner workers table %q", mw)
	}
	mp := rows(t, dom, "miner-payments")
	if len(mp) != 1 || mp[0][1] != formatBTC(f.paidA) || mp[0][2] != "pending" || mp[0][3] != f.payoutTxID {
		t.Errorf("miner payments table %q", mp)
	}
	if !strings.Contains(dom, "<polyline") && !strings.Contains(textOf(t, dom, "chart-caption"), "collecting samples") {
		t.Errorf("hashrate chart neither drawn nor explained")
	}

	// An unknown address shows the not-found message, not an error.
	dom = dumpDOM(t, hs.URL+"/#miner=mgf7FHaRYnTyaaGgcXCabtqL3tg7uQVYhX")
	if got := textOf(t, dom, "miner-error"); got != "No shares from mgf7FHaRYnTyaaGgcXCabtqL3tg7uQVYhX yet." {
		t.Errorf("unknown miner message %q", got)
	}
}
