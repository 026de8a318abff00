package ledger_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// countingStore counts the Store round trips (one pipeline each) of the
// real Redis store it wraps.
type countingStore struct {
	ledger.Store
	applies atomic.Int64
}

func (c *countingStore) ApplyBatch(ctx context.Context, b *ledger.Batch, limit string) error {
	c.applies.Add(1)
	return c.Store.ApplyBatch(ctx, b, limit)
}

func connect(t testing.TB, addr string) *redisstore.Store {
	t.Helper()
	s, err := redisstore.Connect(context.Background(), redisstore.ConnectConfig{Addr: addr, Prefix: "t"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Client().Close() })
	return s
}

// run starts rec's flusher and returns a function that stops it and waits.
func run(t testing.TB, rec *ledger.Recorder) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func newRecorder(t testing.TB, cfg ledger.Config, st ledger.Store) *ledger.Recorder {
	t.Helper()
	if cfg.Logger == nil {
		if tt, ok := t.(*testing.T); ok {
			cfg.Logger = zaptest.NewLogger(tt)
		}
	}
	rec, err := ledger.New(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func mkShare(address, worker string, diff float64) shares.Share {
	return shares.Share{Worker: address + "." + worker, Address: address, WorkerName: worker,
		Difficulty: diff, HashDifficulty: diff * 1.5, JobHeight: 100, Time: time.Now()}
}

func units(t testing.TB, d float64) *big.Int {
	t.Helper()
	s, err := ledger.DiffUnits(d)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := ledger.ParseUnits(s)
	return v
}

// waitFor polls cond for up to limit; the bound only stops a broken test
// from hanging, it asserts nothing about speed.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, limit, what, cond)
}

// ledgerTotals reads Σ units per address of the window and the round
// total as big integers; while the window was never trimmed (no limit) the
// two agree, which it checks.
func ledgerTotals(t testing.TB, s *redisstore.Store) (map[string]*big.Int, *big.Int) {
	t.Helper()
	ctx := context.Background()
	total, err := s.RoundTotal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Window(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, sum, err := w.ByAddress()
	if err != nil {
		t.Fatal(err)
	}
	tot, err := ledger.ParseUnits(total)
	if err != nil {
		t.Fatal(err)
	}
	if w.Limit == "0" && sum.Cmp(tot) != 0 {
		t.Fatalf("round total %s ≠ Σ per address in the window %s", tot, sum)
	}
	return out, tot
}

func TestRecordBatchesConcurrentShares(t *testing.T) {
	srv := testenv.StartRedis(t)
	store := &countingStore{Store: connect(t, srv.Addr)}
	rec := newRecorder(t, ledger.Config{MaxDelay: 20 * time.Millisecond}, store)
	stop := run(t, rec)

	const n = 2000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	want := map[string]*big.Int{}
	for i := range n {
		addr := fmt.Sprintf("addr%d", i%7)
		d := float64(1+i%5) / 4
		if want[addr] == nil {
			want[addr] = new(big.Int)
		}
		want[addr].Add(want[addr], units(t, d))
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- rec.Record(context.Background(), mkShare(addr, "w"+strconv.Itoa(i%3), d))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Record: %v", err)
		}
	}
	stop()
	applies := store.applies.Load()
	t.Logf("%d shares in %d pipelines", n, applies)
	if applies >= n/4 || applies < n/ledger.DefaultMaxBatch {
		t.Fatalf("%d shares took %d pipelines; want group commits of up to %d", n, applies, ledger.DefaultMaxBatch)
	}
	got, total := ledgerTotals(t, store.Store.(*redisstore.Store))
	wantTotal := new(big.Int)
	for a, v := range want {
		wantTotal.Add(wantTotal, v)
		if got[a] == nil || got[a].Cmp(v) != 0 {
			t.Fatalf("round[%s] = %v, want %v", a, got[a], v)
		}
	}
	if total.Cmp(wantTotal) != 0 {
		t.Fatalf("round total %v, want %v", total, wantTotal)
	}
	ps, err := store.Store.(*redisstore.Store).PoolStats(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if ps.Accepted != n {
		t.Fatalf("pool accepted %d, want %d", ps.Accepted, n)
	}
	if st := rec.Stats(); st.Shares != n || st.Failed != 0 {
		t.Fatalf("recorder stats %+v", st)
	}
}

func TestRecordWindowFollowsNetworkDifficulty(t *testing.T) {
	srv := testenv.StartRedis(t)
	store := connect(t, srv.Addr)
	rec := newRecorder(t, ledger.Config{WindowFactor: 2}, store)
	rec.SetNetworkDifficulty(10) // N = 20 difficulty
	run(t, rec)
	ctx := context.Background()
	for i := range 30 {
		if err := rec.Record(ctx, mkShare("A"+strconv.Itoa(i%2), "w", 1)); err != nil {
			t.Fatal(err)
		}
	}
	w, err := store.Window(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The list keeps N plus WindowMargin (a found block's snapshot must
	// still find the N units before its share after later batches).
	if w.Limit != "2500000000" || w.Total != "2500000000" || len(w.Entries) != 25 {
		t.Fatalf("window limit %s total %s with %d entries; want N × 1.25 = 25 diff exactly, 25 entries", w.Limit, w.Total, len(w.Entries))
	}
	// Newest first: the last share (i = 29) was for A1.
	if w.Entries[0].Address != "A1" || w.Entries[1].Address != "A0" {
		t.Fatalf("window order %v", w.Entries[:2])
	}
	_, total := ledgerTotals(t, store)
	if total.String() != "3000000000" {
		t.Fatalf("round total %s, want 30 diff: trimming the window does not touch the round", total)
	}
}

func TestRecordRejectsAndInvalid(t *testing.T) {
	srv := testenv.StartRedis(t)
	store := connect(t, srv.Addr)
	rec := newRecorder(t, ledger.Config{}, store)
	stop := run(t, rec)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		s    shares.Share
	}{
		{"zero difficulty", mkShare("A", "w", 0)},
		{"negative difficulty", mkShare("A", "w", -1)},
		{"below one unit", mkShare("A", "w", 1e-9)},
		{"too large", mkShare("A", "w", 1e16)},
		{"no address", shares.Share{Worker: "x", Difficulty: 1}},
		{"no worker", shares.Share{Address: "A", Difficulty: 1}},
		{"pipe in address", mkShare("A|B", "w", 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := rec.Record(ctx, tc.s); !errors.Is(err, ledger.ErrInvalidShare) {
				t.Fatalf("Record = %v, want ErrInvalidShare", err)
			}
		})
	}
	rec.RecordReject("A.w", "A", ledger.ReasonStale)
	rec.RecordReject("A.w", "A", ledger.ReasonStale)
	rec.RecordReject("A.w", "A", "duplicate")
	// Rejects alone are written too (the flusher is woken for them).
	waitFor(t, 10*time.Second, "rejects written", func() bool {
		ws, err := store.WorkerStats(ctx, "A.w", time.Now())
		return err == nil && ws.Stale == 2 && ws.Rejected == 1
	})
	if err := rec.Record(ctx, mkShare("A", "w", 2)); err != nil {
		t.Fatal(err)
	}
	ws, _ := store.WorkerStats(ctx, "A.w", time.Now())
	if ws.Accepted != 1 || ws.BestDifficulty != 3 {
		t.Fatalf("worker stats %+v", ws)
	}
	stop()
	if err := rec.Record(ctx, mkShare("A", "w", 1)); !errors.Is(err, ledger.ErrClosed) {
		t.Fatalf("Record after Run returned: %v, want ErrClosed", err)
	}
}

// TestRecordBeforeRunAndCancel: a Record issued before Run starts is served
// once it does; a Record whose ctx has ended returns the ctx error.
func TestRecordBeforeRunAndCancel(t *testing.T) {
	srv := testenv.StartRedis(t)
	store := connect(t, srv.Addr)
	rec := newRecorder(t, ledger.Config{}, store)
	done := make(chan error, 1)
	go func() { done <- rec.Record(context.Background(), mkShare("A", "w", 1)) }()
	run(t, rec)
	if err := <-done; err != nil {
		t.Fatalf("Record issued before Run: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := rec.Record(ctx, mkShare("B", "w", 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Record with a cancelled ctx: %v, want context.Canceled", err)
	}
	if round, _ := ledgerTotals(t, store); round["B"] != nil {
		t.Fatalf("a share refused for its ctx was recorded: %v", round)
	}
}

func TestRecordNotDurable(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(dir string) ledger.Config
	}{
		{"no spool", func(string) ledger.Config { return ledger.Config{} }},
		{"spool full", func(dir string) ledger.Config {
			return ledger.Config{SpoolPath: filepath.Join(dir, "s"), MaxSpoolBytes: 100}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testenv.StartRedis(t)
			store := connect(t, srv.Addr)
			cfg := tc.cfg(t.TempDir())
			cfg.WriteTimeout = 500 * time.Millisecond
			rec := newRecorder(t, cfg, store)
			run(t, rec)
			ctx := context.Background()
			if err := rec.Record(ctx, mkShare("A", "w", 1)); err != nil {
				t.Fatal(err)
			}
			srv.Stop()
			err := rec.Record(ctx, mkShare("A", "w", 1))
			if !errors.Is(err, ledger.ErrNotDurable) {
				t.Fatalf("Record with Redis and spool unavailable = %v, want ErrNotDurable", err)
			}
			srv.Restart()
			waitFor(t, 20*time.Second, "recording again", func() bool {
				return rec.Record(ctx, mkShare("A", "w", 1)) == nil
			})
			ps, err := store.PoolStats(ctx, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if st := rec.Stats(); ps.Accepted != int64(st.Shares) {
				t.Fatalf("pool accepted %d, recorder acknowledged %d", ps.Accepted, st.Shares)
			}
		})
	}
}

// loadResult is what a load generator saw acknowledged.
type loadResult struct {
	mu    sync.Mutex
	count int64
	sum   map[string]*big.Int
	errs  []error
}

// load runs g goroutines recording shares until stop is closed; every
// goroutine uses its own address so acknowledged sums can be compared.
func load(t testing.TB, rec *ledger.Recorder, g int, stop chan struct{}) (*loadResult, *sync.WaitGroup) {
	res := &loadResult{sum: map[string]*big.Int{}}
	var wg sync.WaitGroup
	for i := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := "miner" + strconv.Itoa(i)
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				d := float64(1+(i*7+j)%13) / 8
				err := rec.Record(context.Background(), mkShare(addr, "rig", d))
				res.mu.Lock()
				if err != nil {
					res.errs = append(res.errs, err)
				} else {
					res.count++
					if res.sum[addr] == nil {
						res.sum[addr] = new(big.Int)
					}
					res.sum[addr].Add(res.sum[addr], units(t, d))
				}
				res.mu.Unlock()
			}
		}()
	}
	return res, &wg
}

