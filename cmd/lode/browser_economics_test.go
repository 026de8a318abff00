//go:build e2e

package main

import (
	"context"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/redis/go-redis/v9"

	"github.com/lode-pool/lode/api"
	"github.com/lode-pool/lode/economics"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

type econTemplate economics.TemplateInfo

func (t econTemplate) CurrentTemplate() (economics.TemplateInfo, bool) {
	return economics.TemplateInfo(t), true
}

// The dashboard's economics (api/dashboard/economics.js) in Chromium: the
// hashprice tile, the retarget card, the prices, the break-even ladder
// with the power price marked, the worker table with intervals and
// advice, and the miner page's table for its address only; figures from
// shares recorded in a real Redis, served by the API as the daemon mounts
// it. Without economics the section is not shown.
func TestBrowserEconomics(t *testing.T) {
	srv := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	store := redisstore.New(rdb, redisstore.Config{Prefix: "be"})
	ctx := context.Background()
	const a, b = "bc1qeconomicsminera", "bc1qeconomicsminerb"
	now := time.Now()
	var es []ledger.Entry
	// An S21-class worker of a (≈200 TH/s: d=2^20 every ~22 s) and a Bitaxe of b, for 30 minutes.
	for i := 1; i <= 30*60; i++ {
		at := now.Add(-time.Duration(i) * time.Second)
		if i%22 == 0 {
			es = append(es, ledger.Entry{Seq: uint64(i), Units: "1", Share: shares.Share{Worker: a + ".s21", Address: a,
				WorkerName: "s21", Difficulty: 1 << 20, HashDifficulty: 1 << 21, Time: at}})
		}
		if i%30 == 0 {
			es = append(es, ledger.Entry{Seq: uint64(100000 + i), Units: "1", Share: shares.Share{Worker: b + ".gamma", Address: b,
				WorkerName: "gamma", Difficulty: 8192, HashDifficulty: 9000, Time: at}})
		}
	}
	if err := store.ApplyBatch(ctx, &ledger.Batch{Instance: "be", Seq: 1 << 20, Shares: es}, "0"); err != nil {
		t.Fatal(err)
	}
	eng, err := economics.New(economics.Config{
		Power: economics.PowerConfig{Currency: "sat", Price: 60},
		Devices: economics.DevicesConfig{Overrides: []economics.Override{
			{Worker: "*.s21", Model: "Antminer S21"}, {Worker: "*.gamma", Model: "Bitaxe Gamma"}}},
	}, economics.Deps{
		Params: &chaincfg.MainNetParams,
		// Mainnet at height 900,000, difficulty ≈ 1.0165e14, 3.145 BTC in the template.
		Templates: econTemplate{Height: 900000, Bits: 0x1702c4e4, CoinbaseValue: 314_500_000},
		Stats:     store.EconomicsStats(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := api.New(api.Config{Economics: economics.NewHandler(eng), RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()

	dom := dumpDOM(t, hs.URL+"/")
	if !strings.Contains(dom, `<section id="economics">`) {
		t.Fatalf("economics section not shown:\n%s", dom)
	}
	if got := textOf(t, dom, "econ-hashprice-template"); !strings.HasPrefix(got, "62.24 sat/TH/day · 0.00062242 BTC/PH/day") {
		t.Errorf("hashprice tile %q", got)
	}
	if got := textOf(t, dom, "econ-retarget"); !strings.Contains(got, "at height 901152: no forecast") {
		t.Errorf("retarget card %q", got)
	}
	if got := textOf(t, dom, "econ-power"); got != "60 sat/kWh (flat)" {
		t.Errorf("power %q", got)
	}
	// The ladder: one bar per model, the price line, the caption.
	ladder := regexp.MustCompile(`(?s)<svg id="econ-ladder".*?</svg>`).FindString(dom)
	if strings.Count(ladder, "<rect") != 2 || !strings.Contains(ladder, `id="econ-ladder-price"`) {
		t.Errorf("ladder %s", ladder)
	}
	if got := textOf(t, dom, "econ-ladder-caption"); !strings.Contains(got, "power now 60.0 sat/kWh") {
		t.Errorf("ladder caption %q", got)
	}
	wrows := rows(t, dom, "econ-workers")
	if len(wrows) != 2 {
		t.Fatalf("worker rows %v", wrows)
	}
	for _, r := range wrows {
		if len(r) != 8 || !strings.Contains(r[2], "[") || !strings.Contains(r[3], "sat [") || !strings.Contains(r[5], "sat [") {
			t.Errorf("worker row without intervals: %v", r)
		}
	}
	if wrows[0][1] != "Antminer S21 (operator)" && wrows[1][1] != "Antminer S21 (operator)" {
		t.Errorf("models %v", wrows)
	}

	dom = dumpDOM(t, hs.URL+"/#miner="+b)
	mrows := rows(t, dom, "econ-miner-workers")
	if len(mrows) != 1 || mrows[0][0] != b+".gamma" || !strings.HasPrefix(mrows[0][1], "Bitaxe Gamma") {
		t.Errorf("miner page rows %v", mrows)
	}
	if got := textOf(t, dom, "econ-miner-total"); !strings.HasPrefix(got, "1 worker(s), ") {
		t.Errorf("miner total %q", got)
	}

	off, err := api.New(api.Config{RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	hsOff := httptest.NewServer(off.Handler())
	defer hsOff.Close()
	if dom := dumpDOM(t, hsOff.URL+"/"); !strings.Contains(dom, `<section id="economics" hidden="">`) {
		t.Errorf("economics shown while off")
	}
}
