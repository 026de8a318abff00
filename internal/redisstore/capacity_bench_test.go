package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// BenchmarkRedisCPUPerShare measures what a share costs inside Redis (the
// scripts' time from INFO commandstats, not the round trip) for full
// 256-share batches, split into the accounting script (what the {acct}
// master pays) and the statistics script (the {stats} master), with every
// share from a different worker (the statistics' worst case) and with 16
// shares per worker per batch. docs/scaling.md builds on these figures.
func BenchmarkRedisCPUPerShare(b *testing.B) {
	for _, perWorker := range []int{1, 16} {
		for _, kind := range []ledger.BatchKind{ledger.BatchAccounting, ledger.BatchStats} {
			name := map[ledger.BatchKind]string{ledger.BatchAccounting: "accounting", ledger.BatchStats: "statistics"}[kind]
			b.Run(fmt.Sprintf("%s/shares-per-worker=%d", name, perWorker), func(b *testing.B) {
				srv := testenv.StartRedis(b, "--appendfsync", "everysec")
				rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
				defer rdb.Close()
				s := New(rdb, Config{Prefix: "cap"})
				ctx := context.Background()
				const batch = 256
				seq := uint64(time.Now().UnixNano())
				mk := func(i int) *ledger.Batch {
					bt := &ledger.Batch{Instance: "cap", Kind: kind}
					for j := range batch {
						seq++
						w := (i*batch + j) / perWorker % 100_000
						addr := "addr" + strconv.Itoa(w%20_000)
						bt.Shares = append(bt.Shares, ledger.Entry{Seq: seq, Units: "102400000000",
							Share: shares.Share{Worker: addr + ".w" + strconv.Itoa(w), Address: addr,
								WorkerName: "w" + strconv.Itoa(w), Difficulty: 1024, HashDifficulty: 2048, Time: time.Now()}})
					}
					seq++
					bt.Seq = seq
					return bt
				}
				if err := s.ApplyBatch(ctx, mk(0), "204800000000000"); err != nil {
					b.Fatal(err)
				}
				rdb.ConfigResetStat(ctx)
				b.ResetTimer()
				for i := range b.N {
					if err := s.ApplyBatch(ctx, mk(i+1), "204800000000000"); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				info, err := rdb.Info(ctx, "commandstats").Result()
				if err != nil {
					b.Fatal(err)
				}
				usec := 0.0
				for _, l := range strings.Split(info, "\n") {
					if strings.HasPrefix(l, "cmdstat_evalsha:") {
						for _, f := range strings.Split(strings.TrimSpace(strings.TrimPrefix(l, "cmdstat_evalsha:")), ",") {
							if v, ok := strings.CutPrefix(f, "usec="); ok {
								usec, _ = strconv.ParseFloat(v, 64)
							}
						}
					}
				}
				b.ReportMetric(usec/float64(b.N*batch), "redis-µs/share")
			})
		}
	}
}
