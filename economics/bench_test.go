package economics

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
)

// benchWorkers builds n workers with a realistic mix: agents of every
// catalog vendor and unknown ones, most with thousands of shares an hour
// (normal interval), some with a few (exact bounds), some with none
// (upper bound), and vardiff-like mixed difficulties.
func benchWorkers(n int) staticStats {
	agents := []string{"Antminer S19j Pro/1.0", "bmminer/2.0.0", "bitaxe/BM1370/v2.4.2", "whatsminer/M50S", "btminer/3.1", "cgminer/4.11.1 Avalon A1466", "cpuminer/2.5.1", ""}
	rng := newRand(42)
	out := make(staticStats, n)
	for i := range out {
		d := float64(int(1) << (10 + rng.IntN(8)))
		shares := func(k int64, conn time.Duration) WindowSums {
			return WindowSums{SumD: float64(k) * d * 1.3, SumD2: float64(k) * d * d * 2, N: k, MaxD: 2 * d, Connected: conn}
		}
		var k int64
		switch i % 10 {
		case 0:
			k = 0
		case 1, 2:
			k = int64(1 + rng.IntN(25))
		default:
			k = int64(200 + rng.IntN(5000))
		}
		out[i] = WorkerStats{
			Worker: fmt.Sprintf("bc1qaddress%05d.rig%02d", i/4, i%4), Address: fmt.Sprintf("bc1qaddress%05d", i/4),
			UserAgent: agents[i%len(agents)], Difficulty: d,
			Windows: [3]WindowSums{shares(k/12, 5*time.Minute), shares(k, time.Hour), shares(k*24, 24*time.Hour)},
		}
	}
	return out
}

// BenchmarkRefresh100kWorkers: one refresh computing every figure (three
// hashrate intervals, device, revenue, power, cost, margin, break-even,
// advice with its state, fleet and ladder) for 100,000 workers.
func BenchmarkRefresh100kWorkers(b *testing.B) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	cfg := Config{
		PoolFee: 0.01, Power: PowerConfig{Currency: "USD", Price: 0.06, Overhead: 1.05},
		BTCPrice: BTCPriceConfig{Source: "static", Value: 100_000},
		Devices:  DevicesConfig{Overrides: []Override{{Worker: "bc1qaddress000*.rig01", Model: "Antminer S21"}}},
	}
	tmpl := TemplateInfo{Height: 900_000, Bits: testBits, CoinbaseValue: 314_500_000}
	e, err := New(cfg, Deps{Params: &chaincfg.MainNetParams, Templates: fakeTemplates{tmpl}, Stats: benchWorkers(100_000), Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	before := cpuTime()
	for b.Loop() {
		now = now.Add(30 * time.Second)
		if err := e.Refresh(ctx); err != nil {
			b.Fatal(err)
		}
	}
	// CPU of the whole process (user + system, every thread, the GC's
	// included) per refresh: the budget is 1 s.
	b.ReportMetric(float64((cpuTime()-before).Milliseconds())/float64(b.N), "cpu-ms/op")
	if s := e.Snapshot(); len(s.Workers) != 100_000 || len(s.Fleet.Models) < 5 {
		b.Fatalf("%d workers, %d models", len(s.Workers), len(s.Fleet.Models))
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSumBucketsWorker: what the statistics adapter spends per worker
// to turn its buckets (60 one-minute buckets for the hour, 144 ten-minute
// slots for the day) into the three window sums.
func BenchmarkSumBucketsWorker(b *testing.B) {
	now := time.Unix(1_800_000_000, 0)
	end := now.Unix() / 60
	var minutes, slots []Bucket
	for m := end - 59; m <= end; m++ {
		minutes = append(minutes, Bucket{Minute: m, SumD: 1024, SumD2: 1024 * 1024, N: 1, MaxD: 1024, Connected: time.Minute})
	}
	for s := end - 1440 + 1; s <= end; s += 10 {
		slots = append(slots, Bucket{Minute: s - 10, Minutes: 10, SumD: 10240, SumD2: 10 * 1024 * 1024, N: 10, MaxD: 1024, Connected: 10 * time.Minute})
	}
	b.ReportAllocs()
	var shares int64
	for b.Loop() {
		shares += SumBuckets(minutes, now, Window5m).N + SumBuckets(minutes, now, Window1h).N + SumBuckets(slots, now, Window24h).N
	}
	if shares == 0 {
		b.Fatal("no bucket in any window")
	}
}
