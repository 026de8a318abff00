package bitcoind

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/internal/testenv"
)

// These tests drive blocktemplate.Manager with a real btcd and a real
// Bitcoin Core through Client.

func testBuilder(t *testing.T, node testenv.Node) *blocktemplate.Builder {
	t.Helper()
	b, err := blocktemplate.NewBuilder(blocktemplate.Config{Network: node.Chain(), PayoutAddress: payoutAddress(t).EncodeAddress()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// startManager runs a Manager until the test ends and returns it with a
// subscription.
func startManager(t *testing.T, cfg blocktemplate.ManagerConfig) (*blocktemplate.Manager, <-chan *blocktemplate.Job) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t)
	}
	if cfg.RetryMin == 0 {
		cfg.RetryMin = 20 * time.Millisecond
	}
	m, err := blocktemplate.NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return m, m.Subscribe(ctx)
}

func nextJob(t *testing.T, ch <-chan *blocktemplate.Job) *blocktemplate.Job {
	t.Helper()
	select {
	case j, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed")
		}
		return j
	case <-time.After(30 * time.Second):
		t.Fatal("no job within 30 s")
		return nil
	}
}

// checkTipJob checks a clean job for a new tip made the old job stale.
func checkTipJob(t *testing.T, m *blocktemplate.Manager, old, j *blocktemplate.Job, tip chainhash.Hash) {
	t.Helper()
	if !j.CleanJobs || j.PrevHash != tip || j.Height != old.Height+1 {
		t.Fatalf("job after new block: clean=%v prev=%s height=%d, want clean, %s, %d", j.CleanJobs, j.PrevHash, j.Height, tip, old.Height+1)
	}
	if _, ok := m.Lookup(old.ID); ok {
		t.Error("job of the previous tip is still valid")
	}
	if got, ok := m.Lookup(j.ID); !ok || got != j {
		t.Error("new job not found")
	}
	if m.Current() != j {
		t.Error("Current is not the new job")
	}
	if j.TipSeenAt.IsZero() || j.TipSeenAt.After(j.CreatedAt) {
		t.Errorf("TipSeenAt %v, CreatedAt %v", j.TipSeenAt, j.CreatedAt)
	}
}

func TestManagerPollSeesExternalBlock(t *testing.T) {
	nodes.ForEach(t, func(t *testing.T, node testenv.Node) {
		c := newClient(t, node)
		m, jobs := startManager(t, blocktemplate.ManagerConfig{
			Source: c, Builder: testBuilder(t, node), PollInterval: 50 * time.Millisecond, RefreshInterval: -1,
		})
		first := nextJob(t, jobs)
		if !first.CleanJobs || first.Height != node.Height()+1 {
			t.Fatalf("first job clean=%v height=%d, node at %d", first.CleanJobs, first.Height, node.Height())
		}
		tip := node.Generate(1)[0]
		checkTipJob(t, m, first, nextJob(t, jobs), *tip)
	})
}

func TestManagerLongPollSeesExternalBlock(t *testing.T) {
	nodes.ForEach(t, func(t *testing.T, node testenv.Node) {
		c := newClient(t, node)
		m, jobs := startManager(t, blocktemplate.ManagerConfig{
			Source: c, Builder: testBuilder(t, node), PollInterval: -1, RefreshInterval: -1, LongPoll: true,
		})
		first := nextJob(t, jobs)
		// Polling and refresh are off: only the long poll can bring this job.
		tip := node.Generate(1)[0]
		checkTipJob(t, m, first, nextJob(t, jobs), *tip)
	})
}

func TestManagerRefresh(t *testing.T) {
	nodes.ForEach(t, testManagerRefresh)
}

func testManagerRefresh(t *testing.T, node testenv.Node) {
	c := newClient(t, node)
	ctx := testCtx(t)
	m, jobs := startManager(t, blocktemplate.ManagerConfig{
		Source: c, Builder: testBuilder(t, node), PollInterval: -1, RefreshInterval: -1, MaxJobs: 2,
	})
	first := nextJob(t, jobs)
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	second := nextJob(t, jobs)
	if second.CleanJobs || second.PrevHash != first.PrevHash || second.ID == first.ID {
		t.Fatalf("refresh job clean=%v prev=%s id=%s", second.CleanJobs, second.PrevHash, second.ID)
	}
	if _, ok := m.Lookup(first.ID); !ok {
		t.Error("older job of the same tip is not valid")
	}
	if !second.TipSeenAt.Equal(first.TipSeenAt) {
		t.Error("refresh job changed TipSeenAt")
	}
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	nextJob(t, jobs)
	if _, ok := m.Lookup(first.ID); ok {
		t.Error("job beyond MaxJobs=2 still valid")
	}

	// The refresh timer does the same on its own.
	_, timed := startManager(t, blocktemplate.ManagerConfig{
		Source: c, Builder: testBuilder(t, node), PollInterval: -1, RefreshInterval: 100 * time.Millisecond,
	})
	a := nextJob(t, timed)
	b := nextJob(t, timed)
	if !a.CleanJobs || b.CleanJobs || b.PrevHash != a.PrevHash {
		t.Fatalf("timed refresh: first clean=%v, second clean=%v", a.CleanJobs, b.CleanJobs)
	}
}

