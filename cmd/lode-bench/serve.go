package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/lode-pool/lode/bench/load"
	"github.com/lode-pool/lode/bench/load/lodeserver"
	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/internal/config"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/shares/ledger"
	"github.com/lode-pool/lode/stratum"
)

// serve runs a Lode Stratum server on a recorded template (network target
// far above the share difficulty, so nothing touches a chain) until
// interrupted; SIGUSR1 publishes a new block. It is the server process of
// the 10k-connection measurements, which need client and server in
// separate processes (20000 descriptors each).
func serve(args []string) error {
	fs := flag.NewFlagSet("lode-bench serve", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:3333", "listen address")
	tmpl := fs.String("template", lodeserver.DefaultTemplate, "getblocktemplate result file to build jobs from")
	diff := fs.Float64("diff", 1e-8, "fixed share difficulty of every connection")
	redisAddr := fs.String("redis", "", "record shares in this Redis through the share ledger (default: count them in memory)")
	prefix := fs.String("redis-prefix", "lodebench", "key prefix in -redis")
	batch := fs.Int("batch", ledger.DefaultMaxBatch, "ledger group-commit batch size (with -redis)")
	batchWait := fs.Duration("batch-wait", ledger.DefaultMaxDelay, "ledger group-commit wait (with -redis)")
	statsEvery := fs.Duration("stats-interval", config.DefaultStatsInterval, "ledger statistics once per interval instead of with every group commit (with -redis; the daemon's default; 0: with every commit)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the server to this file")
	verbose := fs.Bool("v", false, "log the server at info level to stderr")
	memEvery := fs.Duration("memstats", 0, "print the Go runtime's memory breakdown this often (0: never)")
	memProfile := fs.String("memprofile", "", "write a heap profile to this file when stopped (connections still open: what they hold)")
	procs := fs.Int("gomaxprocs", 0, "run Go code on at most this many threads at once (0: the runtime's default, every CPU)")
	readLoop := fs.String("read-loop", stratum.ReadLoopEpoll, "how connections wait for their next line, as lode.yaml's stratum.read_loop: epoll (one event loop) or goroutine (one reader goroutine each)")
	gcPercent := fs.Int("gc-percent", config.DefaultGCPercent, "the collector's target, as lode.yaml's runtime.gc_percent (the daemon's default; GOGC in the environment wins)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(*gcPercent)
	}
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	if *memProfile != "" {
		// Sample every 512 bytes rather than every 512 KiB: a connection
		// holds a few KiB, which the default rate would mostly miss.
		runtime.MemProfileRate = 512
	}
	if _, err := os.Stat(*tmpl); err != nil && !filepath.IsAbs(*tmpl) {
		return fmt.Errorf("template %s (run from the repository root or pass -template): %w", *tmpl, err)
	}
	log := zap.NewNop()
	if *verbose {
		l, err := zap.NewProduction()
		if err != nil {
			return fmt.Errorf("logger: %w", err)
		}
		log = l
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := lodeserver.LodeConfig{Address: *listen, Template: *tmpl, Difficulty: *diff, Logger: log,
		Tune: func(c *stratum.Config) { c.ReadLoop = *readLoop }}
	var rec *ledger.Recorder
	recDone := make(chan error, 1)
	if *redisAddr != "" {
		store, err := redisstore.Connect(ctx, redisstore.ConnectConfig{Addr: *redisAddr, Prefix: *prefix, Logger: log})
		if err != nil {
			return err
		}
		defer store.Client().Close()
		rec, err = ledger.New(ledger.Config{MaxBatch: *batch, MaxDelay: *batchWait, StatsInterval: *statsEvery, Instance: "bench", Logger: log}, store)
		if err != nil {
			return fmt.Errorf("share ledger: %w", err)
		}
		cfg.Recorder = rec
	}
	srv, err := lodeserver.StartLode(cfg)
	if err != nil {
		return err
	}
	rctx, rcancel := context.WithCancel(context.Background())
	defer rcancel()
	if rec != nil {
		if j := srv.Current(); j != nil && j.NetworkTarget != nil {
			rec.SetNetworkDifficulty(blocktemplate.TargetToDifficulty(j.NetworkTarget))
		}
		go func() { recDone <- rec.Run(rctx) }()
	} else {
		recDone <- nil
	}
	if *cpuProfile != "" {
		pf, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("create cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			return fmt.Errorf("start cpu profile: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			pf.Close()
		}()
	}
	fmt.Printf("lode-bench serve: pid %d listening on %s, difficulty %g; try: lode-bench -url stratum+tcp://%s -user %s.w1 -server-pid %d\n",
		os.Getpid(), srv.Addr, *diff, srv.Addr, load.TestnetAddress(7), os.Getpid())
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	if *memEvery > 0 {
		go printMemStats(ctx, *memEvery)
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	for {
		select {
		case <-usr1:
			if _, err := srv.NewBlock(nil); err != nil {
				fmt.Fprintf(os.Stderr, "new block: %v\n", err)
			}
		case <-ctx.Done():
			if *memProfile != "" {
				if err := writeHeapProfile(*memProfile); err != nil {
					fmt.Fprintln(os.Stderr, "lode-bench serve:", err)
				}
			}
			err := srv.Stop()
			rcancel()
			if rerr := <-recDone; err == nil {
				err = rerr
			}
			printServerStats(srv.Server.Stats(), srv.Counting, &ms0)
			return err
		}
	}
}

// writeHeapProfile writes the heap profile (after a GC, so in-use figures
// are what is live) to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("heap profile: %w", err)
	}
	return f.Close()
}

// printMemStats prints where the process's memory is, every d until ctx
// ends: what RSS per connection is made of.
func printMemStats(ctx context.Context, d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		const mib = 1 << 20
		m := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/goal:bytes"}, {Name: "/cpu/classes/gc/total:cpu-seconds"}}
		metrics.Read(m)
		fmt.Printf("memstats: goroutines %d, heap in use %.1f MiB (live after the last GC %.1f, goal %.1f, idle %.1f, released %.1f), stacks %.1f MiB, sys %.1f MiB, GC %d (%.3f s of CPU, estimated by the runtime)\n",
			runtime.NumGoroutine(), float64(ms.HeapInuse)/mib, float64(m[0].Value.Uint64())/mib, float64(m[1].Value.Uint64())/mib,
			float64(ms.HeapIdle)/mib, float64(ms.HeapReleased)/mib, float64(ms.StackInuse)/mib, float64(ms.Sys)/mib, ms.NumGC, m[2].Value.Float64())
	}
}

