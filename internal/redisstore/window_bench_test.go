package redisstore

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/redis/go-redis/v9"

	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/window"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// evalshaUsec returns the Redis time spent in EVALSHA (INFO commandstats)
// and the number of calls.
func evalshaUsec(ctx context.Context, b testing.TB, rdb *redis.Client) (usec, calls float64) {
	b.Helper()
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "cmdstat_evalsha:"); ok {
			for _, f := range strings.Split(rest, ",") {
				if v, ok := strings.CutPrefix(f, "usec="); ok {
					usec, _ = strconv.ParseFloat(v, 64)
				}
				if v, ok := strings.CutPrefix(f, "calls="); ok {
					calls, _ = strconv.ParseFloat(v, 64)
				}
			}
		}
	}
	return usec, calls
}

// windowBenchStore starts a redis-server (AOF, fsync every second) for a
// benchmark and returns a store over it.
func windowBenchStore(b *testing.B, prefix string) (*Store, *redis.Client) {
	b.Helper()
	srv := testenv.StartRedis(b, "--appendfsync", "everysec")
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	b.Cleanup(func() { rdb.Close() })
	return New(rdb, Config{Prefix: prefix}), rdb
}

// BenchmarkAccountingPerCommit measures the Redis time of the accounting
// script for what a paced pool writes: one share per group commit, each from
// the next of 10,000 workers (one address each), into a window that is full
// (trimmed as in steady state). The figure is the script's time inside
// Redis (INFO commandstats), not the round trip.
func BenchmarkAccountingPerCommit(b *testing.B) {
	s, rdb := windowBenchStore(b, "pc")
	ctx := context.Background()
	const (
		workers = 10_000
		units   = "102400000000" // difficulty 1024
		// N = 100,000 shares of difficulty 1024; the limit is 1.25 N.
		limit = "12800000000000000"
	)
	seq := uint64(time.Now().UnixNano())
	w := 0
	mk := func(n int) *ledger.Batch {
		bt := &ledger.Batch{Instance: "pc", Kind: ledger.BatchAccounting}
		for range n {
			seq++
			addr := "bc1qpacedpoolworkeraddress" + strconv.Itoa(100_000+w%workers)
			w++
			bt.Shares = append(bt.Shares, ledger.Entry{Seq: seq, Units: units,
				Share: shares.Share{Worker: addr, Address: addr, Difficulty: 1024, HashDifficulty: 2048, Time: time.Now()}})
		}
		seq++
		bt.Seq = seq
		return bt
	}
	// Fill the window past its limit so commits trim.
	for range 130_000 / 256 {
		if err := s.ApplyBatch(ctx, mk(256), limit); err != nil {
			b.Fatal(err)
		}
	}
	rdb.ConfigResetStat(ctx)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := s.ApplyBatch(ctx, mk(1), limit); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	usec, calls := evalshaUsec(ctx, b, rdb)
	b.ReportMetric(usec/calls, "redis-µs/commit")
}

