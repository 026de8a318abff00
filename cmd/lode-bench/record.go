package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/lode-pool/lode/bench/load"
	"github.com/lode-pool/lode/internal/config"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// record runs the share ledger alone (no Stratum, no hashing): submitters
// goroutines call Recorder.Record for shares of workers spread over
// addresses, against a real Redis, for a duration. It is the recorder side
// of the ledger throughput measurements: several of these processes against
// one redis-server show what Redis sustains when the Go side is not the
// limit (bench/README.md, issue 14).
func record(args []string) error {
	fs := flag.NewFlagSet("lode-bench record", flag.ContinueOnError)
	redisAddr := fs.String("redis", "127.0.0.1:6379", "Redis address (host:port or unix:///path)")
	prefix := fs.String("redis-prefix", "lodebench", "key prefix")
	instance := fs.String("instance", "", "ledger instance id (default: random; give each process its own)")
	submitters := fs.Int("submitters", 512, "goroutines calling Record concurrently (with -async: calling RecordAsync)")
	async := fs.Bool("async", false, "hand shares over with RecordAsync, as the Stratum server does (no goroutine waits per share; the ledger's queue is the backpressure)")
	workers := fs.Int("workers", 10000, "distinct workers the shares come from (round robin)")
	addresses := fs.Int("addresses", 2000, "payout addresses the workers are spread over")
	workerBase := fs.Int("worker-base", 0, "number the workers from this (processes with different bases have workers of their own, as frontends whose miners each connect to one; a multiple of -addresses keeps the addresses)")
	difficulty := fs.Float64("diff", 1024, "share difficulty")
	batch := fs.Int("batch", ledger.DefaultMaxBatch, "ledger group-commit batch size")
	statsEvery := fs.Duration("stats-interval", config.DefaultStatsInterval, "ledger statistics interval (0: with every group commit)")
	warmup := fs.Duration("warmup", 2*time.Second, "record this long before measuring")
	duration := fs.Duration("duration", 20*time.Second, "measure this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *submitters < 1 || *workers < 1 || *addresses < 1 || *addresses > *workers {
		return errors.New("need submitters ≥ 1 and 1 ≤ addresses ≤ workers")
	}
	ctx := context.Background()
	store, err := redisstore.Connect(ctx, redisstore.ConnectConfig{Addr: *redisAddr, Prefix: *prefix, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer store.Client().Close()
	rec, err := ledger.New(ledger.Config{MaxBatch: *batch, StatsInterval: *statsEvery, Instance: *instance, Logger: zap.NewNop()}, store)
	if err != nil {
		return fmt.Errorf("share ledger: %w", err)
	}
	rec.SetNetworkDifficulty(1e12) // a window far larger than the run: nothing is trimmed
	rctx, rcancel := context.WithCancel(ctx)
	recDone := make(chan error, 1)
	go func() { recDone <- rec.Run(rctx) }()

	// Share templates built once: the measurement is the ledger, not
	// string building.
	tmpl := make([]shares.Share, *workers)
	for i := range tmpl {
		w := *workerBase + i
		a := fmt.Sprintf("bcrt1qrecordbench%06d", w%*addresses) // the ledger does not check addresses
		tmpl[i] = shares.Share{Worker: a + ".w" + strconv.Itoa(w), Address: a, WorkerName: "w" + strconv.Itoa(w),
			Difficulty: *difficulty, HashDifficulty: 2 * *difficulty}
	}
	var next, failed atomic.Int64
	var measuring atomic.Bool
	ad := &asyncDone{measuring: &measuring, failed: &failed}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	lats := make([][]time.Duration, *submitters)
	counts := make([]int64, *submitters)
	for g := range *submitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				sh := tmpl[int(next.Add(1))%len(tmpl)]
				sh.Time = time.Now()
				t0 := time.Now()
				if *async {
					if err := rec.RecordAsync(&sh, ad, uint64(t0.UnixNano())); err != nil {
						failed.Add(1)
					}
					continue
				}
				if err := rec.Record(ctx, sh); err != nil {
					failed.Add(1)
					continue
				}
				if measuring.Load() {
					counts[g]++
					if counts[g]%16 == 0 { // a sample is enough for the percentiles
						lats[g] = append(lats[g], time.Since(t0))
					}
				}
			}
		}()
	}
	time.Sleep(*warmup)
	cpu0, _ := load.ReadProc(os.Getpid())
	st0 := rec.Stats()
	measuring.Store(true)
	start := time.Now()
	time.Sleep(*duration)
	ad.mu.Lock()
	measuring.Store(false)
	elapsed := time.Since(start)
	ad.mu.Unlock()
	cpu1, _ := load.ReadProc(os.Getpid())
	st1 := rec.Stats()
	close(stop)
	wg.Wait()
	rcancel()
	if err := <-recDone; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	var n int64
	var all []time.Duration
	for g := range counts {
		n += counts[g]
		all = append(all, lats[g]...)
	}
	if *async {
		n = ad.n
		all = ad.lats
	}
	slices.Sort(all)
	pct := func(p int) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[len(all)*p/100]
	}
	fmt.Printf("lode-bench record %s: %d shares in %.1f s = %.0f shares/s acknowledged; Record p50 %v p99 %v; %.1f shares per Store write; lode CPU %.2f µs/share; %d Record errors; %d recorded in all (warm-up and drain included)\n",
		rec.Instance(), n, elapsed.Seconds(), float64(n)/elapsed.Seconds(), pct(50), pct(99),
		float64(st1.Shares-st0.Shares)/float64(max(st1.Batches-st0.Batches, 1)),
		float64((cpu1.CPU-cpu0.CPU).Microseconds())/float64(max(n, 1)), failed.Load(), rec.Stats().Shares)
	return nil
}

// asyncDone counts the shares handed over with RecordAsync as the ledger
// makes them durable (on its flusher goroutine), while measuring, and
// samples their latency (token: the hand-over time in unix ns).
type asyncDone struct {
	measuring *atomic.Bool
	failed    *atomic.Int64
	mu        sync.Mutex
	n         int64
	lats      []time.Duration
}

func (d *asyncDone) ShareDone(token uint64, err error) {
	if err != nil {
		d.failed.Add(1)
		return
	}
	d.mu.Lock()
	if d.measuring.Load() {
		d.n++
		if d.n%16 == 0 {
			d.lats = append(d.lats, time.Since(time.Unix(0, int64(token))))
		}
	}
	d.mu.Unlock()
}
