//go:build e2e

package stratum_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/blocks"
	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/blocktemplate/bitcoind"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
	"github.com/lode-pool/lode/stratum"
)

// cpuminerDifficulty is the fixed share difficulty of the cpuminer test:
// one thread of cpuminer 2.5.1 hashes 5–8 MH/s here, so about 100–180
// shares per second (thousands per minute). On regtest every share is also
// a block.
const cpuminerDifficulty = 1e-5

// TestCPUMinerFixedDifficulty runs a real Stratum client nobody here wrote,
// cpuminer 2.5.1 (./bin/minerd, installed by scripts/install-deps.sh), at a
// fixed low difficulty against a real btcd regtest node and the real Redis
// share ledger: every share it submits is accepted except those made stale
// by a block (here, mostly the pool's own: every share is a block on
// regtest), none of it leads to a ban, and every accepted share is in Redis.
// The run lasts LODE_CPUMINER_SECONDS (default 15; bench/README.md gives the
// 60 s command); LODE_CPUMINER_DIFFICULTY overrides the difficulty.
func TestCPUMinerFixedDifficulty(t *testing.T) {
	minerd := filepath.Join(testenv.RepoRoot(), "bin", "minerd")
	if _, err := os.Stat(minerd); err != nil {
		t.Fatalf("cpuminer not found at %s (scripts/install-deps.sh installs it; make test runs it): %v", minerd, err)
	}
	seconds, diff := 15, cpuminerDifficulty
	if v := os.Getenv("LODE_CPUMINER_DIFFICULTY"); v != "" {
		d, err := strconv.ParseFloat(v, 64)
		if err != nil || !(d > 0) {
			t.Fatalf("LODE_CPUMINER_DIFFICULTY=%q", v)
		}
		diff = d
	}
	if v := os.Getenv("LODE_CPUMINER_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 600 {
			t.Fatalf("LODE_CPUMINER_SECONDS=%q: want 1..600", v)
		}
		seconds = n
	}
	node := testenv.StartBtcd(t)
	rs := testenv.StartRedis(t)
	log := zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds)*time.Second+3*time.Minute)
	defer cancel()

	rpc, err := bitcoind.New(bitcoind.Config{URL: node.RPCURL(), User: node.User, Password: node.Pass}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer rpc.Close()
	_, pub := btcec.PrivKeyFromBytes([]byte("lode cpuminer test pool key 32by"))
	poolAddr, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(pub.SerializeCompressed()), node.Params)
	if err != nil {
		t.Fatal(err)
	}
	builder, err := blocktemplate.NewBuilder(blocktemplate.Config{Network: node.Params, PayoutAddress: poolAddr.EncodeAddress(), PoolTag: "/lode-cpuminer/"})
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := blocktemplate.NewManager(blocktemplate.ManagerConfig{Source: rpc, Builder: builder, PollInterval: 50 * time.Millisecond,
		RefreshInterval: -1, Logger: log.Named("manager")})
	if err != nil {
		t.Fatal(err)
	}
	val, err := shares.New(shares.Config{})
	if err != nil {
		t.Fatal(err)
	}
	submitter, err := blocks.NewSubmitter(blocks.SubmitterConfig{
		Nodes:       []blocks.NamedNode{{Name: "btcd", Node: rpc}},
		JournalPath: filepath.Join(t.TempDir(), "blocks.journal"),
		Logger:      log.Named("blocks"),
	})
	if err != nil {
		t.Fatal(err)
	}
	store, err := redisstore.Connect(ctx, redisstore.ConnectConfig{Addr: rs.Addr, Prefix: "cpuminer"})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Client().Close()
	rec, err := ledger.New(ledger.Config{SpoolPath: filepath.Join(t.TempDir(), "shares.spool"), MinWindow: 100,
		Logger: log.Named("ledger")}, store)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := stratum.New(stratum.Config{
		Ports:      []stratum.Port{{Address: "127.0.0.1:0", StartDifficulty: diff, MinDifficulty: diff, MaxDifficulty: diff}},
		Network:    node.Params,
		InstanceID: []byte{3},
		Jobs:       mgr,
		Validator:  val,
		Blocks:     submitter,
		BlockFound: mgr,
		Recorder:   rec,
		Logger:     log.Named("stratum"),
		Vardiff:    stratum.Vardiff{Disabled: true},
		// Rejects reach the worker's statistics as cmd/lode wires them.
		Observer: stratum.ObserverFunc(func(r stratum.Rejection) {
			if r.Address != "" && r.Code == 21 {
				rec.RecordReject(r.Worker, r.Address, ledger.ReasonStale)
			}
		}),
		// The strictest ban policy: the lode.example.yaml thresholds with
		// IP bans on.
		Ban: stratum.Ban{Window: 10 * time.Minute, MinShares: 100, RejectRatio: 0.5, Duration: time.Hour, IP: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	runCtx, stop := context.WithCancel(ctx)
	recCtx, stopRec := context.WithCancel(context.Background())
	recDone := make(chan error, 1)
	go func() { recDone <- rec.Run(recCtx) }()
	wg.Add(3)
	go func() { defer wg.Done(); _ = mgr.Run(runCtx) }()
	go func() { defer wg.Done(); srv.Follow(runCtx, mgr.Subscribe(runCtx)) }()
	go func() {
		defer wg.Done()
		if err := srv.Run(runCtx); err != nil {
			t.Errorf("server: %v", err)
		}
	}()
	stopped := false
	stopAll := func() {
		if stopped {
			return
		}
		stopped = true
		stop()
		wg.Wait()
		stopRec()
		if err := <-recDone; err != nil {
			t.Errorf("ledger: %v", err)
		}
	}
	defer stopAll()
	waitFor(t, "first job", func() bool { return mgr.Current() != nil })
	startHeight := node.Height()

	user := node.Address.EncodeAddress() + ".cpuminer"
	cmd := exec.CommandContext(ctx, minerd, "-a", "sha256d", "-o", "stratum+tcp://"+srv.Addrs()[0].String(),
		"-u", user, "-p", "x", "-t", "1", "-q", "-D", "-r", "0")
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type tally struct {
		accepted, total int64
		reasons         map[string]int
		lines           []string
	}
	res := make(chan tally, 1)
	acceptedRe := regexp.MustCompile(`accepted: (\d+)/(\d+)`)
	reasonRe := regexp.MustCompile(`reject reason: (.*)$`)
	go func() {
		tl := tally{reasons: map[string]int{}}
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if m := acceptedRe.FindStringSubmatch(line); m != nil {
				tl.accepted, _ = strconv.ParseInt(m[1], 10, 64)
				tl.total, _ = strconv.ParseInt(m[2], 10, 64)
			} else if m := reasonRe.FindStringSubmatch(line); m != nil {
				tl.reasons[m[1]]++
			}
			if len(tl.lines) < 40 {
				tl.lines = append(tl.lines, line)
			}
		}
		res <- tl
	}()
	time.Sleep(time.Duration(seconds) * time.Second) // the run's length, not an assertion
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	tl := <-res
	st := srv.Stats()
	// Shares in flight when minerd stopped are still recorded; wait for
	// every accepted share to be answered by the ledger.
	waitFor(t, "ledger caught up", func() bool { return rec.Stats().Shares >= st.Accepted.Load() && rec.Queued() == 0 })
	stopAll()

	var stale uint64
	for i := range st.StaleByAge {
		stale += st.StaleByAge[i].Load()
	}
	rejected := make([]uint64, len(st.Rejected))
	for i := range st.Rejected {
		rejected[i] = st.Rejected[i].Load()
	}
	t.Logf("cpuminer: accepted %d of %d (reject reasons %v); server: accepted %d, rejected by code 20..25 %v, stale of known jobs %d, "+
		"blocks %d (confirmed %d), height %d → %d, pipeline stalls %d",
		tl.accepted, tl.total, tl.reasons, st.Accepted.Load(), rejected, stale, st.Blocks.Load(), st.BlocksConfirmed.Load(),
		startHeight, node.Height(), st.PipelineStalls.Load())
	if tl.total < 100 {
		t.Fatalf("cpuminer submitted %d shares in %d s; the run proves nothing (output:\n%s)", tl.total, seconds, joinLines(tl.lines))
	}
	for code, n := range rejected {
		if code+20 != 21 && n != 0 {
			t.Errorf("%d shares rejected with code %d; only stale shares (21) may be rejected", n, code+20)
		}
	}
	if rejected[1] != stale {
		t.Errorf("%d shares rejected as stale, but only %d were for jobs this server sent", rejected[1], stale)
	}
	for reason := range tl.reasons {
		if reason != "Job not found" {
			t.Errorf("cpuminer saw reject reason %q", reason)
		}
	}
	if n := st.ClosedBy(stratum.CloseBanned); n != 0 {
		t.Fatalf("%d connections banned", n)
	}
	if n := tl.total - tl.accepted; uint64(n) > rejected[1] {
		t.Errorf("cpuminer counted %d rejects, the server %d", n, rejected[1])
	}
	if uint64(tl.accepted) > st.Accepted.Load() {
		t.Errorf("cpuminer counted %d accepted, the server %d", tl.accepted, st.Accepted.Load())
	}
	ps, err := store.PoolStats(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if uint64(ps.Accepted) != st.Accepted.Load() {
		t.Errorf("Redis holds %d accepted shares, the server accepted %d", ps.Accepted, st.Accepted.Load())
	}
	if uint64(ps.Stale) != stale {
		t.Errorf("Redis counts %d stale shares, the server %d", ps.Stale, stale)
	}
}

func joinLines(ls []string) string {
	s := ""
	for _, l := range ls {
		s += l + "\n"
	}
	return s
}
