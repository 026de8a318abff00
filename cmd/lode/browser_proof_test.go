//go:build e2e

package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/window"
)

// TestDashboardMinerProofsInBrowser: the miner page lists, for the pool's
// recent blocks whose window holds the address, its work, its share of the
// window and its credit, and links each block's proof for download; the
// linked proof verifies offline.
func TestDashboardMinerProofsInBrowser(t *testing.T) {
	f := recordFixture(t)
	ctx := context.Background()
	// The fixture records its blocks' snapshots only; the Recorder adds the
	// window roots, as the daemon does.
	rec, err := payouts.NewRecorder(payouts.RecorderConfig{Ledger: f.store, MinWindow: 1000, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	pending, err := f.store.Block(ctx, f.pendingHash)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []payouts.FoundBlock{f.minedBlock.FoundBlock, pending.FoundBlock} {
		if _, err := rec.BlockFound(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	hs := newDashboardAPI(t, f, "")
	dom := dumpDOM(t, hs.URL+"/#miner="+minerA)
	mw := rows(t, dom, "miner-windows")
	if len(mw) != 2 || len(mw[0]) != 5 || mw[0][0] != "150" || mw[1][0] != "101" {
		t.Fatalf("miner windows table %q, want blocks 150 and 101", mw)
	}
	for _, r := range mw {
		if r[1] != "70" || !nearPercent(r[2], 100*70.0/90) {
			t.Errorf("block %s: work %q, share %q; want 70 (difficulty) and %.2f %%", r[0], r[1], r[2], 100*70.0/90)
		}
	}
	if mw[1][3] != formatBTC(f.creditedA) || mw[0][3] != "at maturity (pending)" {
		t.Errorf("credits %q / %q, want %s for block 101 and none yet for 150", mw[1][3], mw[0][3], formatBTC(f.creditedA))
	}
	// The download: the link's proof, fetched as the browser would, verifies.
	m := regexp.MustCompile(`<a href="([^"]+)" download="proof-101-` + minerA + `\.json">`).FindStringSubmatch(mw[1][4])
	if m == nil {
		t.Fatalf("no proof download link in %q", mw[1][4])
	}
	res, err := http.Get(hs.URL + "/" + strings.ReplaceAll(m[1], "&amp;", "&"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	p, err := window.ParseProof(body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("proof download: %d %v %s", res.StatusCode, err, body)
	}
	if err := p.Verify(); err != nil || p.Address != minerA || !p.Credited || p.Credit != f.creditedA {
		t.Fatalf("downloaded proof: %v (%+v)", err, p)
	}
	// The other address sees its own part.
	dom = dumpDOM(t, hs.URL+"/#miner="+minerB)
	if got := rows(t, dom, "miner-windows"); len(got) != 2 || got[0][1] != "20" || !nearPercent(got[0][2], 100*20.0/90) {
		t.Errorf("minerB windows %q, want 20 (difficulty), %.2f %%", got, 100*20.0/90)
	}
}
