package redisstore_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// TestWorkerLastShareFromWorkerList: a worker's last accepted share is read
// from its field in its address's worker list (the worker hash no longer
// holds it, issue 14's fourth round), by WorkerStats and ActiveWorkers
// alike; a worker with rejects only has none; a "last" left in the worker
// hash by an older version counts while it is the later one; the worker's
// difficulty follows a change, also one another frontend's Store writes.
func TestWorkerLastShareFromWorkerList(t *testing.T) {
	s1, rdb := shareStore(t)
	s2 := redisstore.New(rdb, redisstore.Config{Prefix: "t"})
	ctx := context.Background()
	const address = "bc1qlast"
	t0 := time.UnixMilli(time.Now().Add(-time.Minute).UnixMilli())
	var seq uint64
	apply := func(s *redisstore.Store, instance, worker, name string, diff float64, at time.Time, rejects bool) {
		t.Helper()
		seq++
		b := &ledger.Batch{Instance: instance, Kind: ledger.BatchStats, Seq: seq + 1000}
		if rejects {
			b.Rejects = []ledger.Reject{{Worker: worker, Address: address, Reason: "low-difficulty", Count: 1, Time: at}}
		} else {
			b.Shares = []ledger.Entry{{Seq: seq, Units: "1", Share: shares.Share{Worker: worker, Address: address,
				WorkerName: name, Difficulty: diff, HashDifficulty: diff, Time: at}}}
		}
		if err := s.ApplyBatch(ctx, b, "0"); err != nil {
			t.Fatal(err)
		}
	}
	check := func(worker string, want time.Time, wantDiff string) {
		t.Helper()
		ws, err := s1.WorkerStats(ctx, worker, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if !ws.LastShare.Equal(want) {
			t.Fatalf("%s: WorkerStats last share %v, want %v", worker, ws.LastShare, want)
		}
		active, err := s1.ActiveWorkers(ctx, t0.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		var found *redisstore.ActiveWorker
		for i := range active {
			if active[i].Worker == worker {
				found = &active[i]
			}
		}
		switch {
		case want.IsZero() && found != nil:
			t.Fatalf("%s: rejects only, but ActiveWorkers lists it (%v)", worker, found.LastShare)
		case !want.IsZero() && (found == nil || !found.LastShare.Equal(want) || found.Address != address):
			t.Fatalf("%s: ActiveWorkers %+v, want last share %v", worker, found, want)
		}
		key := "t:" + redisstore.StatsShardTag(worker) + ":worker:" + worker
		if d, _ := rdb.HGet(ctx, key, "diff").Result(); d != wantDiff {
			t.Fatalf("%s: diff %q, want %q", worker, d, wantDiff)
		}
	}

	apply(s1, "f1", address+".bad", "bad", 0, t0, true)
	check(address+".bad", time.Time{}, "")

	apply(s1, "f1", address+".rig", "rig", 1024, t0, false)
	check(address+".rig", t0, "1024")
	apply(s1, "f1", address+".rig", "rig", 1024, t0.Add(time.Second), false)
	apply(s1, "f1", address+".rig", "rig", 1024, t0.Add(2*time.Second), true) // a reject does not move it
	check(address+".rig", t0.Add(time.Second), "1024")
	// Vardiff: the new difficulty is written, from another frontend too,
	// and back again from the first.
	apply(s1, "f1", address+".rig", "rig", 2048, t0.Add(3*time.Second), false)
	check(address+".rig", t0.Add(3*time.Second), "2048")
	apply(s2, "f2", address+".rig", "rig", 4096, t0.Add(4*time.Second), false)
	check(address+".rig", t0.Add(4*time.Second), "4096")
	apply(s1, "f1", address+".rig", "rig", 1024, t0.Add(5*time.Second), false)
	check(address+".rig", t0.Add(5*time.Second), "1024")

	// The bare address as its worker ("" in the list).
	apply(s1, "f1", address, "", 512, t0, false)
	check(address, t0, "512")

	// An older version's "last" in the worker hash, later than the list's.
	later := t0.Add(10 * time.Second)
	key := "t:" + redisstore.StatsShardTag(address+".rig") + ":worker:" + address + ".rig"
	if err := rdb.HSet(ctx, key, "last", strconv.FormatInt(later.UnixMilli(), 10)).Err(); err != nil {
		t.Fatal(err)
	}
	check(address+".rig", later, "1024")
}
