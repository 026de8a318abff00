package redisstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// TestClusterStatisticsSpreadOverMasters: on a real 3-master Redis Cluster,
// the statistics of 96 workers (48 addresses × 2) recorded through the
// ledger, with statistics once per interval (the daemon's default) and with
// every group commit, land on every master (the shards' tags sit in every
// master's slot range), while the accounting stays on one slot; and every
// reader finds them: each worker's and address's statistics, the pool's,
// the active workers, the hashrate series, economics' per-worker buckets
// and the high-water mark.
func TestClusterStatisticsSpreadOverMasters(t *testing.T) {
	c := testenv.StartRedisCluster(t, 3, 0)
	ctx := context.Background()
	for _, tag := range statsShardTags {
		if got, want := c.KeySlot("x:"+tag+":y"), clusterSlot(tag[1:len(tag)-1]); got != want {
			t.Fatalf("tag %s: Redis puts it in slot %d, clusterSlot says %d", tag, got, want)
		}
	}
	for _, tc := range []struct {
		name  string
		every time.Duration
	}{
		{"interval", 50 * time.Millisecond},
		{"per commit", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := clusterStore(t, c, 0)
			s.prefix = fmt.Sprintf("spread%d", tc.every.Milliseconds())
			s.win = newWindowKeys(s) // each run its own window too
			const addrs, perWorker = 48, 3
			var workers []string
			for i := range addrs {
				a := fmt.Sprintf("bcrt1qspread%02d", i)
				workers = append(workers, a+".r0", a+".r1")
			}
			rec, err := ledger.New(ledger.Config{Instance: "spread", StatsInterval: tc.every,
				SpoolPath: filepath.Join(t.TempDir(), "spool"), Logger: zaptest.NewLogger(t)}, s)
			if err != nil {
				t.Fatal(err)
			}
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- rec.Run(rctx) }()
			var wg sync.WaitGroup
			errs := make(chan error, len(workers)*perWorker)
			for _, w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					a, name, _ := strings.Cut(w, ".")
					for range perWorker {
						errs <- rec.Record(ctx, shares.Share{Worker: w, Address: a, WorkerName: name,
							Difficulty: 2, HashDifficulty: 5, Time: time.Now()})
					}
					rec.RecordReject(w, a, "low-difficulty")
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				noCrossSlot(t, "Record", err)
			}
			cancel() // the final statistics batch is written at shutdown
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Fatal(err)
			}
			if st := rec.Stats(); st.Spooled != 0 {
				t.Fatalf("%d batches spooled on a healthy cluster", st.Spooled)
			}

			now := time.Now()
			masters := map[string]int{}
			for _, w := range workers {
				key := s.workerKey(w)
				if n, err := s.rdb.Exists(ctx, key).Result(); err != nil || n != 1 {
					t.Fatalf("worker key %s: exists %d, %v", key, n, err)
				}
				masters[c.MasterFor(key).Addr]++
				ws, err := s.WorkerStats(ctx, w, now)
				noCrossSlot(t, "WorkerStats", err)
				if ws.Accepted != perWorker || ws.Rejected != 1 || ws.BestDifficulty != 5 || !(ws.Hashrate10m > 0) {
					t.Fatalf("worker %s: %+v", w, ws)
				}
			}
			if len(masters) != 3 {
				t.Fatalf("worker statistics on %d masters (%v), want all 3", len(masters), masters)
			}
			t.Logf("worker keys per master: %v", masters)
			for i := range addrs {
				a := fmt.Sprintf("bcrt1qspread%02d", i)
				ms, err := s.MinerStats(ctx, a, now)
				noCrossSlot(t, "MinerStats", err)
				if len(ms.Workers) != 2 || len(ms.Recent) != 2*perWorker || !(ms.Hashrate10m > 0) {
					t.Fatalf("address %s: %d workers, %d recent shares, hashrate %v", a, len(ms.Workers), len(ms.Recent), ms.Hashrate10m)
				}
				_, err = s.HashrateSeries(ctx, HashrateScope{Address: a}, now)
				noCrossSlot(t, "HashrateSeries", err)
			}
			ps, err := s.PoolStats(ctx, now)
			noCrossSlot(t, "PoolStats", err)
			if want := int64(len(workers) * perWorker); ps.Accepted != want || ps.Rejected != int64(len(workers)) {
				t.Fatalf("pool accepted %d rejected %d, want %d and %d", ps.Accepted, ps.Rejected, want, len(workers))
			}
			if want := float64(len(workers)*perWorker*2) * 4294967296 / 600; ps.Hashrate10m < want*0.999 {
				t.Fatalf("pool hashrate 10m %v, want at least %v (Σ difficulty over ≥ 60 s)", ps.Hashrate10m, want)
			}
			active, err := s.ActiveWorkers(ctx, now.Add(-time.Hour))
			noCrossSlot(t, "ActiveWorkers", err)
			if len(active) != len(workers) {
				t.Fatalf("ActiveWorkers found %d, want %d", len(active), len(workers))
			}
			econ, err := s.EconomicsStats().WorkerStats(ctx, now)
			noCrossSlot(t, "EconomicsStats.WorkerStats", err)
			if len(econ) != len(workers) {
				t.Fatalf("economics found %d workers, want %d", len(econ), len(workers))
			}
			hw, err := s.HighWater(ctx, "spread")
			noCrossSlot(t, "HighWater", err)
			if hw == 0 {
				t.Fatal("high-water mark 0 after the batches")
			}
			round := windowByAddress(t, s)
			if len(round) != addrs || round["bcrt1qspread00"].String() != "1200000000" {
				t.Fatalf("round totals %d addresses, bcrt1qspread00 %s; want %d and 6 shares × difficulty 2 × 10^8 units",
					len(round), round["bcrt1qspread00"], addrs)
			}
		})
	}
}
