package redisstore_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// BenchmarkEconomicsStats is one economics refresh's read of the share
// statistics (EconomicsStats.WorkerStats) for 2,000 workers that sent a
// share every minute of the last hour and in every 10-minute slot of the
// day: 62 minute hashes and 146 slot hashes read in one pipeline, then the
// workers' hashes; cold (a new reader) and warm (the daemon's case: the
// settled buckets cached, the newest read again). It reports the Redis
// memory of those statistics per worker too (worker hash, minute and slot
// buckets with Σd and the economics field, recent shares).
func BenchmarkEconomicsStats(b *testing.B) {
	const workers = 2000
	s, rdb := benchStore(b, "eb")
	ctx := context.Background()
	now := time.Now()
	seq := uint64(0)
	batch := &ledger.Batch{Instance: "eb"}
	flush := func() {
		seq++
		batch.Seq = seq
		if err := s.ApplyBatch(ctx, batch, "0"); err != nil {
			b.Fatal(err)
		}
		batch.Shares = batch.Shares[:0]
	}
	add := func(w int, at time.Time) {
		seq++
		addr := "bc1qbenchaddressbenchaddressbench" + strconv.Itoa(w%500)
		batch.Shares = append(batch.Shares, ledger.Entry{Seq: seq, Units: "1", Share: shares.Share{
			Worker: addr + ".w" + strconv.Itoa(w), Address: addr, WorkerName: "w" + strconv.Itoa(w),
			Difficulty: 65536, HashDifficulty: 70000, Time: at}})
		if len(batch.Shares) == 256 {
			flush()
		}
	}
	before := usedMemory(b, rdb)
	for m := 1; m <= 60; m++ {
		for w := range workers {
			add(w, now.Add(-time.Duration(m)*time.Minute))
		}
	}
	for slot := 7; slot <= 144; slot++ { // the slots older than the hour
		for w := range workers {
			add(w, now.Add(-time.Duration(slot)*10*time.Minute))
		}
	}
	if len(batch.Shares) > 0 {
		flush()
	}
	grown := usedMemory(b, rdb) - before
	b.Run("cold", func(b *testing.B) { // a new reader: every hash of the day
		b.ReportAllocs()
		for range b.N {
			ws, err := s.EconomicsStats().WorkerStats(ctx, now)
			if err != nil || len(ws) != workers {
				b.Fatalf("%d workers, %v", len(ws), err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/workers, "µs/worker")
		b.ReportMetric(grown/workers, "redis-bytes/worker")
	})
	b.Run("warm", func(b *testing.B) { // the daemon's refreshes: settled buckets cached
		stats := s.EconomicsStats()
		if _, err := stats.WorkerStats(ctx, now); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			ws, err := stats.WorkerStats(ctx, now)
			if err != nil || len(ws) != workers {
				b.Fatalf("%d workers, %v", len(ws), err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/workers, "µs/worker")
	})
}

func usedMemory(b *testing.B, rdb *redis.Client) float64 {
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	b.Fatal("no used_memory")
	return 0
}

// BenchmarkRecordPresence is one stratum frontend's connected-time report
// (one a minute by default) for 10,000 connected workers: a whole minute
// each (one minute and one slot field per worker), the user agent
// with every report ("agents") or, as the frontend sends it once the
// agent is stored, without ("steady"). It reports the wall time per worker
// and Redis's own time per worker (INFO commandstats, evalsha + hset +
// expire).
func BenchmarkRecordPresence(b *testing.B) {
	const workers = 10000
	s, rdb := benchStore(b, "pb")
	ctx := context.Background()
	for _, withAgent := range []bool{true, false} {
		name := "steady"
		if withAgent {
			name = "agents"
		}
		b.Run(name, func(b *testing.B) {
			minute := time.Now().Unix() / 60 * 60
			ps := make([]redisstore.WorkerPresence, workers)
			for i := range ps {
				addr := "bc1qbenchaddressbenchaddressbench" + strconv.Itoa(i%500)
				ps[i] = redisstore.WorkerPresence{Worker: addr + ".w" + strconv.Itoa(i), Address: addr}
				if withAgent {
					ps[i].UserAgent = "bitaxe/BM1370/v2.4.0"
				}
			}
			rdb.ConfigResetStat(ctx)
			b.ResetTimer()
			for n := range b.N {
				from := time.Unix(minute-int64(n)*60, 0)
				for i := range ps {
					ps[i].Spans = [][2]time.Time{{from, from.Add(time.Minute)}}
				}
				if err := s.RecordPresence(ctx, ps); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/workers, "µs/worker")
			info, err := rdb.Info(ctx, "commandstats").Result()
			if err != nil {
				b.Fatal(err)
			}
			var usec float64
			for _, cmd := range []string{"evalsha", "hset", "expire"} {
				usec += commandUsec(info, cmd)
			}
			b.ReportMetric(usec/float64(b.N)/workers, "redis-µs/worker")
		})
	}
}

// commandUsec returns usec (Redis's time) of one command in INFO
// commandstats.
func commandUsec(info, cmd string) float64 {
	_, line, _ := strings.Cut(info, "cmdstat_"+cmd+":")
	line, _, _ = strings.Cut(line, "\n")
	_, v, _ := strings.Cut(line, "usec=")
	v, _, _ = strings.Cut(v, ",")
	u, _ := strconv.ParseFloat(v, 64)
	return u
}

// benchStore is a store on a Redis of its own without persistence.
func benchStore(b *testing.B, prefix string) (*redisstore.Store, *redis.Client) {
	b.Helper()
	srv := testenv.StartRedis(b, "--appendonly", "no")
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	b.Cleanup(func() { rdb.Close() })
	return redisstore.New(rdb, redisstore.Config{Prefix: prefix}), rdb
}
