//go:build e2e

package main

import (
	"context"
	"fmt"
	"html"
	"image"
	"image/png"
	"math"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lode-pool/lode/api"
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

// nearPercent reports whether a cell "12.34 %" shows want to its two
// decimals (JavaScript's and Go's rounding may differ in the last one).
func nearPercent(cell string, want float64) bool {
	v, err := strconv.ParseFloat(strings.TrimSuffix(cell, " %"), 64)
	return err == nil && math.Abs(v-want) <= 0.011+1e-12*math.Abs(want)
}

// newDashboardAPI serves the API over the fixture as the daemon wires it
// (every reader, the hashrate series, the default threshold, explorer
// links when explorer is set), reading in the minute the fixture's shares
// were recorded in; more adds to the API's config (other packages'
// handlers).
func newDashboardAPI(t *testing.T, f *fixture, explorer string, more ...func(*api.Config)) *httptest.Server {
	t.Helper()
	r := newStoreReader(f.store)
	r.now = func() time.Time { return f.now }
	r.feeBasisPoints = 100
	cfg := api.Config{
		FeePercent: 1, PPLNSWindow: 2, PayoutThreshold: f.threshold, ExplorerURL: explorer,
		Network: func() (api.Network, bool) { return api.Network{Height: 202, Difficulty: 4.656542373906925e-10}, true },
	}
	cfg.Pool, cfg.Blocks, cfg.Miners, cfg.Payments, cfg.Workers, cfg.Thresholds, cfg.Series, cfg.TopMiners = r, r, r, r, r, r, r, r
	for _, m := range more {
		m(&cfg)
	}
	srv, err := api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs
}

// TestDashboardInBrowser renders the embedded dashboard in headless
// chromium against the API over recorded data and checks the numbers the
// page shows.
func TestDashboardInBrowser(t *testing.T) {
	f := recordFixture(t)
	hs := newDashboardAPI(t, f, "")
	dom := dumpDOM(t, hs.URL+"/#miner="+minerA)
	if !strings.Contains(dom, `data-loaded="1"`) {
		t.Fatalf("the dashboard did not finish loading:\n%s", dom)
	}
	const two32 = 4294967296.0
	checks := map[string]string{
		// Over the minute the fixture's shares cover, not 10 min, 1 h, 24 h.
		"pool-hashrate-10m": formatHashrate(f.poolDifficulty * two32 / 60),
		"pool-hashrate-1h":  formatHashrate(f.poolDifficulty * two32 / 60),
		"pool-hashrate-24h": formatHashrate(f.poolDifficulty * two32 / 60),
		"pool-reject-rate":  fmt.Sprintf("%.2f %%", 100*2.0/(45+2)), // rig1's low-difficulty and stale of 47
		"pool-miners":       "2",
		"pool-workers":      "3",
		"net-height":        "202",
		"round-progress":    "0.00 %",
		"net-hashrate":      formatHashrate(4.656542373906925e-10 * two32 / 600),
		"pool-fee":          "1 %",
		"miner-balance":     formatBTC(f.creditA),
		"miner-paid":        formatBTC(f.paidA),
		"miner-hashrate":    formatHashrate(70 * two32 / 60),
		"miner-immature":    formatBTC(f.immatureA),
		"miner-threshold":   formatBTC(f.threshold),
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
	// Effort of block 101: its round (every fixture share) ÷ its network
	// difficulty.
	effort101 := 100 * f.poolDifficulty / f.minedBlock.NetworkDifficulty
	if len(blocks) != 2 || blocks[0][0] != "150" || blocks[0][1] != "pending" || blocks[1][0] != "101" ||
		blocks[1][1] != "credited" || blocks[1][2] != formatBTC(f.minedBlock.Reward) || blocks[1][4] != "100" ||
		!nearPercent(blocks[1][5], effort101) || blocks[0][5] != "–" {
		t.Errorf("blocks table %q (effort of 101 want %.2f %%)", blocks, effort101)
	}
	if got := textOf(t, dom, "difficulty-caption"); !strings.HasPrefix(got, "#101 → #150 · now ") {
		t.Errorf("difficulty caption %q", got)
	}
	if got := textOf(t, dom, "blocks-page"); got != "1–2 of 2" {
		t.Errorf("blocks pager %q", got)
	}
	if !regexp.MustCompile(`<svg id="luck-chart"[^>]*><rect[^>]*class="bar unlucky"`).MatchString(dom) {
		t.Errorf("effort chart has no bar for block 101")
	}
	workers := rows(t, dom, "workers-body")
	// rig1: 30 accepted, 1 rejected, 1 stale: 6.25 % rejected; best share
	// 3 (the fixture's hash difficulty is 1.5 × 2); last share seconds ago.
	if len(workers) != 3 || workers[0][1] != "rig1" || workers[0][2] != formatHashrate(60*two32/60) || workers[0][4] != "30" ||
		workers[0][5] != "6.25 %" || workers[0][6] != "3" || !strings.HasSuffix(workers[0][7], " s ago") && !strings.HasSuffix(workers[0][7], " min ago") {
		t.Errorf("workers table %q", workers)
	}
	mw := rows(t, dom, "miner-workers")
	if len(mw) != 2 || mw[0][0] != "rig1" || mw[0][3] != "30" || mw[0][4] != "1" || mw[0][5] != "6.25 %" || mw[1][0] != "rig2" ||
		mw[1][1] != formatHashrate(10*two32/60) || strings.HasPrefix(mw[1][7], "offline") {
		t.Errorf("miner workers table %q", mw)
	}
	// Top miners: minerA's two workers summed, before minerB; the address
	// opens its miner page.
	tm := rows(t, dom, "miners-body")
	if len(tm) != 2 || !strings.Contains(tm[0][0], `href="#miner=`+minerA+`"`) || tm[0][1] != "2" ||
		tm[0][2] != formatHashrate(70*two32/60) || tm[1][1] != "1" || tm[1][2] != formatHashrate(20*two32/60) {
		t.Errorf("top miners table %q", tm)
	}
	mc := rows(t, dom, "miner-credits")
	if len(mc) != 1 || mc[0][0] != "101" || mc[0][1] != formatBTC(f.creditedA) {
		t.Errorf("miner credits table %q, want block 101 crediting %s", mc, formatBTC(f.creditedA))
	}
	// The per-address chart is drawn from the ledger's minute buckets.
	if !regexp.MustCompile(`<svg id="miner-chart"[^>]*><polyline`).MatchString(dom) ||
		!strings.HasPrefix(textOf(t, dom, "miner-chart-caption"), "all workers, last hour: 60 points") {
		t.Errorf("miner chart not drawn: %q", textOf(t, dom, "miner-chart-caption"))
	}
	mp := rows(t, dom, "miner-payments")
	if len(mp) != 1 || mp[0][1] != formatBTC(f.paidA) || mp[0][2] != "pending" || mp[0][3] != f.payoutTxID {
		t.Errorf("miner payments table %q", mp)
	}
	if !regexp.MustCompile(`<svg id="chart"[^>]*><polyline`).MatchString(dom) ||
		!strings.HasPrefix(textOf(t, dom, "chart-caption"), "last hour: 60 points") {
		t.Errorf("pool chart not drawn from the series: %q", textOf(t, dom, "chart-caption"))
	}
	// No explorer configured: no links.
	if strings.Contains(dom, `<a href="http`) {
		t.Errorf("links without an explorer configured")
	}

	// With an explorer: blocks, transactions and addresses link to it.
	hx := newDashboardAPI(t, f, "https://explorer.test")
	dom = dumpDOM(t, hx.URL+"/#miner="+minerA)
	for _, want := range []string{
		`href="https://explorer.test/block/` + f.minedBlock.Hash.String() + `"`,
		`href="https://explorer.test/tx/` + f.payoutTxID + `"`,
		`href="https://explorer.test/address/` + minerA + `"`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("no link %s in the page", want)
		}
	}

	// An unknown address shows the not-found message, not an error.
	dom = dumpDOM(t, hs.URL+"/#miner=mgf7FHaRYnTyaaGgcXCabtqL3tg7uQVYhX")
	if got := textOf(t, dom, "miner-error"); got != "No shares from mgf7FHaRYnTyaaGgcXCabtqL3tg7uQVYhX yet." {
		t.Errorf("unknown miner message %q", got)
	}
}

// screenshot renders url in headless chromium at a phone's size with the
// system's colour scheme set (Blink: 0 dark, 1 light) and returns the PNG.
func screenshot(t *testing.T, url string, scheme int) image.Image {
	t.Helper()
	bin := chromium(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	out := filepath.Join(t.TempDir(), "shot.png")
	cmd := exec.CommandContext(ctx, bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir="+t.TempDir(), "--hide-scrollbars",
		"--window-size=390,844", fmt.Sprintf("--blink-settings=preferredColorScheme=%d", scheme),
		"--virtual-time-budget=3000", "--screenshot="+out, url)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestDashboardColorSchemeInBrowser: the page follows the system's dark or
// light setting (prefers-color-scheme; style.css has no external assets)
// and renders at a phone's width. The page's background is checked in the
// rendered pixels.
func TestDashboardColorSchemeInBrowser(t *testing.T) {
	srv, err := api.New(api.Config{}) // the static page; its API calls answer 503
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	for _, tc := range []struct {
		name    string
		scheme  int
		r, g, b uint32
	}{{"dark", 0, 0x0f, 0x14, 0x19}, {"light", 1, 0xfa, 0xfa, 0xfa}} {
		img := screenshot(t, hs.URL+"/", tc.scheme)
		if w := img.Bounds().Dx(); w != 390 {
			t.Fatalf("%s: screenshot %d px wide, want the phone's 390", tc.name, w)
		}
		r, g, b, _ := img.At(3, 3).RGBA()
		if r>>8 != tc.r || g>>8 != tc.g || b>>8 != tc.b {
			t.Errorf("%s: background #%02x%02x%02x, want #%02x%02x%02x", tc.name, r>>8, g>>8, b>>8, tc.r, tc.g, tc.b)
		}
	}
}
