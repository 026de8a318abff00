package redisstore

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// BenchmarkRecordReplicated measures what "acknowledged means replicated"
// costs a miner: the share ledger (Record from 64 submitters, 64 workers)
// over a primary with one replica (AOF everysec on both), acknowledging
// once the primary applied a batch (min_replicas_acked 0) or once the
// replica has it too (1: WAIT after every group commit). spooled/batch is the
// share of batches the replica did not confirm in time (they went to the
// spool instead).
func BenchmarkRecordReplicated(b *testing.B) {
	for _, minReplicas := range []int{0, 1} {
		b.Run(fmt.Sprintf("min_replicas_acked=%d", minReplicas), func(b *testing.B) {
			primary := testenv.StartRedis(b, "--appendfsync", "everysec")
			testenv.StartRedis(b, "--appendfsync", "everysec", "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port()))
			s, err := Connect(context.Background(), ConnectConfig{Addr: primary.Addr, Prefix: "rb",
				MinReplicasAcked: minReplicas})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Client().Close()
			// The replica must be online (past its first sync, which a
			// diskless primary delays by 5 s) before WAIT can count it.
			deadline := time.Now().Add(20 * time.Second)
			for {
				info, _ := s.Client().Info(context.Background(), "replication").Result()
				if strings.Contains(info, "state=online") {
					break
				}
				if time.Now().After(deadline) {
					b.Fatal("replica not linked")
				}
				time.Sleep(20 * time.Millisecond)
			}
			rec, err := ledger.New(ledger.Config{SpoolPath: filepath.Join(b.TempDir(), "spool")}, s)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { _ = rec.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			const submitters = 64
			lat := make([][]time.Duration, submitters)
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for g := range submitters {
				wg.Add(1)
				go func() {
					defer wg.Done()
					a := "addr" + strconv.Itoa(g)
					for i := g; i < b.N; i += submitters {
						t0 := time.Now()
						if err := rec.Record(context.Background(), shares.Share{Worker: a + ".w", Address: a, WorkerName: "w",
							Difficulty: 1024, HashDifficulty: 2048, Time: t0}); err != nil {
							b.Error(err)
							return
						}
						lat[g] = append(lat[g], time.Since(t0))
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			var all []time.Duration
			for _, l := range lat {
				all = append(all, l...)
			}
			sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
			// A batch the replica did not confirm within the timeout went to
			// the spool: the figure then measures the spool, so report it.
			st := rec.Stats()
			b.ReportMetric(float64(st.Spooled)/float64(max(st.Batches+st.Spooled, 1)), "spooled/batch")
			if len(all) > 0 {
				b.ReportMetric(float64(len(all))/elapsed.Seconds(), "shares/s")
				b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
}
