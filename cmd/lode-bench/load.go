package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lode-pool/lode/bench/load"
)

type loadFlags struct {
	cfg        load.Config
	url        string
	src        string
	duration   time.Duration
	warmup     time.Duration
	report     time.Duration
	preMine    int
	serverPID  int
	blocks     int
	blockEvery time.Duration
	quiet      bool
}

// parseURL accepts stratum+tcp://host:port, tcp://host:port or host:port.
func parseURL(s string) (string, error) {
	if !strings.Contains(s, "://") {
		return s, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("parse pool url %q: %w", s, err)
	}
	switch u.Scheme {
	case "stratum+tcp", "tcp", "stratum":
	default:
		return "", fmt.Errorf("pool url %q: scheme %q not supported (stratum+tcp)", s, u.Scheme)
	}
	if u.Host == "" {
		return "", fmt.Errorf("pool url %q: no host", s)
	}
	return u.Host, nil
}

func parseLoadFlags(args []string, stderr io.Writer) (*loadFlags, error) {
	f := &loadFlags{}
	fs := flag.NewFlagSet("lode-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.url, "url", "stratum+tcp://127.0.0.1:3333", "pool `URL` (stratum+tcp://host:port or host:port)")
	fs.StringVar(&f.cfg.Username, "user", "", "username for mining.authorize, usually <payout address>.<worker> (required)")
	fs.StringVar(&f.cfg.Password, "pass", "x", "password for mining.authorize")
	fs.BoolVar(&f.cfg.WorkerPerConn, "worker-per-conn", false, "append each connection's index to -user, so every connection is its own worker")
	fs.IntVar(&f.cfg.Conns, "conns", 1, "number of connections")
	fs.DurationVar(&f.duration, "duration", 0, "measured run time after warm-up (0: until interrupted, redialing lost connections)")
	fs.DurationVar(&f.warmup, "warmup", 0, "time mined before measuring")
	fs.DurationVar(&f.report, "report", 5*time.Second, "progress report interval (0: none)")
	fs.BoolVar(&f.cfg.VersionRolling, "version-rolling", false, "negotiate BIP310 version rolling and roll version bits")
	fs.Float64Var(&f.cfg.SuggestDifficulty, "suggest-diff", 0, "send mining.suggest_difficulty with this value")
	fs.StringVar(&f.src, "src", "", "comma-separated local `IPs` to dial from, round robin (e.g. 127.0.0.2,127.0.0.3)")
	fs.IntVar(&f.cfg.DialConcurrency, "dial-concurrency", 64, "handshakes in flight while connecting")
	fs.DurationVar(&f.cfg.Timeout, "timeout", 30*time.Second, "bound on dial, handshake and each submit reply")
	fs.BoolVar(&f.cfg.Idle, "idle", false, "connect and handshake only, never submit (memory measurement)")
	fs.DurationVar(&f.cfg.Interval, "interval", 0, "pace each connection to one submit per interval, random phase (0: submit as fast as shares are found)")
	fs.IntVar(&f.cfg.Pipeline, "pipeline", 0, "submits in flight per connection (0/1: one, like a miner; >1: pipelined like a fast miner or a proxy)")
	fs.IntVar(&f.preMine, "premine", 0, "shares mined per connection before measuring, so the client's hashing does not limit the rate")
	fs.IntVar(&f.serverPID, "server-pid", 0, "pool process `pid` on this machine: report its RSS per connection and CPU per accepted share")
	fs.IntVar(&f.blocks, "blocks", 0, "send SIGUSR1 to -server-pid this many times (lode-bench serve/floor publish a new block on it) and measure fan-out from the signal")
	fs.DurationVar(&f.blockEvery, "block-every", 2*time.Second, "interval between -blocks signals")
	fs.BoolVar(&f.cfg.Raw, "raw", false, "no handshake: only read lines (clients of lode-bench floor)")
	fs.BoolVar(&f.quiet, "quiet", false, "do not log connection errors")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	addr, err := parseURL(f.url)
	if err != nil {
		return nil, err
	}
	f.cfg.Address = addr
	if f.cfg.Username == "" && !f.cfg.Raw {
		return nil, errors.New("-user is required (e.g. <payout address>.w1)")
	}
	if f.cfg.Conns < 1 {
		return nil, fmt.Errorf("-conns %d: want at least 1", f.cfg.Conns)
	}
	if f.src != "" {
		f.cfg.SourceIPs = strings.Split(f.src, ",")
	}
	if f.blocks > 0 && f.serverPID == 0 {
		return nil, errors.New("-blocks needs -server-pid")
	}
	if f.duration == 0 {
		f.cfg.Reconnect = true
	}
	return f, nil
}

func runLoad(args []string) error {
	f, err := parseLoadFlags(args, os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := os.Stdout
	var logged atomic.Int64
	if !f.quiet {
		// Bounded: thousands of failing connections must not flood stderr.
		f.cfg.Logf = func(format string, a ...any) {
			if n := logged.Add(1); n <= 20 {
				fmt.Fprintf(os.Stderr, format+"\n", a...)
			} else if n == 21 {
				fmt.Fprintln(os.Stderr, "(further connection errors not shown)")
			}
		}
	}
	r, err := load.New(f.cfg)
	if err != nil {
		return err
	}
	var base load.ProcSample
	if f.serverPID != 0 {
		if base, err = load.ReadProc(f.serverPID); err != nil {
			return err
		}
	}
	start := time.Now()
	if err := r.Connect(ctx); err != nil {
		r.Close()
		return err
	}
	defer r.Close()
	fmt.Fprintf(out, "connected %d/%d to %s in %v\n", r.Live(), f.cfg.Conns, f.cfg.Address, time.Since(start).Round(time.Millisecond))
	if !f.cfg.Raw {
		if err := r.WaitJobs(ctx); err != nil {
			return fmt.Errorf("waiting for first jobs: %w", err)
		}
	}
	if f.serverPID != 0 {
		// Let the server settle (GC, lazily grown buffers) before sampling.
		time.Sleep(2 * time.Second)
		s, err := load.ReadProc(f.serverPID)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "server RSS %.1f MiB before connecting, %.1f MiB with %d connections: %.2f KiB per connection\n",
			mib(base.RSS), mib(s.RSS), r.Live(), float64(s.RSS-base.RSS)/1024/float64(max(1, r.Live())))
	}
	if f.preMine > 0 && !f.cfg.Idle && !f.cfg.Raw {
		t := time.Now()
		if err := r.PreMine(ctx, f.preMine, runtime.GOMAXPROCS(0)); err != nil {
			return fmt.Errorf("pre-mine: %w", err)
		}
		fmt.Fprintf(out, "pre-mined %d shares per connection in %v\n", f.preMine, time.Since(t).Round(time.Millisecond))
	}
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() { r.Mine(mctx); close(done) }()
	if f.warmup > 0 {
		select {
		case <-time.After(f.warmup):
		case <-ctx.Done():
		}
	}
	begin := r.Snapshot()
	selfBegin := selfCPU()
	var procBegin load.ProcSample
	if f.serverPID != 0 {
		procBegin, _ = load.ReadProc(f.serverPID)
	}
	if f.blocks > 0 {
		go signalBlocks(mctx, r, f.serverPID, f.blocks, f.blockEvery)
	}
	var end <-chan time.Time
	if f.duration > 0 {
		end = time.After(f.duration)
	}
	var tick <-chan time.Time
	if f.report > 0 {
		t := time.NewTicker(f.report)
		defer t.Stop()
		tick = t.C
	}
	last := begin
loop:
	for {
		select {
		case <-tick:
			s := r.Snapshot()
			fmt.Fprintf(out, "%s live %d: %v\n", time.Now().Format("15:04:05"), s.Live, s.Since(last))
			last = s
		case <-end:
			break loop
		case <-ctx.Done():
			break loop
		case <-done:
			break loop
		}
	}
	final := r.Snapshot()
	selfUsed := selfCPU() - selfBegin
	var procEnd load.ProcSample
	if f.serverPID != 0 {
		procEnd, _ = load.ReadProc(f.serverPID)
	}
	cancel()
	<-done
	st := final.Since(begin)
	fmt.Fprintf(out, "\n%d connections, %v measured: %v\n", final.Live, st.Elapsed.Round(time.Millisecond), st)
	if final.ConnErrors > 0 || final.ProtocolErrors > 0 {
		fmt.Fprintf(out, "connection errors %d, protocol errors %d\n", final.ConnErrors, final.ProtocolErrors)
	}
	if st.Accepted > 0 {
		fmt.Fprintf(out, "client CPU %v: %.1f µs per accepted share\n", selfUsed.Round(time.Millisecond), float64(selfUsed.Microseconds())/float64(st.Accepted))
	}
	if f.serverPID != 0 && procEnd.CPU > 0 && st.Accepted > 0 {
		cpu := procEnd.CPU - procBegin.CPU
		fmt.Fprintf(out, "server CPU %v: %.1f µs per accepted share (10 ms tick resolution); RSS %.1f MiB\n",
			cpu, float64(cpu.Microseconds())/float64(st.Accepted), mib(procEnd.RSS))
	}
	if fs := r.Fanouts(); len(fs) > 0 {
		p50, maxD, n := load.FanoutSummary(fs, final.Live)
		from := "first receipt"
		if f.blocks > 0 {
			from = "signal to server"
		}
		fmt.Fprintf(out, "new-block fan-out (%s → last connection), %d of %d blocks reached all %d connections: p50 %v max %v\n",
			from, n, len(fs), final.Live, p50.Round(time.Microsecond), maxD.Round(time.Microsecond))
	}
	return nil
}

// signalBlocks asks a lode-bench serve/floor process for a new block n
// times, marking each signal as the block event.
func signalBlocks(ctx context.Context, r *load.Runner, pid, n int, every time.Duration) {
	p, err := os.FindProcess(pid)
	if err != nil {
		return
	}
	for range n {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		r.MarkBlock(time.Now())
		if err := p.Signal(syscall.SIGUSR1); err != nil {
			fmt.Fprintf(os.Stderr, "signal server: %v\n", err)
			return
		}
	}
}

// selfCPU returns this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