func (r *loadResult) acked() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}

func TestRedisRestartUnderLoad(t *testing.T) {
	srv := testenv.StartRedis(t)
	store := connect(t, srv.Addr)
	spool := filepath.Join(t.TempDir(), "shares.spool")
	rec := newRecorder(t, ledger.Config{SpoolPath: spool, RetryInterval: 50 * time.Millisecond,
		WriteTimeout: time.Second}, store)
	stopRec := run(t, rec)
	stop := make(chan struct{})
	res, wg := load(t, rec, 16, stop)

	waitFor(t, 30*time.Second, "shares before the outage", func() bool { return res.acked() >= 500 })
	srv.Stop()
	before := res.acked()
	waitFor(t, 30*time.Second, "shares spooled during the outage", func() bool {
		return rec.Stats().Spooled >= 20 && res.acked() >= before+1000
	})
	if _, err := os.Stat(spool); err != nil {
		t.Fatalf("spool file during the outage: %v", err)
	}
	spooledBytes := rec.Stats().SpoolBytes
	srv.Restart()
	waitFor(t, 60*time.Second, "spool drained", func() bool { return !rec.Stats().SpoolPending })
	after := res.acked()
	waitFor(t, 30*time.Second, "shares after the restart", func() bool { return res.acked() >= after+500 })
	close(stop)
	wg.Wait()
	stopRec()

	if len(res.errs) > 0 {
		t.Fatalf("%d Record errors, first: %v", len(res.errs), res.errs[0])
	}
	if _, err := os.Stat(spool); !os.IsNotExist(err) {
		t.Fatalf("spool not removed after replay: %v", err)
	}
	st := rec.Stats()
	t.Logf("acknowledged %d shares; %d batches spooled (%d bytes at restart), %d replayed", res.count, st.Spooled, spooledBytes, st.Replayed)
	if st.Replayed != st.Spooled {
		t.Fatalf("replayed %d of %d spooled batches", st.Replayed, st.Spooled)
	}
	got, _ := ledgerTotals(t, store)
	if len(got) != len(res.sum) {
		t.Fatalf("ledger has %d addresses, load %d", len(got), len(res.sum))
	}
	for a, v := range res.sum {
		if got[a] == nil || got[a].Cmp(v) != 0 {
			t.Fatalf("ledger[%s] = %v, acknowledged %v", a, got[a], v)
		}
	}
	ps, err := store.PoolStats(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if ps.Accepted != res.count {
		t.Fatalf("pool accepted %d, acknowledged %d", ps.Accepted, res.count)
	}
}

func TestSpoolReplayTwice(t *testing.T) {
	srv := testenv.StartRedis(t)
	store := connect(t, srv.Addr)
	dir := t.TempDir()
	spool := filepath.Join(dir, "shares.spool")
	srv.Stop()

	rec := newRecorder(t, ledger.Config{SpoolPath: spool, WriteTimeout: 300 * time.Millisecond}, store)
	stop := run(t, rec)
	want := new(big.Int)
	const n = 300
	var wg sync.WaitGroup
	for i := range n {
		d := float64(1 + i%9)
		want.Add(want, units(t, d))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := rec.Record(context.Background(), mkShare("A", "w", d)); err != nil {
				t.Errorf("Record with Redis down: %v", err)
			}
		}()
	}
	wg.Wait()
	stop()
	data, err := os.ReadFile(spool)
	if err != nil {
		t.Fatalf("spool after a run with Redis down: %v", err)
	}

	srv.Restart()
	check := func(round string) {
		t.Helper()
		got, total := ledgerTotals(t, store)
		if total.Cmp(want) != 0 || got["A"].Cmp(want) != 0 {
			t.Fatalf("%s: round total %v, want %v", round, total, want)
		}
		ws, err := store.WorkerStats(context.Background(), "A.w", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if ws.Accepted != n {
			t.Fatalf("%s: accepted %d, want %d", round, ws.Accepted, n)
		}
	}
	for _, round := range []string{"first replay", "second replay"} {
		if err := os.WriteFile(spool, data, 0o644); err != nil {
			t.Fatal(err)
		}
		rec := newRecorder(t, ledger.Config{SpoolPath: spool}, store)
		stop := run(t, rec)
		waitFor(t, 30*time.Second, round, func() bool { return !rec.Stats().SpoolPending })
		stop()
		check(round)
	}
}

// The crash test runs this test binary as a child process that records
// shares on 8 goroutines and prints "ok <address> <units>" for each share
// acknowledged, until it is SIGKILLed.
const crashChildEnv = "LODE_LEDGER_CRASH_CHILD"

func TestMain(m *testing.M) {
	if addr := os.Getenv(crashChildEnv); addr != "" {
		os.Exit(crashChild(addr, os.Getenv("LODE_LEDGER_CRASH_SPOOL"), os.Getenv("LODE_LEDGER_CRASH_TAG")))
	}
	os.Exit(m.Run())
}

func crashChild(addr, spool, tag string) int {
	ctx := context.Background()
	store, err := redisstore.Connect(ctx, redisstore.ConnectConfig{Addr: addr, Prefix: "t"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rec, err := ledger.New(ledger.Config{Instance: "crash", SpoolPath: spool, WriteTimeout: 300 * time.Millisecond,
		RetryInterval: 50 * time.Millisecond}, store)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() { _ = rec.Run(ctx) }()
	var mu sync.Mutex
	for g := range 8 {
		go func() {
			for i := 0; ; i++ {
				addr := fmt.Sprintf("%s-%d-%d", tag, g, i)
				d := float64(1+(g*5+i)%17) / 16
				u, _ := ledger.DiffUnits(d)
				if err := rec.Record(ctx, mkShare(addr, "rig", d)); err != nil {
					fmt.Fprintln(os.Stderr, "record:", err)
					continue
				}
				mu.Lock()
				// Unbuffered: a line written is an acknowledgement seen.
				fmt.Fprintf(os.Stdout, "ok %s %s\n", addr, u)
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestCrashKeepsAcknowledgedShares SIGKILLs a recording process twice —
// once while Redis is up, once while it is spooling with Redis down — then
// drains the spool the last run left: every acknowledged share is in the
// ledger exactly once; the only extra shares are the few that were written
// but not yet reported when the kill came.
func TestCrashKeepsAcknowledgedShares(t *testing.T) {
	srv := testenv.StartRedis(t)
	store := connect(t, srv.Addr)
	spool := filepath.Join(t.TempDir(), "shares.spool")
	acked := map[string]string{}

	child := func(tag string, during func(n int) (stopAt bool)) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+srv.Addr, "LODE_LEDGER_CRASH_SPOOL="+spool, "LODE_LEDGER_CRASH_TAG="+tag)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		sc := bufio.NewScanner(out)
		n := 0
		killed := false
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 || f[0] != "ok" {
				t.Fatalf("child said %q", sc.Text())
			}
			acked[f[1]] = f[2]
			n++
			if !killed && during(n) {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed = true // keep reading what the pipe still holds
			}
		}
		if !killed {
			t.Fatalf("child exited after %d shares before being killed", n)
		}
	}
	child("up", func(n int) bool { return n >= 1500 })
	child("down", func(n int) bool {
		if n == 300 {
			srv.Stop()
		}
		return n >= 1500
	})
	if _, err := os.Stat(spool); err != nil {
		t.Fatalf("no spool after the kill during the outage: %v", err)
	}
	srv.Restart()
	rec := newRecorder(t, ledger.Config{Instance: "crash", SpoolPath: spool}, store)
	stop := run(t, rec)
	waitFor(t, 30*time.Second, "spool replay", func() bool { return !rec.Stats().SpoolPending })
	stop()

	got, total := ledgerTotals(t, store)
	ackedSum := new(big.Int)
	for a, u := range acked {
		v, _ := ledger.ParseUnits(u)
		ackedSum.Add(ackedSum, v)
		if got[a] == nil || got[a].Cmp(v) != 0 {
			t.Fatalf("acknowledged share %s (%s units) is in the ledger as %v", a, u, got[a])
		}
	}
	extra := 0
	for a, v := range got {
		if _, ok := acked[a]; ok {
			continue
		}
		// Written but not reported before the kill: at most one in flight
		// per child goroutine per run, and never counted twice.
		var tag string
		var g, i int
		if _, err := fmt.Sscanf(strings.ReplaceAll(a, "-", " "), "%s %d %d", &tag, &g, &i); err != nil {
			t.Fatalf("ledger address %q: %v", a, err)
		}
		if want := units(t, float64(1+(g*5+i)%17)/16); v.Cmp(want) != 0 {
			t.Fatalf("unacknowledged share %s has %v units, one share is %v", a, v, want)
		}
		extra++
	}
	if extra > 2*8 {
		t.Fatalf("%d shares in the ledger that no one saw acknowledged; at most 16 can be in flight", extra)
	}
	ps, err := store.PoolStats(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if ps.Accepted != int64(len(got)) {
		t.Fatalf("pool accepted %d, ledger holds %d distinct shares: something was counted twice", ps.Accepted, len(got))
	}
	t.Logf("acknowledged %d shares (Σ %s units); ledger %d shares (Σ %s units), %d in flight at the kills",
		len(acked), ackedSum, len(got), total, extra)
}

// gateStore holds the Store calls made while it is armed until the test
// releases them: a Redis attempt stuck until its deadline, without depending
// on how long that is. It wraps the real store; it only injects the hang.
type gateStore struct {
	ledger.Store
	armed   atomic.Bool
	calls   atomic.Int32  // calls that reached the gate
	inside  atomic.Int32  // calls held at the gate now
	entered chan struct{} // signalled when a call reaches the gate
	release chan struct{} // closed to let held calls through
}

func (g *gateStore) hold() {
	if !g.armed.Load() {
		return
	}
	g.calls.Add(1)
	g.inside.Add(1)
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.release
	g.inside.Add(-1)
}

func (g *gateStore) HighWater(ctx context.Context, instance string) (uint64, error) {
	g.hold()
	return g.Store.HighWater(ctx, instance)
}

func (g *gateStore) ApplyBatch(ctx context.Context, b *ledger.Batch, limit string) error {
	g.hold()
	return g.Store.ApplyBatch(ctx, b, limit)
}

// TestSpoolingDoesNotWaitForReplay: while Redis is down and the spool is
// non-empty, new shares are spooled and acknowledged even though a replay
// attempt is stuck inside the Store; once Redis is back the spool drains and
// every acknowledged share is counted exactly once.
func TestSpoolingDoesNotWaitForReplay(t *testing.T) {
	srv := testenv.StartRedis(t)
	store := connect(t, srv.Addr)
	gate := &gateStore{Store: store, entered: make(chan struct{}, 1), release: make(chan struct{})}
	spool := filepath.Join(t.TempDir(), "shares.spool")
	rec := newRecorder(t, ledger.Config{SpoolPath: spool, WriteTimeout: 300 * time.Millisecond,
		RetryInterval: 20 * time.Millisecond}, gate)
	stop := run(t, rec)
	released := false
	// Registered after run, so it runs before the cleanup that stops Run: a
	// failing test must let a held call finish for Run to return.
	t.Cleanup(func() {
		if !released {
			close(gate.release)
		}
	})

	// The bound on each Record only keeps a broken recorder from hanging
	// the test; it asserts nothing about speed.
	record := func(addr string, n int) error {
		for range n {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			err := rec.Record(ctx, mkShare(addr, "w", 1))
			cancel()
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err := record("A", 10); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	// The first write of the outage fails (after WriteTimeout) and is
	// spooled; from then on the spool is non-empty and replay is retried.
	if err := record("A", 1); err != nil {
		t.Fatalf("Record as Redis goes down: %v", err)
	}
	if st := rec.Stats(); !st.SpoolPending || st.Spooled != 1 {
		t.Fatalf("after the first failed write: %+v, want one spooled batch", st)
	}
	gate.armed.Store(true)
	select {
	case <-gate.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no replay attempt reached the store")
	}

	// A replay attempt is held inside the Store. Shares must still be
	// acknowledged, through the spool.
	const g, per = 8, 25
	errs := make(chan error, g)
	var wg sync.WaitGroup
	for i := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- record("B"+strconv.Itoa(i), per)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Record while a replay attempt is held: %v", err)
		}
	}
	if in, calls := gate.inside.Load(), gate.calls.Load(); in != 1 || calls != 1 {
		t.Fatalf("%d store calls held, %d reached the gate; want the one attempt still held and no other", in, calls)
	}
	st := rec.Stats()
	if !st.SpoolPending || st.Spooled < 2 || st.Replayed != 0 {
		t.Fatalf("while the attempt is held: %+v, want the new shares spooled and nothing replayed", st)
	}
	if st.Shares != 10+1+g*per || st.Failed != 0 {
		t.Fatalf("acknowledged %d shares (%d failed), want %d", st.Shares, st.Failed, 10+1+g*per)
	}

	srv.Restart()
	gate.armed.Store(false)
	close(gate.release)
	released = true
	waitFor(t, 30*time.Second, "spool drained", func() bool { return !rec.Stats().SpoolPending })
	if err := record("C", 5); err != nil {
		t.Fatalf("Record after the spool drained: %v", err)
	}
	stop()

	if _, err := os.Stat(spool); !os.IsNotExist(err) {
		t.Fatalf("spool not removed after replay: %v", err)
	}
	st = rec.Stats()
	if st.Replayed != st.Spooled {
		t.Fatalf("replayed %d of %d spooled batches", st.Replayed, st.Spooled)
	}
	got, total := ledgerTotals(t, store)
	one := units(t, 1)
	want := map[string]int64{"A": 11, "C": 5}
	for i := range g {
		want["B"+strconv.Itoa(i)] = per
	}
	if len(got) != len(want) {
		t.Fatalf("ledger has %d addresses, want %d: %v", len(got), len(want), got)
	}
	var n int64
	for a, k := range want {
		n += k
		if w := new(big.Int).Mul(one, big.NewInt(k)); got[a] == nil || got[a].Cmp(w) != 0 {
			t.Fatalf("ledger[%s] = %v, want %v", a, got[a], w)
		}
	}
	if w := new(big.Int).Mul(one, big.NewInt(n)); total.Cmp(w) != 0 {
		t.Fatalf("round total %v, want %v", total, w)
	}
	ps, err := store.PoolStats(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if ps.Accepted != n {
		t.Fatalf("pool accepted %d, want %d", ps.Accepted, n)
	}
}