func printServerStats(st *stratum.Stats, c *lodeserver.CountingRecorder, ms0 *runtime.MemStats) {
	var rejected uint64
	for i := range st.Rejected {
		rejected += st.Rejected[i].Load()
	}
	acc := st.Accepted.Load()
	fmt.Printf("lode-bench serve: accepted %d, rejected %d, blocks published %d\n", acc, rejected, st.Broadcasts.Load())
	if _, _, sum, n := st.Submit.Snapshot(); n > 0 {
		// Inside the server: from the submit line decoded to its reply
		// written; the client's submit→reply adds both sockets and its
		// own wake-ups.
		fmt.Printf("lode-bench serve: submit decoded → reply written, mean %v over %d submits\n", (sum / time.Duration(n)).Round(time.Microsecond), n)
	}
	if acc > 0 {
		// Whole-process allocations, handshakes and jobs included: an
		// upper bound on the submit path's allocations.
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Printf("lode-bench serve: %.1f allocations and %.0f bytes allocated per accepted share (whole process)\n",
			float64(ms.Mallocs-ms0.Mallocs)/float64(acc), float64(ms.TotalAlloc-ms0.TotalAlloc)/float64(acc))
	}
	if c != nil {
		fmt.Printf("lode-bench serve: %d shares recorded\n", c.Count())
	}
}

// floor runs the fan-out floor: it accepts connections and, on each
// SIGUSR1, writes one notify line (the size of the pool's) to all of them.
// With -echo it is instead the submit-path floor (load.ListenEcho).
func floor(args []string) error {
	fs := flag.NewFlagSet("lode-bench floor", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:3334", "listen address")
	echo := fs.Bool("echo", false, "answer requests like a pool without validating anything (submit-path floor) instead of broadcasting")
	epoll := fs.Bool("epoll", false, "with -echo: serve every connection from one epoll event loop instead of a goroutine each (Linux)")
	diff := fs.Float64("diff", 1e-8, "difficulty sent with -echo")
	tmpl := fs.String("template", lodeserver.DefaultTemplate, "getblocktemplate result file the notify line is built from")
	writeNotify := fs.String("write-notify", "", "write the -echo server's notify line to this file and exit (for bench/load/cfloor/echo.c)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	// A server instance only to render the pool's notify line for this
	// template; it listens on a throwaway port and is stopped at once.
	ls, err := lodeserver.StartLode(lodeserver.LodeConfig{Template: *tmpl})
	if err != nil {
		return err
	}
	job := ls.Current()
	if err := ls.Stop(); err != nil {
		return err
	}
	if *writeNotify != "" {
		line, err := load.NotifyLineFor(job, 0)
		if err != nil {
			return err
		}
		return os.WriteFile(*writeNotify, line, 0o644)
	}
	var f *load.FloorServer
	if *echo {
		line, err := load.NotifyLineFor(job, 0)
		if err != nil {
			return err
		}
		listenEcho := load.ListenEcho
		if *epoll {
			listenEcho = load.ListenEchoEpoll
		}
		f, err = listenEcho(*listen, line, *diff)
		if err != nil {
			return err
		}
	} else if f, err = load.ListenFloor(*listen); err != nil {
		return err
	}
	defer f.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("lode-bench floor: pid %d listening on %s; try: lode-bench -raw -url %s -server-pid %d -blocks 10\n",
		os.Getpid(), f.Addr(), f.Addr(), os.Getpid())
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	for seq := 1; ; seq++ {
		select {
		case <-usr1:
			line, err := load.NotifyLineFor(job, seq)
			if err != nil {
				return err
			}
			d, failed := f.Broadcast(line)
			fmt.Printf("broadcast %d bytes to %d connections in %v (%d failed)\n", len(line), f.Conns(), d.Round(time.Microsecond), failed)
		case <-ctx.Done():
			return nil
		}
	}
}
