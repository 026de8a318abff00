package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/window"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// gatedStore is the real store behind a switch: while held, a batch waits
// before it is written (a batch in flight); while down, every call fails as
// if Redis did not answer this process (an outage seen by one instance).
type gatedStore struct {
	*Store
	held chan struct{} // non-nil: ApplyBatch waits until it is closed
	down atomic.Bool
	mu   sync.Mutex
	// entered is closed when a batch reaches the gate.
	entered chan struct{}
}

var errDown = errors.New("redis unreachable (test)")

func (g *gatedStore) ApplyBatch(ctx context.Context, b *ledger.Batch, limit string) error {
	if g.down.Load() {
		return errDown
	}
	g.mu.Lock()
	held, entered := g.held, g.entered
	g.mu.Unlock()
	if held != nil && b.Kind != ledger.BatchStats && len(b.Shares) > 0 {
		if entered != nil {
			close(entered)
			g.mu.Lock()
			g.entered = nil
			g.mu.Unlock()
		}
		<-held
	}
	return g.Store.ApplyBatch(ctx, b, limit)
}

func (g *gatedStore) HighWater(ctx context.Context, instance string) (uint64, error) {
	if g.down.Load() {
		return 0, errDown
	}
	return g.Store.HighWater(ctx, instance)
}

// seqDone records the outcome and sequence of the shares it follows.
type seqDone struct {
	mu   sync.Mutex
	seqs map[uint64]uint64
	errs map[uint64]error
	done map[uint64]chan struct{}
}

func newSeqDone() *seqDone {
	return &seqDone{seqs: map[uint64]uint64{}, errs: map[uint64]error{}, done: map[uint64]chan struct{}{}}
}

func (d *seqDone) ShareDone(token uint64, err error) { d.ShareDoneSeq(token, 0, err) }

func (d *seqDone) ShareDoneSeq(token, seq uint64, err error) {
	d.mu.Lock()
	d.seqs[token], d.errs[token] = seq, err
	ch := d.done[token]
	d.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

func (d *seqDone) watch(token uint64) chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	ch := make(chan struct{})
	d.done[token] = ch
	return ch
}

var _ ledger.SeqDone = (*seqDone)(nil)

type ledgerInstance struct {
	t     *testing.T
	rec   *ledger.Recorder
	store *gatedStore
	done  *seqDone
	token uint64
}

// startInstance runs a real share recorder named name over s. Its window
// size (50 difficulty) is above the snapshots' N (5): the tests look at the
// boundary, not at trimming.
func startInstance(t *testing.T, s *Store, name string, spool bool) *ledgerInstance {
	t.Helper()
	g := &gatedStore{Store: s}
	cfg := ledger.Config{Instance: name, MinWindow: 50, RetryInterval: 20 * time.Millisecond, Logger: zaptest.NewLogger(t).Named(name)}
	if spool {
		cfg.SpoolPath = filepath.Join(t.TempDir(), "shares.spool")
	}
	rec, err := ledger.New(cfg, g)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = rec.Run(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })
	return &ledgerInstance{t: t, rec: rec, store: g, done: newSeqDone()}
}

// record queues shares (address, difficulty, block) and returns the token
// of the last one.
func (in *ledgerInstance) record(addr string, diff float64, block bool) (uint64, chan struct{}) {
	in.token++
	ch := in.done.watch(in.token)
	sh := shares.Share{Worker: addr + ".w", Address: addr, Difficulty: diff, Time: time.Now(), Block: block}
	if err := in.rec.RecordAsync(&sh, in.done, in.token); err != nil {
		in.t.Fatal(err)
	}
	return in.token, ch
}

