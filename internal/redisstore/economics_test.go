package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/lode-pool/lode/economics"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// The statistics the ledger writes with every batch give package economics
// Σd, Σd², n and max d per worker per minute and per 10-minute slot, the
// worker's current difficulty, and a connected time that starts with the
// worker's first share in the window (not the window's start).
func TestEconomicsStats(t *testing.T) {
	s, _ := shareStore(t)
	ctx := context.Background()
	// q is 2 minutes into a 10-minute slot, so which buckets are complete
	// at q does not depend on when the test runs.
	slotStart := (time.Now().Unix()/600 + 1) * 600
	q := time.Unix(slotStart+120, 0)
	share := func(worker, address string, d float64, at time.Time) ledger.Entry {
		return ledger.Entry{Units: "1", Share: shares.Share{Worker: worker, Address: address, Difficulty: d, HashDifficulty: d, Time: at}}
	}
	batches := [][]ledger.Entry{
		{share("bc1qa.rig", "bc1qa", 16, q.Add(-5*time.Hour))},
		{share("bc1qa.rig", "bc1qa", 8, q.Add(-30*time.Minute))},
		{share("bc1qa.rig", "bc1qa", 4, q.Add(-90*time.Second)), share("bc1qa.rig", "bc1qa", 4, q.Add(-85*time.Second)),
			share("bc1qb", "bc1qb", 2, q.Add(-80*time.Second))},
	}
	for i, b := range batches {
		for j := range b {
			b[j].Seq = uint64(10*i + j + 1)
		}
		if err := s.ApplyBatch(ctx, &ledger.Batch{Instance: "e", Seq: uint64(10*i + 9), Shares: b}, "0"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.EconomicsStats().WorkerStats(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]economics.WorkerStats{}
	for _, w := range got {
		byName[w.Worker] = w
	}
	if len(got) != 2 {
		t.Fatalf("workers %+v, want bc1qa.rig and bc1qb", got)
	}
	a := byName["bc1qa.rig"]
	if a.Address != "bc1qa" || a.Difficulty != 4 {
		t.Errorf("bc1qa.rig: address %q difficulty %v, want bc1qa, 4 (its latest share)", a.Address, a.Difficulty)
	}
	want := [3]economics.WindowSums{
		{SumD: 8, SumD2: 32, MaxD: 4, N: 2, Connected: 2 * time.Minute},
		// from the minute of the share 30 min before q to the last complete minute
		{SumD: 16, SumD2: 96, MaxD: 8, N: 3, Connected: 30 * time.Minute},
		// slots: the current one (with the newest shares) is not complete;
		// from the slot 5 h back to the last complete one: 30 slots
		{SumD: 24, SumD2: 320, MaxD: 16, N: 2, Connected: 30 * 10 * time.Minute},
	}
	for i := range want {
		if a.Windows[i] != want[i] {
			t.Errorf("bc1qa.rig window %d: %+v, want %+v", i, a.Windows[i], want[i])
		}
	}
	b := byName["bc1qb"]
	if b.Address != "bc1qb" || b.Windows[0] != (economics.WindowSums{SumD: 2, SumD2: 4, MaxD: 2, N: 1, Connected: 2 * time.Minute}) {
		t.Errorf("bc1qb: %+v", b)
	}

	// The same reader again (the daemon's case): a share added to a minute
	// that is not settled yet is seen; the settled buckets come from its
	// cache; a day later every bucket has left the window.
	stats := s.EconomicsStats()
	if _, err := stats.WorkerStats(ctx, q); err != nil {
		t.Fatal(err)
	}
	late := share("bc1qa.rig", "bc1qa", 4, q.Add(-70*time.Second))
	late.Seq = 100
	if err := s.ApplyBatch(ctx, &ledger.Batch{Instance: "e", Seq: 109, Shares: []ledger.Entry{late}}, "0"); err != nil {
		t.Fatal(err)
	}
	again, err := stats.WorkerStats(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range again {
		if w.Worker == "bc1qa.rig" {
			if w.Windows[0] != (economics.WindowSums{SumD: 12, SumD2: 48, MaxD: 4, N: 3, Connected: 2 * time.Minute}) ||
				w.Windows[1].N != 4 || w.Windows[2] != want[2] {
				t.Errorf("cached reader after a late share: %+v", w.Windows)
			}
		}
	}
	if later, err := stats.WorkerStats(ctx, q.Add(25*time.Hour)); err != nil || len(later) != 0 {
		t.Errorf("a day later: %+v, %v", later, err)
	}
}
