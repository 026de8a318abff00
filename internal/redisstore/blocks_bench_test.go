package redisstore

import (
	"context"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/window"
)

// BenchmarkSnapshotBlock measures the block-found script over a window of
// 100k entries from 1000 addresses (the script runs inside Redis and blocks
// it for this long).
func BenchmarkSnapshotBlock(b *testing.B) {
	b.ReportAllocs()
	srv := testenv.StartRedis(b, "--appendonly", "no")
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	s := New(rdb, Config{Prefix: "bench"})
	ctx := context.Background()
	const entries = 100_000
	for i := 0; i < entries; i += 1000 {
		vals := make([]any, 0, 1000)
		for j := i; j < i+1000; j++ {
			vals = append(vals, fmt.Sprintf("i:%d|addr%04d|%d", j, j%1000, 6553600000000+j))
		}
		if err := rdb.LPush(ctx, s.windowKey(), vals...).Err(); err != nil {
			b.Fatal(err)
		}
	}
	limit := big.NewInt(6553600000000 * entries / 2)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := s.SnapshotBlock(ctx, payouts.FoundBlock{Hash: testHash(i), Height: int64(i)}, limit); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(entries/2, "entries/op")
}

// BenchmarkSnapshotWindowArchive measures a block's snapshot with its
// window archive at a pool of 10,000 workers (one address each, 42-byte
// bech32-sized addresses, interleaved so runs do not merge: the worst case
// and the realistic one at this scale), over a window of `entries` ledger
// entries: the snapshot script (which blocks Redis while it runs), the
// archive's memory in Redis, reading it back and building the Merkle-sum
// tree in Go. The per-leaf figures extrapolate to a mainnet window
// (bench/README.md, "Verifiable PPLNS").
func BenchmarkSnapshotWindowArchive(b *testing.B) {
	srv := testenv.StartRedis(b, "--appendonly", "no")
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	s := New(rdb, Config{Prefix: "bench"})
	ctx := context.Background()
	const entries, workers = 200_000, 10_000
	const units = 14_000_000_000_000 // a share of difficulty 1.4e5 (100 TH/s at 10 shares/min)
	addr := func(i int) string { return fmt.Sprintf("bc1q%038d", i%workers) }
	counter := uint64(1_764_995_000_000_000_000)
	for i := 0; i < entries; i += 1000 {
		vals := make([]any, 0, 1000)
		for j := i; j < i+1000; j++ {
			counter += 2 // a share, then its batch
			vals = append(vals, fmt.Sprintf("0a1b2c3d4e5f:%d|%s|%d", counter-1, addr(j*7919), units))
		}
		if err := rdb.LPush(ctx, s.windowKey(), vals...).Err(); err != nil {
			b.Fatal(err)
		}
	}
	if err := rdb.Set(ctx, s.acctAppliedKey("0a1b2c3d4e5f"), seqString(counter), 0).Err(); err != nil {
		b.Fatal(err)
	}
	finding := fmt.Sprintf("0a1b2c3d4e5f:%d", counter-1)
	limit := big.NewInt(units * entries) // the whole list is the window
	var snapshot, read, build time.Duration
	var archiveBytes int64
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := testHash(i)
		start := time.Now()
		if _, err := s.SnapshotBlock(ctx, payouts.FoundBlock{Hash: h, Height: int64(i), FindingSeq: finding}, limit); err != nil {
			b.Fatal(err)
		}
		snapshot += time.Since(start)
		start = time.Now()
		var leaves []window.Leaf
		if err := s.WindowLeaves(ctx, h, func(l window.Leaf) error { leaves = append(leaves, l); return nil }); err != nil {
			b.Fatal(err)
		}
		read += time.Since(start)
		start = time.Now()
		tree, err := window.Build(leaves)
		if err != nil || tree.Len() != entries {
			b.Fatalf("tree of %d leaves: %v", tree.Len(), err)
		}
		build += time.Since(start)
		b.StopTimer()
		n, err := rdb.MemoryUsage(ctx, s.blockWindowKey(h.String()), 0).Result()
		if err != nil {
			b.Fatal(err)
		}
		archiveBytes = n
		rdb.Unlink(ctx, s.blockWindowKey(h.String()))
		b.StartTimer()
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) / entries }
	b.ReportMetric(entries, "leaves/op")
	b.ReportMetric(per(snapshot), "snapshot-ns/leaf")
	b.ReportMetric(per(read), "read-ns/leaf")
	b.ReportMetric(per(build), "tree-ns/leaf")
	b.ReportMetric(float64(archiveBytes)/entries, "archive-B/leaf")
}
