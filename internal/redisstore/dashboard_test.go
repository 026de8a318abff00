package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// The dashboard's reads against a real Redis: the hashrate series of a
// worker, an address and the pool from the ledger's buckets (complete
// buckets only), pages of blocks with their total.
func TestDashboardReads(t *testing.T) {
	s, _ := shareStore(t)
	ctx := context.Background()
	now := time.Now()
	mk := func(seq uint64, name string, diff float64, at time.Time) ledger.Entry {
		u, _ := ledger.DiffUnits(diff)
		return ledger.Entry{Seq: seq, Units: u, Share: shares.Share{Worker: "bc1qd." + name, Address: "bc1qd", WorkerName: name,
			Difficulty: diff, HashDifficulty: diff, Time: at}}
	}
	b := &ledger.Batch{Instance: "d", Seq: 3, Shares: []ledger.Entry{
		mk(1, "a", 6, now.Add(-2*time.Minute)), mk(2, "b", 3, now.Add(-2*time.Minute)), mk(3, "a", 60, now),
	}}
	if err := s.ApplyBatch(ctx, b, "0"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		scope redisstore.HashrateScope
		want  float64 // Σ difficulty two minutes ago
	}{{redisstore.HashrateScope{}, 9}, {redisstore.HashrateScope{Address: "bc1qd"}, 9}, {redisstore.HashrateScope{Address: "bc1qd", Worker: "bc1qd.a"}, 6}} {
		se, err := s.HashrateSeries(ctx, tc.scope, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(se.Minutes) != 60 || len(se.Slots) != 143 {
			t.Fatalf("%+v: %d minutes, %d slots", tc.scope, len(se.Minutes), len(se.Slots))
		}
		last := se.Minutes[59]
		if !last.Start.Equal(time.Unix(now.Unix()/60*60-60, 0)) {
			t.Errorf("last minute starts %v: the current minute must be left out", last.Start)
		}
		var sum float64
		for _, m := range se.Minutes {
			sum += m.Difficulty
		}
		if sum != tc.want || se.Minutes[58].Difficulty != tc.want {
			t.Errorf("%+v: Σ minutes %v (two minutes ago %v), want %v (the share of now left out)", tc.scope, sum, se.Minutes[58].Difficulty, tc.want)
		}
	}

	for i := range 7 {
		h := chainhash.DoubleHashH([]byte{byte(i)})
		fb := payouts.FoundBlock{Hash: h, Height: int64(100 + i), Finder: "bc1qd.a", CoinbaseValue: 1000,
			CoinbaseOutpoint: wire.OutPoint{Hash: h}, NetworkDifficulty: 1, Time: now}
		if _, err := s.SnapshotBlock(ctx, fb, nil); err != nil {
			t.Fatal(err)
		}
	}
	page, total, err := s.BlocksPage(ctx, 5, 5)
	if err != nil || total != 7 || len(page) != 2 || page[0].Height != 101 || page[1].Height != 100 {
		t.Fatalf("page from 5: %d blocks of %d (%v)", len(page), total, err)
	}
	rounds, err := s.BlockRoundTotals(ctx, []string{page[1].Hash.String()})
	if err != nil || rounds[0] == "" {
		t.Fatalf("round total of the first block: %q %v", rounds, err)
	}
	ps, ptotal, err := s.PayoutsPage(ctx, 0, 10)
	if err != nil || ptotal != 0 || len(ps) != 0 {
		t.Fatalf("payouts page: %d of %d (%v)", len(ps), ptotal, err)
	}
}
