package redisstore

import (
	"context"
	"fmt"
	"math/big"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/payouts"
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
