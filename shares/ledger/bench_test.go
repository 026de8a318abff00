package ledger_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// BenchmarkRecord measures group-commit throughput against a real
// redis-server: every acknowledged batch is in the AOF, fsynced per write
// (fsync=always) or once a second (fsync=everysec). Submitters call Record
// concurrently for 1000 workers over 200 addresses. It reports shares/s, the
// Record latency (p50, p99) and shares per pipeline.
func BenchmarkRecord(b *testing.B) {
	for _, fsync := range []string{"always", "everysec"} {
		for _, submitters := range []int{64, 512} {
			b.Run(fmt.Sprintf("fsync=%s/submitters=%d", fsync, submitters), func(b *testing.B) {
				benchmarkRecord(b, fsync, submitters)
			})
		}
	}
}

func benchmarkRecord(b *testing.B, fsync string, submitters int) {
	srv := testenv.StartRedis(b, "--appendfsync", fsync)
	store := &countingStore{Store: connect(b, srv.Addr)}
	rec, err := ledger.New(ledger.Config{Logger: zap.NewNop()}, store)
	if err != nil {
		b.Fatal(err)
	}
	rec.SetNetworkDifficulty(1e6)
	stop := run(b, rec)
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	b.ReportAllocs()
	b.SetParallelism(max(1, submitters/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			i := next.Add(1)
			w := int(i % 1000)
			s := shares.Share{Worker: "addr" + strconv.Itoa(w%200) + ".w" + strconv.Itoa(w), Address: "addr" + strconv.Itoa(w%200),
				WorkerName: "w" + strconv.Itoa(w), Difficulty: 1024, HashDifficulty: 2048, Time: time.Now()}
			t0 := time.Now()
			if err := rec.Record(context.Background(), s); err != nil {
				b.Error(err)
				return
			}
			local = append(local, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	stop()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "shares/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		b.ReportMetric(float64(len(lat))/float64(max(store.applies.Load(), 1)), "shares/pipeline")
	}
}

// BenchmarkRedisMemory writes b.N shares straight through the store in
// batches of 256 (no fsync: it measures memory, not durability) and reports
// Redis used_memory at the end. Shares are difficulty 1024 from 1000 workers
// over 200 addresses, 10 ms apart in share time (10 million shares span
// 28 hours, so hashrate buckets are pruned), network difficulty 10^8, so the
// window holds N = 2×10^8 difficulty. Run it with -benchtime 10000000x.
func BenchmarkRedisMemory(b *testing.B) {
	srv := testenv.StartRedis(b, "--appendonly", "no")
	store := connect(b, srv.Addr)
	limit, _ := ledger.DiffUnits(2e8)
	units, _ := ledger.DiffUnits(1024)
	ctx := context.Background()
	t0 := time.Now().Add(-30 * time.Hour)
	batch := &ledger.Batch{Instance: "mem"}
	var seq uint64
	b.ReportAllocs()
	b.ResetTimer()
	flush := func() {
		seq++
		batch.Seq = seq
		if err := store.ApplyBatch(ctx, batch, limit); err != nil {
			b.Fatal(err)
		}
		batch.Shares = batch.Shares[:0]
	}
	for i := 0; i < b.N; i++ {
		w := i % 1000
		seq++
		batch.Shares = append(batch.Shares, ledger.Entry{Seq: seq, Units: units, Share: shares.Share{
			Worker:  "bc1qaddressaddressaddressaddress" + strconv.Itoa(w%200) + ".w" + strconv.Itoa(w),
			Address: "bc1qaddressaddressaddressaddress" + strconv.Itoa(w%200), WorkerName: "w" + strconv.Itoa(w),
			Difficulty: 1024, HashDifficulty: 2048, Time: t0.Add(time.Duration(i) * 10 * time.Millisecond)}})
		if len(batch.Shares) == 256 {
			flush()
		}
	}
	if len(batch.Shares) > 0 {
		flush()
	}
	b.StopTimer()
	if cs, err := store.Client().Info(ctx, "commandstats").Result(); err == nil && os.Getenv("LODE_CMDSTATS") != "" {
		fmt.Println(cs)
	}
	usedMemory := func() float64 {
		info, err := store.Client().Info(ctx, "memory").Result()
		if err != nil {
			b.Fatal(err)
		}
		return infoField(info, "used_memory")
	}
	compressed := usedMemory()
	// The run compresses hours of share time into minutes of wall-clock
	// time, so no statistics key has expired yet. Delete the hashrate
	// buckets whose TTL would have run out by the last share's time to see
	// the steady state.
	last := t0.Add(time.Duration(b.N-1) * 10 * time.Millisecond)
	var expiredKeys int
	for _, pat := range []struct {
		match  string
		oldest int64
	}{
		{"t:{stats*}:hr:*", last.Add(-2*time.Hour).Unix() / 60},
		{"t:{stats*}:hr10:*", last.Add(-25*time.Hour).Unix() / 600},
	} {
		it := store.Client().Scan(ctx, 0, pat.match, 1000).Iterator()
		for it.Next(ctx) {
			k := it.Val()
			n, err := strconv.ParseInt(k[strings.LastIndexByte(k, ':')+1:], 10, 64)
			if err == nil && n < pat.oldest {
				store.Client().Del(ctx, k)
				expiredKeys++
			}
		}
		if err := it.Err(); err != nil {
			b.Fatal(err)
		}
	}
	used := usedMemory()
	b.ReportMetric(compressed/1e6, "redis-MB-before-expiry")
	b.ReportMetric(float64(expiredKeys), "expired-buckets")
	w, err := store.Window(ctx)
	if err != nil {
		b.Fatal(err)
	}
	keys, _ := store.Client().DBSize(ctx).Result()
	b.ReportMetric(used/1e6, "redis-MB")
	b.ReportMetric(float64(len(w.Entries)), "window-entries")
	b.ReportMetric(float64(keys), "keys")
}

func infoField(info, name string) float64 {
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	panic(fmt.Sprintf("INFO has no %s", name))
}

// BenchmarkRecordSingle records one share at a time (each group commit holds
// one share: a pool at a low rate), fsync everysec: the per-batch cost of the
// ledger in lode (allocations, CPU) that a paced pool pays per share.
func BenchmarkRecordSingle(b *testing.B) {
	for _, every := range []time.Duration{0, time.Second} {
		b.Run(fmt.Sprintf("stats-interval=%v", every), func(b *testing.B) {
			srv := testenv.StartRedis(b, "--appendfsync", "everysec")
			store := connect(b, srv.Addr)
			rec, err := ledger.New(ledger.Config{Logger: zap.NewNop(), StatsInterval: every}, store)
			if err != nil {
				b.Fatal(err)
			}
			rec.SetNetworkDifficulty(1e6)
			stop := run(b, rec)
			s := shares.Share{Worker: "addr1.w1", Address: "addr1", WorkerName: "w1", Difficulty: 1024, HashDifficulty: 2048}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				s.Time = time.Now()
				if err := rec.Record(context.Background(), s); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			stop()
		})
	}
}
