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

// BenchmarkRedisCPUPerShare measures what a share costs inside Redis, split
// into the accounting script (what the {acct} master pays; full group
// commits of 256 shares) and the statistics script (the {stats} masters;
// statistics batches of 2,048 shares, about a second of a pool of 10,000
// workers at one share per worker per 5 s), with every share of a batch from
// another worker and with 16 shares per worker per batch. The workers (10,000 over 2,000 addresses) have written before the
// measured batches (a warm-up writes every one of them once), as at a pool
// whose miners keep mining: their keys and this minute's bucket fields exist.
// Two figures: the scripts' time (INFO commandstats, EVALSHA usec: wall
// clock, inflated by preemption on a loaded machine) and the redis-server
// process's CPU (INFO cpu, user + system, the round trips included).
// docs/scaling.md builds on them.
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
				const workers, addresses = 10_000, 2_000
				batch := 256
				if kind == ledger.BatchStats {
					batch = 2048
				}
				seq := uint64(time.Now().UnixNano())
				mk := func(i int) *ledger.Batch {
					bt := &ledger.Batch{Instance: "cap", Kind: kind}
					for j := range batch {
						seq++
						w := (i*batch + j) / perWorker % workers
						addr := "addr" + strconv.Itoa(w%addresses)
						bt.Shares = append(bt.Shares, ledger.Entry{Seq: seq, Units: "102400000000",
							Share: shares.Share{Worker: addr + ".w" + strconv.Itoa(w), Address: addr,
								WorkerName: "w" + strconv.Itoa(w), Difficulty: 1024, HashDifficulty: 2048, Time: time.Now()}})
					}
					seq++
					bt.Seq = seq
					return bt
				}
				warm := (workers*perWorker + batch - 1) / batch
				for i := range warm {
					if err := s.ApplyBatch(ctx, mk(i), "204800000000000"); err != nil {
						b.Fatal(err)
					}
				}
				rdb.ConfigResetStat(ctx)
				cpu0 := redisCPU(b, rdb)
				b.ResetTimer()
				for i := range b.N {
					if err := s.ApplyBatch(ctx, mk(warm+i), "204800000000000"); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				cpu := redisCPU(b, rdb) - cpu0
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
				b.ReportMetric(cpu*1e6/float64(b.N*batch), "redis-cpu-µs/share")
			})
		}
	}
}

// redisCPU is the redis-server process's CPU time so far in seconds (INFO
// cpu: used_cpu_user + used_cpu_sys).
func redisCPU(b *testing.B, rdb *redis.Client) float64 {
	b.Helper()
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, l := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return total
}