func awaitClosed(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func (in *ledgerInstance) seqOf(token uint64) string {
	in.done.mu.Lock()
	defer in.done.mu.Unlock()
	if err := in.done.errs[token]; err != nil {
		in.t.Fatalf("share %d: %v", token, err)
	}
	return fmt.Sprintf("%s:%d", in.rec.Instance(), in.done.seqs[token])
}

func pollCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLedgerSnapshotWithBatchInFlight: two recorder instances (stratum
// processes) on one Redis. B's batch is in flight (written after A's) when
// a share of A finds a block. The snapshot, taken after both and more
// batches landed, is the window as it stood right after the finding share's
// batch: the last N units up to and including the finding share, by the
// order Redis applied the batches; B's in-flight batch is not in it.
func TestLedgerSnapshotWithBatchInFlight(t *testing.T) {
	s, _ := blocksTestStore(t)
	ctx := context.Background()
	a := startInstance(t, s, "instA", false)
	b := startInstance(t, s, "instB", false)
	for i := 0; i < 40; i++ {
		_, ca := a.record(fmt.Sprintf("addr%d", i%3), 0.25+float64(i%4)/8, false)
		_, cb := b.record(fmt.Sprintf("addr%d", 3+i%2), 0.5, false)
		awaitClosed(t, "shares", ca)
		awaitClosed(t, "shares", cb)
	}
	// B's next batch reaches the store and waits there: in flight.
	hold := make(chan struct{})
	entered := make(chan struct{})
	b.store.mu.Lock()
	b.store.held, b.store.entered = hold, entered
	b.store.mu.Unlock()
	_, inFlight := b.record("addrLate", 3, false)
	awaitClosed(t, "B's batch to be in flight", entered)
	_, c1 := a.record("addr1", 0.5, false)
	finder, cf := a.record("addr2", 0.125, true)
	awaitClosed(t, "the finding share", cf)
	awaitClosed(t, "A's shares", c1)
	finding := a.seqOf(finder)
	n := ledger.DiffToUnits(5)
	wantContrib, wantLeaves, wantTotal := windowAt(t, s, n)
	close(hold)
	awaitClosed(t, "B's in-flight batch", inFlight)
	for i := 0; i < 5; i++ {
		_, ca := a.record("addr0", 1, false)
		_, cb := b.record("addr4", 1, false)
		awaitClosed(t, "later shares", ca)
		awaitClosed(t, "later shares", cb)
	}
	h := testHash(77)
	rec := windowRecorder(t, s, 5)
	blk, err := rec.BlockFound(ctx, payouts.FoundBlock{Hash: h, Height: 77, NetworkDifficulty: 1e-12, FindingSeq: finding})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.Contributions(ctx, h)
	if fmt.Sprint(got) != fmt.Sprint(wantContrib) || !reflect.DeepEqual(archived(t, s, h), wantLeaves) {
		t.Fatalf("snapshot\n got %v\nwant %v", got, wantContrib)
	}
	for _, c := range got {
		if c.Address == "addrLate" {
			t.Fatal("the batch in flight at the block is in its window")
		}
	}
	if blk.WindowBoundary != payouts.BoundaryExact || blk.WindowUnits.Cmp(wantTotal) != 0 || wantTotal.Cmp(n) != 0 {
		t.Fatalf("record %+v (want %s units)", blk, n)
	}
	if l := wantLeaves[len(wantLeaves)-1]; l.Address != "addr2" || l.LastSeq != finding {
		t.Fatalf("newest leaf %+v, want the finding share %s's", l, finding)
	}
}

// TestLedgerBlockShareClosesBatch: shares queued together (P, the finding
// share F, then X, all of one address) would go into one batch and one
// window entry; the finding share closes its batch, so X is in the next
// one and the window ending at F holds P and F but not X.
func TestLedgerBlockShareClosesBatch(t *testing.T) {
	s, _ := blocksTestStore(t)
	ctx := context.Background()
	a := startInstance(t, s, "instA", false)
	hold := make(chan struct{})
	entered := make(chan struct{})
	a.store.mu.Lock()
	a.store.held, a.store.entered = hold, entered
	a.store.mu.Unlock()
	_, cd := a.record("addrD", 1, false) // its batch waits at the store
	awaitClosed(t, "a batch in flight", entered)
	_, cp := a.record("addr2", 0.5, false)
	finder, cf := a.record("addr2", 0.25, true)
	_, cx := a.record("addr2", 1, false)
	a.store.mu.Lock()
	a.store.held = nil
	a.store.mu.Unlock()
	close(hold)
	for _, c := range []chan struct{}{cd, cp, cf, cx} {
		awaitClosed(t, "shares", c)
	}
	h := testHash(99)
	blk, err := windowRecorder(t, s, 1000).BlockFound(ctx, payouts.FoundBlock{Hash: h, Height: 99, NetworkDifficulty: 1e-12, FindingSeq: a.seqOf(finder)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.Contributions(ctx, h)
	if fmt.Sprint(got) != "[{addr2 75000000} {addrD 100000000}]" || blk.WindowUnits.Int64() != 175_000_000 {
		t.Fatalf("window ending at the finding share: %v (%v units); X must not be in it", got, blk.WindowUnits)
	}
}

// TestLedgerSnapshotAcrossOutage: instance A loses Redis and spools its
// shares, the finding share among them, while B keeps writing. A snapshot
// attempted meanwhile refuses (nothing recorded). Once A's spool is
// replayed the snapshot is the window as it stood right after the finding
// share's batch was applied, whatever B and A wrote after.
func TestLedgerSnapshotAcrossOutage(t *testing.T) {
	s, _ := blocksTestStore(t)
	ctx := context.Background()
	a := startInstance(t, s, "instA", true)
	b := startInstance(t, s, "instB", false)
	for i := 0; i < 20; i++ {
		_, ca := a.record("addrA", 0.5, false)
		_, cb := b.record("addrB", 0.5, false)
		awaitClosed(t, "shares", ca)
		awaitClosed(t, "shares", cb)
	}
	a.store.down.Store(true)
	_, c1 := a.record("addrA", 0.75, false)
	finder, cf := a.record("addrC", 0.25, true)
	awaitClosed(t, "spooled shares", c1)
	awaitClosed(t, "the spooled finding share", cf)
	finding := a.seqOf(finder)
	if !a.rec.Stats().SpoolPending {
		t.Fatal("A's shares were not spooled")
	}
	for i := 0; i < 5; i++ { // B during A's outage: before the finding share
		_, cb := b.record("addrB", 0.25, false)
		awaitClosed(t, "B", cb)
	}
	h := testHash(88)
	rec := windowRecorder(t, s, 5)
	fb := payouts.FoundBlock{Hash: h, Height: 88, NetworkDifficulty: 1e-12, FindingSeq: finding}
	if _, err := rec.BlockFound(ctx, fb); !errors.Is(err, payouts.ErrFindingShareNotApplied) {
		t.Fatalf("snapshot with the finding share in the spool: %v", err)
	}
	// Hold B so the window right after the replay can be read.
	hold := make(chan struct{})
	b.store.mu.Lock()
	b.store.held = hold
	b.store.mu.Unlock()
	a.store.down.Store(false)
	pollCond(t, "A's spool replay", func() bool { return !a.rec.Stats().SpoolPending })
	wantContrib, wantLeaves, _ := windowAt(t, s, ledger.DiffToUnits(5))
	close(hold)
	for i := 0; i < 5; i++ {
		_, ca := a.record("addrA", 1, false)
		_, cb := b.record("addrB", 1, false)
		awaitClosed(t, "later shares", ca)
		awaitClosed(t, "later shares", cb)
	}
	blk, err := rec.BlockFound(ctx, fb)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.Contributions(ctx, h)
	if fmt.Sprint(got) != fmt.Sprint(wantContrib) || !reflect.DeepEqual(archived(t, s, h), wantLeaves) {
		t.Fatalf("snapshot\n got %v\nwant %v", got, wantContrib)
	}
	if blk.WindowBoundary != payouts.BoundaryExact {
		t.Fatalf("boundary %q", blk.WindowBoundary)
	}
	var leaves []window.Leaf
	_ = s.WindowLeaves(ctx, h, func(l window.Leaf) error { leaves = append(leaves, l); return nil })
	sum := new(big.Int)
	for _, l := range leaves {
		u, _ := window.ParseUnits(l.Units)
		sum.Add(sum, u)
	}
	if sum.Cmp(blk.WindowUnits) != 0 {
		t.Fatalf("archive sums to %s, record says %s", sum, blk.WindowUnits)
	}
}
