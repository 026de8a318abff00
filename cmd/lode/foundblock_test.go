package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/lode-pool/lode/api"
	"github.com/lode-pool/lode/bench/miner"
	"github.com/lode-pool/lode/blocks"
	"github.com/lode-pool/lode/blocktemplate/bitcoind"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/payouts"
)

// outageEnv is a stratum+api lode process whose Redis is down while the
// pool finds blocks.
type outageEnv struct {
	node    *testenv.Btcd
	redis   *testenv.Redis
	cfgPath string
	journal string
	stratum string
	api     *daemonEnv // only for waitFor/get
	worker  string
}

func newOutageEnv(t *testing.T) *outageEnv {
	t.Helper()
	node := testenv.StartBtcd(t)
	node.Generate(1)
	rs := testenv.StartRedis(t)
	rs.Stop() // Restart brings it back on the same port
	dir := t.TempDir()
	e := &outageEnv{node: node, redis: rs, stratum: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
		journal: filepath.Join(dir, "spool", "blocks.journal"), worker: node.Address.EncodeAddress() + ".rig"}
	apiAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.api = &daemonEnv{api: "http://" + apiAddr}
	cfg := fmt.Sprintf(`roles: [stratum, api]
`+regtestNodeYAML(t, node, rs.Addr, "fb", "")+`pool: {payout_address: %s, pplns_min_window: 100}
stratum:
  ports:
    - {listen: "%s", start_difficulty: 0.0001, min_difficulty: 0.000001, max_difficulty: 1}
ledger: {spool_dir: %s}
api: {listen: "%s"}
shutdown_timeout: 20s
`, node.Address.EncodeAddress(), e.stratum, filepath.Join(dir, "spool"), apiAddr)
	e.cfgPath = filepath.Join(dir, "lode.yaml")
	if err := os.WriteFile(e.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// start runs lode and waits for its API; the returned stop cancels it and
// checks its exit code.
func (e *outageEnv) start(t *testing.T) (log *syncBuffer, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	log = &syncBuffer{}
	go func() { done <- run(ctx, []string{"-config", e.cfgPath}, nil, io.Discard, log) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("lode exited with %d", code)
			}
		case <-time.After(40 * time.Second):
			t.Error("lode did not stop within 40 s of cancel")
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("lode log:\n%s", log.String())
		}
	})
	e.api.waitFor(t, "API up", 30*time.Second, func() bool {
		select {
		case code := <-done:
			t.Fatalf("lode exited with %d", code)
		default:
		}
		res, err := http.Get(e.api.api + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
	return log, stop
}

// mine has a test miner submit n accepted shares (on regtest at this
// difficulty every share is also a block) and returns the hashes of the
// blocks the pool added to the chain.
func (e *outageEnv) mine(t *testing.T, n int64) []string {
	t.Helper()
	before := e.node.Height()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m, err := miner.Dial(ctx, miner.Config{Address: e.stratum, Username: e.worker, Password: "x"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.Run(ctx, n)
	m.Close()
	if err != nil || st.Accepted != n {
		t.Fatalf("mining: %+v %v", st, err)
	}
	// A block share is answered as soon as it is durable; its block goes
	// to the node beside the reply. Wait for the n blocks to arrive; two
	// shares can be blocks at one height (the second is not taken), so
	// after a bounded wait at least one must have.
	after := e.node.Height()
	for deadline := time.Now().Add(15 * time.Second); after < before+n && time.Now().Before(deadline); after = e.node.Height() {
		time.Sleep(20 * time.Millisecond)
	}
	if after <= before {
		t.Fatalf("the pool found no block (height %d)", after)
	}
	var hashes []string
	for h := before + 1; h <= after; h++ {
		hash, err := e.node.Client().GetBlockHash(h)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, hash.String())
	}
	return hashes
}

// unrecorded lists the journal's accepted-but-unrecorded blocks, hash →
// finder, through a submitter of its own on the daemon's journal.
func (e *outageEnv) unrecorded(t *testing.T) map[string]string {
	t.Helper()
	c, err := bitcoind.New(bitcoind.Config{URL: e.node.RPCURL(), User: e.node.User, Password: e.node.Pass}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := blocks.NewSubmitter(blocks.SubmitterConfig{Nodes: []blocks.NamedNode{{Name: "btcd", Node: c}}, JournalPath: e.journal})
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := s.Unrecorded()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, b := range blocks {
		out[b.Hash.String()] = b.Finder
	}
	return out
}

// waitRecorded waits (bounded) until the API lists every hash exactly once
// with the test worker as finder.
func (e *outageEnv) waitRecorded(t *testing.T, hashes []string) {
	t.Helper()
	var last []api.Block
	e.api.waitFor(t, "the found blocks recorded", 3*time.Minute, func() bool {
		var blocks struct{ Blocks []api.Block }
		if e.api.get(t, "/api/v1/blocks?limit=1000", &blocks) != 200 {
			return false
		}
		last = blocks.Blocks
		seen := map[string]int{}
		for _, b := range blocks.Blocks {
			seen[b.Hash]++
		}
		for _, h := range hashes {
			if seen[h] == 0 {
				return false
			}
		}
		return true
	})
	count := map[string]int{}
	for _, b := range last {
		count[b.Hash]++
		if count[b.Hash] > 1 {
			t.Errorf("block %s listed twice", b.Hash)
		}
	}
	for _, b := range last {
		for _, h := range hashes {
			if b.Hash == h && b.Finder != e.worker {
				t.Errorf("block %s (height %d): finder %q, want %q", h, b.Height, b.Finder, e.worker)
			}
		}
	}
}

// checkExactWindows reads each block's record from Redis: its window must
// end exactly at its finding share (the block journal keeps the share's
// sequence, so a record taken after an outage or a restart is not late).
func (e *outageEnv) checkExactWindows(t *testing.T, hashes []string) {
	t.Helper()
	ctx := context.Background()
	s, err := redisstore.Connect(ctx, redisstore.ConnectConfig{Addr: e.redis.Addr, Prefix: "fb"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Client().Close()
	for _, hs := range hashes {
		h, err := chainhash.NewHashFromStr(hs)
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.Block(ctx, *h)
		if err != nil {
			t.Fatal(err)
		}
		if b.WindowBoundary != payouts.BoundaryExact || b.FindingSeq == "" || b.WindowLastSeq != b.FindingSeq {
			t.Errorf("block %d: boundary %q, finding share %q, window ends at %q; want exact, at the finding share",
				b.Height, b.WindowBoundary, b.FindingSeq, b.WindowLastSeq)
		}
	}
}

// TestFoundBlockRecordedWhenRedisReturns: the pool finds blocks while
// Redis is down; the node has them, their PPLNS snapshots cannot be taken
// and wait in the block journal with their finder; once Redis is back the
// daemon records them.
func TestFoundBlockRecordedWhenRedisReturns(t *testing.T) {
	e := newOutageEnv(t)
	log, stop := e.start(t)
	hashes := e.mine(t, 2)
	// The node has the blocks; their "confirmed" journal lines follow its
	// answer (and may wait behind the finding share's line for the fsync).
	var pending map[string]string
	e.api.waitFor(t, "the blocks journaled as unrecorded with their finder", 30*time.Second, func() bool {
		pending = e.unrecorded(t)
		for _, h := range hashes {
			if f, ok := pending[h]; !ok || f != e.worker {
				return false
			}
		}
		return true
	})
	// The first snapshot attempt runs beside the miner's reply; wait for it
	// to fail before Redis comes back.
	e.api.waitFor(t, "a log line about the failed snapshot", time.Minute, func() bool {
		return strings.Contains(log.String(), "found block not recorded yet")
	})

	e.redis.Restart()
	e.waitRecorded(t, hashes)
	e.api.waitFor(t, "the journal emptied", time.Minute, func() bool { return len(e.unrecorded(t)) == 0 })
	stop()
	e.checkExactWindows(t, hashes)
}

// TestFoundBlockRecordedAfterRestart: the pool finds a block while Redis is
// down and the process stops before it could record it; a new process
// (Redis back) records it, once, with its finder, and with the window ending
// at its finding share (its sequence was journaled with the block).
func TestFoundBlockRecordedAfterRestart(t *testing.T) {
	e := newOutageEnv(t)
	_, stop := e.start(t)
	hashes := e.mine(t, 1)
	stop()
	pending := e.unrecorded(t)
	for _, h := range hashes {
		if f, ok := pending[h]; !ok || f != e.worker {
			t.Fatalf("block %s not journaled as unrecorded with its finder after stop: %v", h, pending)
		}
	}

	e.redis.Restart()
	log, stop := e.start(t)
	e.waitRecorded(t, hashes)
	e.api.waitFor(t, "the journal emptied", time.Minute, func() bool { return len(e.unrecorded(t)) == 0 })
	stop()
	for _, h := range hashes {
		if n := strings.Count(log.String(), h); n == 0 {
			t.Errorf("block %s: no log line of its late record", h)
		}
	}
	if n := strings.Count(log.String(), "found block recorded late"); n != len(hashes) {
		t.Errorf("%d late records logged, want %d", n, len(hashes))
	}
	e.checkExactWindows(t, hashes)
}
