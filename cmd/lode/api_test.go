package main

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/lode-pool/lode/api"
)

// newFixtureAPI serves the API over the fixture's Redis the way the daemon
// wires it.
func newFixtureAPI(t *testing.T, f *fixture) *httptest.Server {
	t.Helper()
	cfg := api.Config{
		AdminToken:  "s3cret",
		FeePercent:  1,
		PPLNSWindow: 2,
		Network:     func() (api.Network, bool) { return api.Network{Height: 202, Difficulty: 4.656542373906925e-10}, true },
		ValidAddress: func(s string) error {
			_, err := btcutil.DecodeAddress(s, &chaincfg.RegressionNetParams)
			return err
		},
	}
	r := newStoreReader(f.store)
	// Read in the minute the shares were recorded in: each hashrate is then
	// over the one minute they cover (issue 15), whatever the wall clock.
	r.now = func() time.Time { return f.now }
	cfg.Pool, cfg.Blocks, cfg.Miners, cfg.Payments, cfg.Workers, cfg.Thresholds = r, r, r, r, r, r
	srv, err := api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Sample(t.Context())
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs
}

func getJSON(t *testing.T, url string, wantStatus int, v any) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != wantStatus {
		t.Fatalf("GET %s: status %d, want %d: %s", url, res.StatusCode, wantStatus, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: content type %q", url, ct)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }

func TestAPIWithRecordedData(t *testing.T) {
	f := recordFixture(t)
	hs := newFixtureAPI(t, f)
	const two32 = 4294967296.0

	t.Run("pool", func(t *testing.T) {
		var p api.PoolResponse
		getJSON(t, hs.URL+"/api/v1/pool", 200, &p)
		if want := f.poolDifficulty * two32 / 60; !near(p.Hashrate.TenMinutes, want) {
			t.Errorf("10m hashrate %v, want %v", p.Hashrate.TenMinutes, want)
		}
		if want := f.poolDifficulty * two32 / 60; !near(p.Hashrate.OneDay, want) {
			t.Errorf("24h hashrate %v, want %v", p.Hashrate.OneDay, want)
		}
		if p.Miners != 2 || p.Workers != 3 {
			t.Errorf("miners %d workers %d, want 2 and 3", p.Miners, p.Workers)
		}
		if p.SharesAccepted != 45 || p.SharesRejected != 1 || p.SharesStale != 1 {
			t.Errorf("shares accepted %d rejected %d stale %d", p.SharesAccepted, p.SharesRejected, p.SharesStale)
		}
		// The snapshot at block 101 closed the round; block 150 (pending, no
		// shares since) closed it again, so the round is empty.
		if p.RoundDifficulty != 0 || p.RoundProgress != 0 {
			t.Errorf("round difficulty %v progress %v, want 0", p.RoundDifficulty, p.RoundProgress)
		}
		if p.LastBlock == nil || p.LastBlock.Height != 150 || p.LastBlock.Status != api.BlockPending {
			t.Errorf("last block %+v", p.LastBlock)
		}
		if p.Network.Height != 202 || p.FeePercent != 1 || p.PPLNSWindow != 2 {
			t.Errorf("network %+v fee %v window %v", p.Network, p.FeePercent, p.PPLNSWindow)
		}
	})

	t.Run("blocks", func(t *testing.T) {
		var b struct{ Blocks []api.Block }
		getJSON(t, hs.URL+"/api/v1/blocks", 200, &b)
		if len(b.Blocks) != 2 {
			t.Fatalf("blocks %+v", b.Blocks)
		}
		got, old := b.Blocks[0], b.Blocks[1]
		if got.Height != 150 || got.Status != "pending" || got.Reward != 50_0001_2345 || got.Finder != minerB || got.Confirmations != 0 {
			t.Errorf("newest block %+v", got)
		}
		if old.Height != 101 || old.Status != "credited" || old.Reward != f.minedBlock.Reward || old.Confirmations != 100 ||
			old.Hash != f.minedBlock.Hash.String() || old.Finder != minerA+".rig1" {
			t.Errorf("matured block %+v (record %+v)", old, f.minedBlock)
		}
		getJSON(t, hs.URL+"/api/v1/blocks?limit=1", 200, &b)
		if len(b.Blocks) != 1 {
			t.Errorf("limit=1 gave %d blocks", len(b.Blocks))
		}
	})

	t.Run("miner", func(t *testing.T) {
		var m api.Miner
		getJSON(t, hs.URL+"/api/v1/miners/"+minerA, 200, &m)
		if m.Balance != f.creditA || m.Paid != f.paidA {
			t.Errorf("balance %d paid %d, want %d and %d", m.Balance, m.Paid, f.creditA, f.paidA)
		}
		if len(m.Workers) != 2 || m.Workers[0].Name != "rig1" || m.Workers[0].Accepted != 30 || m.Workers[0].Rejected != 1 ||
			m.Workers[0].Stale != 1 || m.Workers[1].Name != "rig2" || m.Workers[1].Accepted != 10 {
			t.Errorf("workers %+v", m.Workers)
		}
		if want := 2 * 30 * two32 / 60; !near(m.Workers[0].Hashrate.TenMinutes, want) {
			t.Errorf("rig1 hashrate %v, want %v", m.Workers[0].Hashrate.TenMinutes, want)
		}
		if want := (60 + 10) * two32 / 60; !near(m.Hashrate.TenMinutes, want) {
			t.Errorf("miner hashrate %v, want %v", m.Hashrate.TenMinutes, want)
		}
		if len(m.Payments) != 1 || m.Payments[0].TxID != f.payoutTxID || m.Payments[0].Amount != f.paidA || m.Payments[0].Status != "pending" {
			t.Errorf("payments %+v", m.Payments)
		}
		if m.LastShare.IsZero() {
			t.Error("no last share time")
		}
		getJSON(t, hs.URL+"/api/v1/miners/"+minerB, 200, &m)
		if m.Balance != f.creditB || m.Paid != 0 || len(m.Workers) != 1 || m.Workers[0].Name != "" || m.Workers[0].Accepted != 5 {
			t.Errorf("miner B %+v", m)
		}
	})

	t.Run("workers and payments", func(t *testing.T) {
		var w struct{ Workers []api.Worker }
		getJSON(t, hs.URL+"/api/v1/workers", 200, &w)
		if len(w.Workers) != 3 || w.Workers[0].Address != minerA || w.Workers[0].Name != "rig1" {
			t.Errorf("workers %+v", w.Workers)
		}
		getJSON(t, hs.URL+"/api/v1/workers?limit=2", 200, &w)
		if len(w.Workers) != 2 || w.Workers[1].Address != minerB {
			t.Errorf("top 2 workers by hashrate %+v", w.Workers)
		}
		var p struct{ Payments []api.Payment }
		getJSON(t, hs.URL+"/api/v1/payments", 200, &p)
		if len(p.Payments) != 1 || p.Payments[0].Address != minerA || p.Payments[0].Amount != f.paidA {
			t.Errorf("payments %+v", p.Payments)
		}
	})

	t.Run("errors", func(t *testing.T) {
		var e struct{ Error string }
		// A valid regtest address that never mined.
		getJSON(t, hs.URL+"/api/v1/miners/mgf7FHaRYnTyaaGgcXCabtqL3tg7uQVYhX", 404, &e)
		if !strings.Contains(e.Error, "unknown address") {
			t.Errorf("404 body %q", e.Error)
		}
		getJSON(t, hs.URL+"/api/v1/miners/not-an-address", 400, &e)
		getJSON(t, hs.URL+"/api/v1/miners/"+strings.Repeat("1", 101), 400, &e)
		getJSON(t, hs.URL+"/api/v1/blocks?limit=0", 400, &e)
		getJSON(t, hs.URL+"/api/v1/blocks?limit=x", 400, &e)
		getJSON(t, hs.URL+"/api/v1/nope", 404, &e)
	})

	t.Run("admin threshold", func(t *testing.T) {
		put := func(token, body string) int {
			req, _ := http.NewRequest(http.MethodPut, hs.URL+"/api/v1/admin/miners/"+minerB+"/threshold", strings.NewReader(body))
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			return res.StatusCode
		}
		if c := put("", `{"threshold": 5000000}`); c != 401 {
			t.Errorf("no token: %d", c)
		}
		if c := put("wrong", `{"threshold": 5000000}`); c != 401 {
			t.Errorf("wrong token: %d", c)
		}
		if c := put("s3cret", `{"threshold": -1}`); c != 400 {
			t.Errorf("negative: %d", c)
		}
		if c := put("s3cret", `{"threshold": 5000000}`); c != 200 {
			t.Fatalf("set: %d", c)
		}
		th, err := f.store.Thresholds(t.Context())
		if err != nil || th[minerB] != 5000000 {
			t.Errorf("stored thresholds %v %v", th, err)
		}
		var m api.Miner
		getJSON(t, hs.URL+"/api/v1/miners/"+minerB, 200, &m)
		if m.PayoutThreshold != 5000000 {
			t.Errorf("miner threshold %d", m.PayoutThreshold)
		}
	})

	t.Run("ready with redis down", func(t *testing.T) {
		// Covered in TestDaemonProbes; here the readers must report errors
		// as 500 JSON, not hang or panic, once Redis is gone.
		f.redis.Stop()
		var e struct{ Error string }
		getJSON(t, hs.URL+"/api/v1/pool", 500, &e)
		if e.Error != "pool stats failed" {
			t.Errorf("error body %q", e.Error)
		}
	})
}