// BenchmarkSnapshotMainnetWindow builds a mainnet-sized PPLNS window through
// the real accounting script and snapshots it while a paced pool's group
// commits keep running. Sizes: N = 2 × D with D = 1.5·10^14, 10,000 workers
// with one 42-byte address each; a slice seals at N/64, so a window spans
// about 64 slices of up to 10,000 entries whatever the share count (the
// synthetic shares are larger than real ones, about one per address per
// slice in random order: what sets the size is the leaves, one per address
// per slice). Reported: leaves per window, Redis memory of the window's
// slices, the snapshot (SnapshotBlock) and the whole BlockFound with the
// root in ms, the longest single Redis command during them (SLOWLOG over
// 1 ms), and the latency of 1-share group commits (a goroutine of this
// process, so the tree building's CPU and GC weigh on it too) before the
// snapshot, during it, and while the root is computed.
func BenchmarkSnapshotMainnetWindow(b *testing.B) {
	s, rdb := windowBenchStore(b, "mn")
	ctx := context.Background()
	const (
		workers     = 10_000
		minWindow   = 3e14 // N in difficulty: 2 × 1.5e14
		sliceShares = workers
	)
	n := ledger.DiffToUnits(minWindow)
	limit := new(big.Int).Quo(new(big.Int).Mul(n, big.NewInt(5)), big.NewInt(4)).String() // L = 1.25 N
	share := new(big.Int).Quo(n, big.NewInt(windowSlices*sliceShares))                    // ~ one per address per slice
	r := rand.New(rand.NewPCG(1, 2))
	addr := func(i int) string { return fmt.Sprintf("bc1q%038d", i) }
	seq := uint64(time.Now().UnixNano())
	perm := r.Perm(workers)
	k := 0
	mk := func(size int, block bool) *ledger.Batch {
		bt := &ledger.Batch{Instance: "mn", Kind: ledger.BatchAccounting}
		for range size {
			if k == len(perm) {
				perm, k = r.Perm(workers), 0
			}
			a := addr(perm[k])
			k++
			seq++
			u := new(big.Int).Mul(share, big.NewInt(int64(50+r.IntN(101))))
			u.Quo(u, big.NewInt(100)) // 0.5 to 1.5 shares
			bt.Shares = append(bt.Shares, ledger.Entry{Seq: seq, Units: u.String(),
				Share: shares.Share{Worker: a, Address: a, Difficulty: 1, Time: time.Now()}})
		}
		bt.Shares[len(bt.Shares)-1].Share.Block = block
		seq++
		bt.Seq = seq
		return bt
	}
	fill := (windowSlices*5/4 + 8) * sliceShares
	start := time.Now()
	for i := 0; i < fill; i += 256 {
		if err := s.ApplyBatch(ctx, mk(256, false), limit); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("filled %d shares in %v", fill, time.Since(start))
	rec, err := payouts.NewRecorder(payouts.RecorderConfig{Ledger: s, MinWindow: minWindow})
	if err != nil {
		b.Fatal(err)
	}
	// A paced pool's group commits (one share each, another instance).
	paced := &instanceFeed{name: "paced", seq: seq}
	var mu sync.Mutex
	var lat []time.Duration
	stopPaced := make(chan struct{})
	pacedDone := make(chan error, 1)
	go func() {
		pr := rand.New(rand.NewPCG(3, 4))
		for {
			select {
			case <-stopPaced:
				pacedDone <- nil
				return
			default:
			}
			bt, _ := paced.batch([]testShare{{addr(pr.IntN(workers)), share.Int64()}})
			t0 := time.Now()
			if err := s.ApplyBatch(ctx, bt, limit); err != nil {
				pacedDone <- err
				return
			}
			d := time.Since(t0)
			mu.Lock()
			lat = append(lat, d)
			mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}()
	take := func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		out := lat
		lat = nil
		return out
	}
	time.Sleep(3 * time.Second)
	idle := take()
	rdb.ConfigSet(ctx, "slowlog-log-slower-than", "1000")
	rdb.SlowLogReset(ctx)
	var snap, found time.Duration
	var during, duringRoot []time.Duration
	var leaves int64
	var mem int64
	var slow []redis.SlowLog
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bt := mk(1, true)
		if err := s.ApplyBatch(ctx, bt, limit); err != nil {
			b.Fatal(err)
		}
		h := testHash(1000 + i)
		fb := payouts.FoundBlock{Hash: h, Height: int64(1000 + i), NetworkDifficulty: 1e-12,
			FindingSeq: fmt.Sprintf("mn:%d", bt.Shares[0].Seq), Time: time.Now()}
		take()
		t0 := time.Now()
		if _, err := s.SnapshotBlock(ctx, fb, n); err != nil {
			b.Fatal(err)
		}
		snap += time.Since(t0)
		during = append(during, take()...)
		blk, err := rec.BlockFound(ctx, fb) // the root: reads every leaf
		if err != nil {
			b.Fatal(err)
		}
		found += time.Since(t0)
		duringRoot = append(duringRoot, take()...)
		if blk.WindowBoundary != payouts.BoundaryExact || blk.WindowUnits.Cmp(n) != 0 {
			b.Fatalf("record %+v", blk)
		}
		leaves = blk.WindowLeaves
		b.StopTimer()
		sl, err := rdb.SlowLogGet(ctx, 128).Result()
		if err != nil {
			b.Fatal(err)
		}
		slow = append(slow, sl...)
		raw, _ := rdb.HMGet(ctx, s.blockKey(h.String()), fieldWindowSliceFirst, fieldWindowSliceLast).Result()
		first, _ := strconv.ParseInt(raw[0].(string), 10, 64)
		last, _ := strconv.ParseInt(raw[1].(string), 10, 64)
		mem = 0
		for id := first; id <= last; id++ {
			for _, key := range []string{s.sliceKey(id), s.sliceOrderKey(id)} {
				m, err := rdb.MemoryUsage(ctx, key, 0).Result()
				if err != nil {
					b.Fatal(err)
				}
				mem += m
			}
		}
		take()
		rdb.SlowLogReset(ctx)
		b.StartTimer()
	}
	b.StopTimer()
	close(stopPaced)
	if err := <-pacedDone; err != nil {
		b.Fatal(err)
	}
	proofFull, proofIndex, idxBytes := benchFirstProofs(b, s, testHash(1000+b.N-1),
		[]string{addr(0), addr(workers / 2), addr(workers - 1)})
	// Per command: how many calls took over 1 ms and the longest. Under CPU
	// contention O(1) commands show up too: the server was descheduled.
	var longest time.Duration
	type slowCmd struct {
		n       int
		longest time.Duration
	}
	byCmd := map[string]*slowCmd{}
	for _, e := range slow {
		longest = max(longest, e.Duration)
		name := strings.ToLower(fmt.Sprint(e.Args[0]))
		if byCmd[name] == nil {
			byCmd[name] = &slowCmd{}
		}
		byCmd[name].n++
		byCmd[name].longest = max(byCmd[name].longest, e.Duration)
	}
	for name, c := range byCmd {
		b.Logf("slowlog (> 1 ms) during the snapshot: %s × %d, longest %v", name, c.n, c.longest)
	}
	q := func(d []time.Duration, p float64) float64 {
		if len(d) == 0 {
			return 0
		}
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return float64(d[min(len(d)-1, int(p*float64(len(d))))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(leaves), "leaves")
	b.ReportMetric(float64(mem)/float64(leaves), "window-B/leaf")
	b.ReportMetric(float64(mem)/1e6, "window-MB")
	b.ReportMetric(float64(snap.Milliseconds())/float64(b.N), "snapshot-ms")
	b.ReportMetric(float64(found.Milliseconds())/float64(b.N), "with-root-ms")
	b.ReportMetric(float64(longest.Microseconds())/1000, "longest-cmd-ms")
	b.ReportMetric(q(idle, 0.5), "commit-p50-idle-ms")
	b.ReportMetric(q(idle, 0.99), "commit-p99-idle-ms")
	b.ReportMetric(q(idle, 1), "commit-max-idle-ms")
	b.ReportMetric(q(during, 0.5), "commit-p50-snap-ms")
	b.ReportMetric(q(during, 0.99), "commit-p99-snap-ms")
	b.ReportMetric(q(during, 1), "commit-max-snap-ms")
	b.ReportMetric(float64(len(during)), "commits-snap")
	b.ReportMetric(q(duringRoot, 0.5), "commit-p50-root-ms")
	b.ReportMetric(q(duringRoot, 0.99), "commit-p99-root-ms")
	b.ReportMetric(q(duringRoot, 1), "commit-max-root-ms")
	b.ReportMetric(proofFull.wall, "proof-full-ms")
	b.ReportMetric(proofFull.cpu, "proof-full-cpu-ms")
	b.ReportMetric(proofFull.redis, "proof-full-redis-ms")
	b.ReportMetric(proofIndex.wall, "proof-index-ms")
	b.ReportMetric(proofIndex.cpu, "proof-index-cpu-ms")
	b.ReportMetric(proofIndex.redis, "proof-index-redis-ms")
	b.ReportMetric(float64(idxBytes)/1e3, "proofidx-kB")
}

// proofCost is the mean cost of one proof: wall time, this process's CPU
// and Redis's CPU, in ms.
type proofCost struct{ wall, cpu, redis float64 }

// benchFirstProofs measures the first proof (nothing cached) of each
// address in block h's window, made from the whole window (what the API
// does for a block without a proof index: WindowLeaves into a
// window.ProofBuilder) and from the proof index (Store.WindowProof), checks
// that both are the same proof, and returns their mean costs and the proof
// index's Redis memory.
func benchFirstProofs(b *testing.B, s *Store, h chainhash.Hash, addrs []string) (full, index proofCost, idxBytes int64) {
	b.Helper()
	ctx := context.Background()
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	redisCPU := func() float64 { // seconds
		info, err := s.rdb.Info(ctx, "cpu").Result()
		if err != nil {
			b.Fatal(err)
		}
		var sum float64
		for _, l := range strings.Split(info, "\n") {
			for _, f := range []string{"used_cpu_sys:", "used_cpu_user:"} {
				if v, ok := strings.CutPrefix(strings.TrimSpace(l), f); ok {
					x, _ := strconv.ParseFloat(v, 64)
					sum += x
				}
			}
		}
		return sum
	}
	measure := func(c *proofCost, f func() *window.Proof) *window.Proof {
		r0, c0, t0 := redisCPU(), cpu(), time.Now()
		p := f()
		c.wall += float64(time.Since(t0).Microseconds()) / 1e3 / float64(len(addrs))
		c.cpu += float64((cpu() - c0).Microseconds()) / 1e3 / float64(len(addrs))
		c.redis += (redisCPU() - r0) * 1e3 / float64(len(addrs))
		return p
	}
	for _, a := range addrs {
		want := measure(&full, func() *window.Proof {
			pb := window.NewProofBuilder(h.String(), a)
			if err := s.WindowLeaves(ctx, h, pb.Add); err != nil {
				b.Fatal(err)
			}
			p, err := pb.Proof()
			if err != nil {
				b.Fatal(err)
			}
			return p
		})
		got := measure(&index, func() *window.Proof {
			p, _, ok, err := s.WindowProof(ctx, h, a)
			if err != nil || !ok {
				b.Fatalf("WindowProof: %v, %v", ok, err)
			}
			return p
		})
		if !reflect.DeepEqual(got, want) || len(got.Leaves) == 0 {
			b.Fatalf("proof of %s from the index differs from the whole window's (%d vs %d leaves)", a, len(got.Leaves), len(want.Leaves))
		}
		b.Logf("proof of %s: %d leaves", a, len(got.Leaves))
	}
	idxBytes, err := s.rdb.MemoryUsage(ctx, s.blockProofIndexKey(h.String()), 0).Result()
	if err != nil {
		b.Fatal(err)
	}
	return full, index, idxBytes
}
