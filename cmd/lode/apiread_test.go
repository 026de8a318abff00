package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/lode-pool/lode/api"
	"github.com/lode-pool/lode/internal/btcaddr"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// manyWorkers is the worker count of the attack: one request over
// all of them took about a second and 1.2 MB.
const manyWorkers = 3850

// An address with thousands of workers is served a page at a time (issue
// 10 item 9); the address may be written in uppercase bech32 and is read and
// written under its canonical spelling (item 7); the admin threshold
// applies the one threshold rule through the real store (item 10).
func TestAPIMinerPagesAndCanonicalAddress(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := context.Background()
	store, err := redisstore.Connect(ctx, redisstore.ConnectConfig{Addr: srv.Addr, Prefix: "apit"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Client().Close() })
	var prog [20]byte
	prog[0] = 0x5a
	a, err := btcutil.NewAddressWitnessPubKeyHash(prog[:], &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	addr := a.EncodeAddress()
	now := time.Now()
	units, _ := ledger.DiffUnits(1)
	var seq uint64
	for start := 0; start < manyWorkers; start += 500 {
		b := &ledger.Batch{Instance: "apit", Seq: uint64(start + 1)}
		for i := start; i < min(start+500, manyWorkers); i++ {
			seq++
			name := fmt.Sprintf("w%04d", i)
			b.Shares = append(b.Shares, ledger.Entry{Seq: seq, Units: units, Share: shares.Share{
				Worker: addr + "." + name, Address: addr, WorkerName: name, Difficulty: 1, HashDifficulty: 2,
				Time: now.Add(time.Duration(i) * time.Millisecond)}})
		}
		if err := store.ApplyBatch(ctx, b, "0"); err != nil {
			t.Fatal(err)
		}
	}
	params := &chaincfg.RegressionNetParams
	r := newStoreReader(store)
	cfg := api.Config{AdminToken: "tok", RateLimit: -1,
		CanonicalAddress: func(s string) (string, error) { return btcaddr.Canonical(s, params) }}
	cfg.Pool, cfg.Blocks, cfg.Miners, cfg.Payments, cfg.Workers, cfg.Thresholds = r, r, r, r, r, r
	asrv, err := api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(asrv.Handler())
	t.Cleanup(hs.Close)

	fetch := func(path string) (api.Miner, int, time.Duration) {
		t.Helper()
		start := time.Now()
		res, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		took := time.Since(start)
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, res.StatusCode, body)
		}
		var m api.Miner
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		return m, len(body), took
	}
	m, size, took := fetch("/api/v1/miners/" + strings.ToUpper(addr))
	t.Logf("%d workers, default page: %d bytes in %v", manyWorkers, size, took)
	if m.Address != addr || m.WorkersTotal != manyWorkers || len(m.Workers) != api.DefaultMinerWorkers ||
		m.Workers[0].Name != "w0000" || m.Workers[0].Accepted != 1 || m.LastShare.IsZero() {
		t.Fatalf("first page: address %s total %d workers %d first %+v last share %v",
			m.Address, m.WorkersTotal, len(m.Workers), m.Workers[0], m.LastShare)
	}
	if want := now.Add((manyWorkers - 1) * time.Millisecond).UnixMilli(); m.LastShare.UnixMilli() != want {
		t.Errorf("last share %v, want the newest worker's %v", m.LastShare.UnixMilli(), want)
	}
	if size > 64<<10 {
		t.Errorf("default page is %d bytes", size)
	}
	m, size, took = fetch(fmt.Sprintf("/api/v1/miners/%s?limit=%d", addr, api.MaxMinerWorkers))
	t.Logf("largest page (%d workers): %d bytes in %v", api.MaxMinerWorkers, size, took)
	if len(m.Workers) != api.MaxMinerWorkers || m.Workers[api.MaxMinerWorkers-1].Name != fmt.Sprintf("w%04d", api.MaxMinerWorkers-1) {
		t.Fatalf("largest page: %d workers", len(m.Workers))
	}
	m, _, _ = fetch(fmt.Sprintf("/api/v1/miners/%s?limit=%d&offset=%d", addr, api.MaxMinerWorkers, manyWorkers-10))
	if len(m.Workers) != 10 || m.Workers[0].Name != fmt.Sprintf("w%04d", manyWorkers-10) || m.WorkersOffset != manyWorkers-10 {
		t.Fatalf("last page: %d workers from %+v, offset %d", len(m.Workers), m.Workers[0], m.WorkersOffset)
	}
	if m, _, _ := fetch(fmt.Sprintf("/api/v1/miners/%s?offset=%d", addr, manyWorkers+5)); len(m.Workers) != 0 || m.WorkersTotal != manyWorkers {
		t.Fatalf("past the end: %d workers, total %d", len(m.Workers), m.WorkersTotal)
	}

	put := func(body string) int {
		req, _ := http.NewRequest(http.MethodPut, hs.URL+"/api/v1/admin/miners/"+strings.ToUpper(addr)+"/threshold", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if c := put(`{"threshold": 5}`); c != 400 {
		t.Errorf("threshold 5 sat: %d, want 400", c)
	}
	if c := put(`{"threshold": 20000}`); c != 200 {
		t.Fatalf("threshold 20000: %d", c)
	}
	th, err := store.Thresholds(ctx)
	if err != nil || th[addr] != 20000 || len(th) != 1 {
		t.Fatalf("stored thresholds %v %v: want %s=20000 only", th, err, addr)
	}
	if m, _, _ := fetch("/api/v1/miners/" + addr); m.PayoutThreshold != 20000 {
		t.Errorf("miner threshold %d", m.PayoutThreshold)
	}
}

// The /workers ranking reads up to 1000 workers' statistics (about 200
// Redis reads each): it is computed at most once per cache period, not per
// request. With Redis gone, a request within the period is still answered
// from the ranking; after it, the ranking is read again (and fails).
func TestAPIWorkersRankingCached(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := context.Background()
	store, err := redisstore.Connect(ctx, redisstore.ConnectConfig{Addr: srv.Addr, Prefix: "rank"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Client().Close() })
	now := time.Now()
	units, _ := ledger.DiffUnits(1)
	b := &ledger.Batch{Instance: "rank", Seq: 1}
	for i, w := range []string{"a", "b", "c"} {
		b.Shares = append(b.Shares, ledger.Entry{Seq: uint64(i + 1), Units: units, Share: shares.Share{
			Worker: minerA + "." + w, Address: minerA, WorkerName: w, Difficulty: float64(i + 1), HashDifficulty: 9, Time: now}})
	}
	if err := store.ApplyBatch(ctx, b, "0"); err != nil {
		t.Fatal(err)
	}
	r := newStoreReader(store)
	clock := now
	r.now = func() time.Time { return clock }
	ws, err := r.Workers(ctx, 2)
	if err != nil || len(ws) != 2 || ws[0].Name != "c" || ws[1].Name != "b" {
		t.Fatalf("top 2: %+v, %v", ws, err)
	}
	srv.Stop()
	clock = now.Add(r.activeTTL / 2)
	if ws, err := r.Workers(ctx, 3); err != nil || len(ws) != 3 || ws[2].Name != "a" {
		t.Fatalf("within the cache period: %+v, %v", ws, err)
	}
	clock = now.Add(r.activeTTL)
	if _, err := r.Workers(ctx, 3); err == nil {
		t.Fatal("after the cache period the ranking was not read again")
	}
}