// TestManagerOwnBlock: after the pool's own block is accepted, NewBlockFound
// issues the next job at once (polling is off, so nothing else could).
func TestManagerOwnBlock(t *testing.T) {
	nodes.ForEach(t, testManagerOwnBlock)
}

func testManagerOwnBlock(t *testing.T, node testenv.Node) {
	c := newClient(t, node)
	ctx := testCtx(t)
	m, jobs := startManager(t, blocktemplate.ManagerConfig{
		Source: c, Builder: testBuilder(t, node), PollInterval: -1, RefreshInterval: -1,
	})
	job := nextJob(t, jobs)
	en1, en2 := []byte{0, 0, 0, 1}, make([]byte, 8)
	block, err := job.Block(en1, en2, mineJob(t, job, en1, en2, false))
	if err != nil {
		t.Fatal(err)
	}
	if reason, err := c.SubmitBlock(ctx, block); err != nil || reason != "" {
		t.Fatalf("submit: %q %v", reason, err)
	}
	if err := m.NewBlockFound(ctx); err != nil {
		t.Fatal(err)
	}
	checkTipJob(t, m, job, nextJob(t, jobs), block.BlockHash())
}

// flakySource wraps the real node and fails getblocktemplate on demand: a
// node error the test cannot provoke in a node at will.
type flakySource struct {
	blocktemplate.TemplateSource
	fail  atomic.Bool
	calls atomic.Int64
}

func (f *flakySource) GetBlockTemplate(ctx context.Context, lp string) ([]byte, error) {
	f.calls.Add(1)
	if f.fail.Load() {
		return nil, errors.New("injected node failure")
	}
	return f.TemplateSource.GetBlockTemplate(ctx, lp)
}

func TestManagerKeepsLastJobOnFailure(t *testing.T) {
	nodes.ForEach(t, testManagerKeepsLastJobOnFailure)
}

func testManagerKeepsLastJobOnFailure(t *testing.T, node testenv.Node) {
	c := newClient(t, node)
	ctx := testCtx(t)
	src := &flakySource{TemplateSource: c}
	m, jobs := startManager(t, blocktemplate.ManagerConfig{
		Source: src, Builder: testBuilder(t, node), PollInterval: 50 * time.Millisecond, RefreshInterval: -1,
	})
	first := nextJob(t, jobs)
	src.fail.Store(true)
	if err := m.Refresh(ctx); err == nil {
		t.Fatal("refresh with a failing node succeeded")
	}
	if m.Current() != first {
		t.Fatal("last good job replaced after a failure")
	}
	if _, ok := m.Lookup(first.ID); !ok {
		t.Fatal("last good job no longer valid")
	}
	tip := node.Generate(1)[0]
	// The poll sees the block, the fetch fails and is retried with backoff.
	before := src.calls.Load()
	deadline := time.Now().Add(30 * time.Second)
	for src.calls.Load() < before+3 {
		if time.Now().After(deadline) {
			t.Fatal("no retries after the node failed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m.Current() != first {
		t.Fatal("job changed while the node fails")
	}
	src.fail.Store(false)
	checkTipJob(t, m, first, nextJob(t, jobs), *tip)
}

// TestManagerZMQ: Core's hashblock notification alone (polling and long
// polling off) brings the new tip's job.
func TestManagerZMQ(t *testing.T) {
	node := nodes.Node(t, testenv.KindCore)
	c := newClient(t, node)
	m, jobs := startManager(t, blocktemplate.ManagerConfig{
		Source: c, Builder: testBuilder(t, node), PollInterval: -1, RefreshInterval: -1, ZMQAddress: node.ZMQHashBlock(),
	})
	first := nextJob(t, jobs)
	// A ZMQ subscription takes effect a moment after it is made; blocks
	// mined before that are not announced to it.
	j, tip := generateUntilJob(t, node, jobs)
	if !j.CleanJobs || j.PrevHash != tip || j.Height <= first.Height {
		t.Fatalf("job after zmq: clean=%v prev=%s height=%d", j.CleanJobs, j.PrevHash, j.Height)
	}
	// Subscribed now: the next block's job comes from its notice.
	next := *node.Generate(1)[0]
	checkTipJob(t, m, j, nextJob(t, jobs), next)
}

// generateUntilJob mines a block at a time until a job for the latest one
// arrives, and returns that job and block.
func generateUntilJob(t *testing.T, node testenv.Node, jobs <-chan *blocktemplate.Job) (*blocktemplate.Job, chainhash.Hash) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		tip := *node.Generate(1)[0]
		wait := time.After(500 * time.Millisecond)
		for waiting := true; waiting; {
			select {
			case j := <-jobs:
				if j.PrevHash == tip {
					return j, tip
				}
			case <-wait:
				waiting = false
			}
		}
	}
	t.Fatal("no job for a new block within 30 s")
	return nil, chainhash.Hash{}
}

// deafSource drops the longpollid, as a node without long-poll support
// would: the node then answers at once with the same id.
type deafSource struct{ blocktemplate.TemplateSource }

func (d deafSource) GetBlockTemplate(ctx context.Context, _ string) ([]byte, error) {
	return d.TemplateSource.GetBlockTemplate(ctx, "")
}

func TestManagerLongPollUnsupported(t *testing.T) {
	nodes.ForEach(t, testManagerLongPollUnsupported)
}

func testManagerLongPollUnsupported(t *testing.T, node testenv.Node) {
	c := newClient(t, node)
	core, logs := observer.New(zap.DebugLevel)
	m, jobs := startManager(t, blocktemplate.ManagerConfig{
		Source: deafSource{c}, Builder: testBuilder(t, node), PollInterval: -1, RefreshInterval: -1, LongPoll: true,
		Logger: zap.New(core),
	})
	first := nextJob(t, jobs)
	deadline := time.Now().Add(30 * time.Second)
	for logs.FilterMessage("node ignores longpollid; long polling disabled").Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("long polling not disabled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case j := <-jobs:
		t.Fatalf("unexpected job %s (clean=%v) from an ignored long poll", j.ID, j.CleanJobs)
	default:
	}
	if m.Current() != first {
		t.Fatal("current job changed")
	}
}

// lpObserver passes every call to the node and reports the longpollid of
// each long poll as it starts.
type lpObserver struct {
	blocktemplate.TemplateSource
	started chan string
}

func (o *lpObserver) GetBlockTemplate(ctx context.Context, longPollID string) ([]byte, error) {
	if longPollID != "" {
		select {
		case o.started <- longPollID:
		default: // the test reads only the ones it waits for
		}
	}
	return o.TemplateSource.GetBlockTemplate(ctx, longPollID)
}

// TestManagerOneJobPerTip is issue 9 item 3: with every notice the node
// offers on at once (Core: ZMQ hashblock, long poll and polling; btcd: long
// poll and polling), and NewBlockFound after the pool's own blocks, a new
// block gives exactly one job. The long poll that
// was waiting when the block arrived returns the same tip that ZMQ or the
// poll already brought; that must not publish a second, non-clean job.
func TestManagerOneJobPerTip(t *testing.T) {
	nodes.ForEach(t, func(t *testing.T, node testenv.Node) {
		c := newClient(t, node)
		ctx := testCtx(t)
		obs := &lpObserver{TemplateSource: c, started: make(chan string, 64)}
		m, jobs := startManager(t, blocktemplate.ManagerConfig{
			Source: obs, Builder: testBuilder(t, node), PollInterval: 50 * time.Millisecond, RefreshInterval: -1,
			LongPoll: true, ZMQAddress: node.ZMQHashBlock(),
		})
		prev := nextJob(t, jobs)
		for i := range 10 {
			// Blocks from elsewhere, and the pool's own: submitted, then
			// NewBlockFound as the pool does, racing the long poll.
			var tip chainhash.Hash
			if i%2 == 0 {
				tip = *node.Generate(1)[0]
			} else {
				en1, en2 := []byte{0, 0, 0, byte(i)}, make([]byte, 8)
				block, err := prev.Block(en1, en2, mineJob(t, prev, en1, en2, false))
				if err != nil {
					t.Fatal(err)
				}
				if reason, err := c.SubmitBlock(ctx, block); err != nil || reason != "" {
					t.Fatalf("submit: %q %v", reason, err)
				}
				if err := m.NewBlockFound(ctx); err != nil {
					t.Fatal(err)
				}
				tip = block.BlockHash()
			}
			j := nextJob(t, jobs)
			checkTipJob(t, m, prev, j, tip)
			// Wait until a long poll starts on the new tip (its id begins
			// with the tip's hash on both nodes): the one that was waiting
			// has returned and the Manager has taken its template.
			deadline := time.After(30 * time.Second)
			for waiting := true; waiting; {
				select {
				case id := <-obs.started:
					waiting = !strings.HasPrefix(id, tip.String())
				case <-deadline:
					t.Fatalf("block %d: no long poll on the new tip", i)
				}
			}
			// A refresh is handled after everything the Manager took
			// before it: its job must be the next one published.
			if err := m.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			refreshed := m.Current()
			if got := nextJob(t, jobs); got != refreshed {
				t.Fatalf("block %d: a second job (clean=%v, prev %s) for the same tip before the refresh", i, got.CleanJobs, got.PrevHash)
			}
			prev = refreshed
		}
	})
}
