package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/window"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// instanceFeed makes batches the way one recorder instance does: share
// sequences, then the batch sequence above them.
type instanceFeed struct {
	name string
	seq  uint64
}

type testShare struct {
	addr  string
	units int64
}

func (f *instanceFeed) batch(sh []testShare) (*ledger.Batch, []uint64) {
	b := &ledger.Batch{Instance: f.name, Kind: ledger.BatchAccounting}
	var seqs []uint64
	for _, s := range sh {
		f.seq++
		seqs = append(seqs, f.seq)
		b.Shares = append(b.Shares, ledger.Entry{Seq: f.seq, Units: strconv.FormatInt(s.units, 10),
			Share: shares.Share{Worker: s.addr + ".w", Address: s.addr, Difficulty: float64(s.units) / 1e8, Time: time.Now()}})
	}
	f.seq++
	b.Seq = f.seq
	return b, seqs
}

// found is batch with its last share a block (the ledger closes a batch at
// a block share; the accounting script seals the window's slice there).
func (f *instanceFeed) found(sh []testShare) (*ledger.Batch, []uint64) {
	b, seqs := f.batch(sh)
	b.Shares[len(b.Shares)-1].Share.Block = true
	return b, seqs
}

func randomShares(r *rand.Rand, n int) []testShare {
	addrs := []string{"addrA", "addrB", "addrC", "addrD", "addrE"}
	out := make([]testShare, n)
	for i := range out {
		out[i] = testShare{addrs[r.IntN(len(addrs))], 1 + r.Int64N(1_000_000)}
	}
	return out
}

// liveEntries reads the live PPLNS window's entries, newest first (the open
// slice, then the sealed slices; in a slice, the last address first).
func liveEntries(t *testing.T, s *Store) []window.Entry {
	t.Helper()
	ctx := context.Background()
	var ids []int64
	if cur, err := s.rdb.Get(ctx, s.win.cur).Result(); err == nil {
		id, _ := strconv.ParseInt(strings.Split(cur, "|")[0], 10, 64)
		ids = append(ids, id)
	}
	sealed, err := s.rdb.LRange(ctx, s.win.slices, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range sealed {
		id, _ := strconv.ParseInt(strings.Split(e, "|")[0], 10, 64)
		ids = append(ids, id)
	}
	var out []window.Entry
	for _, id := range ids {
		var slice []window.Entry
		err := s.sliceEntries(ctx, id, 0, func(_ int64, l window.Leaf) error {
			slice = append(slice, window.Entry{FirstSeq: l.FirstSeq, LastSeq: l.LastSeq, Address: l.Address, Units: l.Units})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for i := len(slice) - 1; i >= 0; i-- {
			out = append(out, slice[i])
		}
	}
	return out
}

// windowAt is the reference: the window as the ledger holds it right after
// the finding batch, summed newest first up to n (the entry crossing n
// counted in part), and its leaves.
func windowAt(t *testing.T, s *Store, n *big.Int) ([]payouts.Contribution, []window.Leaf, *big.Int) {
	t.Helper()
	var ws []payouts.WindowShare
	var counted []window.Entry // newest first
	total := new(big.Int)
	for _, e := range liveEntries(t, s) {
		u, _ := new(big.Int).SetString(e.Units, 10)
		ws = append(ws, payouts.WindowShare{Address: e.Address, Units: u})
		if total.Cmp(n) >= 0 {
			continue
		}
		left := new(big.Int).Sub(n, total)
		if u.Cmp(left) > 0 {
			u = left
		}
		total.Add(total, u)
		e.Units = u.String()
		counted = append(counted, e)
	}
	contrib, sum, err := payouts.SumWindow(ws, n)
	if err != nil {
		t.Fatal(err)
	}
	for i, j := 0, len(counted)-1; i < j; i, j = i+1, j-1 {
		counted[i], counted[j] = counted[j], counted[i]
	}
	leaves, err := window.Leaves(counted)
	if err != nil {
		t.Fatal(err)
	}
	return contrib, leaves, sum
}

func archived(t *testing.T, s *Store, h chainhash.Hash) []window.Leaf {
	t.Helper()
	var out []window.Leaf
	if err := s.WindowLeaves(context.Background(), h, func(l window.Leaf) error { out = append(out, l); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func windowRecorder(t *testing.T, s *Store, minWindow float64) *payouts.Recorder {
	t.Helper()
	r, err := payouts.NewRecorder(payouts.RecorderConfig{Ledger: s, MinWindow: minWindow, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSnapshotEndsAtFindingShare: two instances' batches interleave; one
// batch of instance A holds the finding share (last, as the ledger closes a
// batch at a block share); batches of both instances are applied after it
// before the snapshot runs. The snapshot is exactly the last N units the
// window held right after the finding batch: contributions, leaves (per
// address runs with sequence ranges), bounds, and the Merkle-sum root.
func TestSnapshotEndsAtFindingShare(t *testing.T) {
	s, _ := blocksTestStore(t)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 4))
	const minWindow = 20.0 // difficulty: N = 2e9 units, about 4000 shares
	n := ledger.DiffToUnits(minWindow)
	trim := new(big.Int).Mul(n, big.NewInt(3)).String() // the ledger keeps more than N
	a, b := &instanceFeed{name: "A", seq: 1_000}, &instanceFeed{name: "B", seq: 5_000_000_000}
	apply := func(f *instanceFeed, k int) []uint64 {
		bt, seqs := f.batch(randomShares(r, k))
		if f == a && k == 5 { // the finding batch
			bt, seqs = f.found(randomShares(r, k))
		}
		if err := s.ApplyBatch(ctx, bt, trim); err != nil {
			t.Fatal(err)
		}
		return seqs
	}
	for i := 0; i < 1500; i++ {
		apply(a, 1+r.IntN(4))
		apply(b, 1+r.IntN(4))
	}
	findSeqs := apply(a, 5)
	finding := fmt.Sprintf("A:%d", findSeqs[len(findSeqs)-1])
	wantContrib, wantLeaves, wantTotal := windowAt(t, s, n)
	// B's batch "in flight" at the block lands after it, then more of both.
	for i := 0; i < 30; i++ {
		apply(b, 3)
		apply(a, 2)
	}
	h := testHash(500)
	fb := payouts.FoundBlock{Hash: h, Height: 500, NetworkDifficulty: 1e-12, FindingSeq: finding, Time: time.Now()}
	blk, err := windowRecorder(t, s, minWindow).BlockFound(ctx, fb)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Contributions(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fmt.Sprint(got), fmt.Sprint(wantContrib)) {
		t.Fatalf("contributions\n got %v\nwant %v", got, wantContrib)
	}
	leaves := archived(t, s, h)
	if !reflect.DeepEqual(leaves, wantLeaves) {
		t.Fatalf("archive differs: %d leaves, want %d", len(leaves), len(wantLeaves))
	}
	tree, _ := window.Build(wantLeaves)
	if blk.WindowBoundary != payouts.BoundaryExact || blk.WindowUnits.Cmp(wantTotal) != 0 || wantTotal.Cmp(n) != 0 ||
		blk.WindowRoot == nil || *blk.WindowRoot != tree.Root().Hash || blk.WindowLeaves != int64(len(wantLeaves)) ||
		blk.WindowTruncated || blk.FindingSeq != finding {
		t.Fatalf("record %+v", blk)
	}
	if blk.WindowLastSeq != wantLeaves[len(wantLeaves)-1].LastSeq || blk.WindowFirstSeq != wantLeaves[0].FirstSeq {
		t.Fatalf("bounds %s..%s", blk.WindowFirstSeq, blk.WindowLastSeq)
	}
	if err := payouts.VerifyWindow(blk, leaves, nil); err != nil {
		t.Fatal(err)
	}
	// Idempotent: a second call (a retry after a lost reply) changes nothing.
	again, err := windowRecorder(t, s, minWindow).BlockFound(ctx, fb)
	if err != nil || *again.WindowRoot != *blk.WindowRoot {
		t.Fatalf("again: %v %v", again.WindowRoot, err)
	}
}

// TestSnapshotWaitsForSpooledFindingShare: instance C found a block while
// Redis was down for it: its batch is in its spool while B keeps writing.
// The snapshot refuses (nothing recorded) until C's batch is replayed, then
// takes the window ending at C's batch: B's batches applied before the
// replay are in it, those after are not.
func TestSnapshotWaitsForSpooledFindingShare(t *testing.T) {
	s, _ := blocksTestStore(t)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(5, 6))
	b, c := &instanceFeed{name: "B", seq: 100}, &instanceFeed{name: "C", seq: 900}
	for i := 0; i < 50; i++ {
		for _, f := range []*instanceFeed{b, c} {
			bt, _ := f.batch(randomShares(r, 3))
			if err := s.ApplyBatch(ctx, bt, "0"); err != nil {
				t.Fatal(err)
			}
		}
	}
	spooled, seqs := c.found(randomShares(r, 4)) // in C's spool
	finding := fmt.Sprintf("C:%d", seqs[len(seqs)-1])
	for i := 0; i < 10; i++ { // B during the outage
		bt, _ := b.batch(randomShares(r, 3))
		if err := s.ApplyBatch(ctx, bt, "0"); err != nil {
			t.Fatal(err)
		}
	}
	h := testHash(600)
	fb := payouts.FoundBlock{Hash: h, Height: 600, NetworkDifficulty: 1e-12, FindingSeq: finding}
	rec := windowRecorder(t, s, 1e6)
	if _, err := rec.BlockFound(ctx, fb); !errors.Is(err, payouts.ErrFindingShareNotApplied) {
		t.Fatalf("snapshot before the replay: %v", err)
	}
	if _, err := s.Block(ctx, h); !errors.Is(err, payouts.ErrBlockNotFound) {
		t.Fatalf("a refused snapshot recorded the block: %v", err)
	}
	if err := s.ApplyBatch(ctx, spooled, "0"); err != nil { // the replay
		t.Fatal(err)
	}
	wantContrib, wantLeaves, _ := windowAt(t, s, ledger.DiffToUnits(1e6))
	for i := 0; i < 5; i++ {
		bt, _ := b.batch(randomShares(r, 3))
		if err := s.ApplyBatch(ctx, bt, "0"); err != nil {
			t.Fatal(err)
		}
	}
	blk, err := rec.BlockFound(ctx, fb)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.Contributions(ctx, h)
	if fmt.Sprint(got) != fmt.Sprint(wantContrib) || !reflect.DeepEqual(archived(t, s, h), wantLeaves) {
		t.Fatalf("window after the replay\n got %v\nwant %v", got, wantContrib)
	}
	if blk.WindowBoundary != payouts.BoundaryExact {
		t.Fatalf("boundary %q", blk.WindowBoundary)
	}
}

// TestSnapshotTwoBlocksAtOneHeight: two blocks at the same height (found by
// A and then B) each get the window ending at their own finding share.
func TestSnapshotTwoBlocksAtOneHeight(t *testing.T) {
	s, _ := blocksTestStore(t)
	ctx := context.Background()
	a, b := &instanceFeed{name: "A", seq: 10}, &instanceFeed{name: "B", seq: 10}
	must := func(bt *ledger.Batch, seqs []uint64) string {
		if err := s.ApplyBatch(ctx, bt, "0"); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(seqs[len(seqs)-1])
	}
	must(a.batch([]testShare{{"x", 100}, {"y", 200}}))
	f1 := "A:" + must(a.found([]testShare{{"x", 50}}))
	f2 := "B:" + must(b.found([]testShare{{"y", 70}, {"z", 30}}))
	must(a.batch([]testShare{{"z", 999}}))
	rec := windowRecorder(t, s, 1e6)
	b1, err := rec.BlockFound(ctx, payouts.FoundBlock{Hash: testHash(1), Height: 7, NetworkDifficulty: 1e-12, FindingSeq: f1})
	if err != nil {
		t.Fatal(err)
	}
	b2, err := rec.BlockFound(ctx, payouts.FoundBlock{Hash: testHash(2), Height: 7, NetworkDifficulty: 1e-12, FindingSeq: f2})
	if err != nil {
		t.Fatal(err)
	}
	if b1.WindowUnits.Int64() != 350 || b2.WindowUnits.Int64() != 450 {
		t.Fatalf("window units %v and %v, want 350 and 450", b1.WindowUnits, b2.WindowUnits)
	}
	if *b1.WindowRoot == *b2.WindowRoot || b1.WindowLastSeq != f1 || b2.WindowLastSeq != f2 {
		t.Fatalf("windows %+v / %+v", b1, b2)
	}
}

// TestSnapshotLateAndTruncated: a snapshot without the finding share's
// sequence, or whose finding share already left the window, is recorded as
// late (the window as it is now); one whose older entries were trimmed
// after the finding share says so (truncated, fewer than N units).
func TestSnapshotLateAndTruncated(t *testing.T) {
	s, _ := blocksTestStore(t)
	ctx := context.Background()
	a := &instanceFeed{name: "A", seq: 10}
	apply := func(sh []testShare, trim string) string {
		bt, seqs := a.found(sh)
		if err := s.ApplyBatch(ctx, bt, trim); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("A:%d", seqs[len(seqs)-1])
	}
	gone := apply([]testShare{{"x", 100}}, "300")
	mid := apply([]testShare{{"y", 100}}, "300")
	apply([]testShare{{"z", 100}}, "300")
	apply([]testShare{{"x", 100}}, "300") // trims the first entry: the window keeps ≥ 300
	rec := windowRecorder(t, s, 3e-6)     // N = 300 units
	late, err := rec.BlockFound(ctx, payouts.FoundBlock{Hash: testHash(1), Height: 1, NetworkDifficulty: 1e-12})
	if err != nil {
		t.Fatal(err)
	}
	trimmed, err := rec.BlockFound(ctx, payouts.FoundBlock{Hash: testHash(2), Height: 2, NetworkDifficulty: 1e-12, FindingSeq: gone})
	if err != nil {
		t.Fatal(err)
	}
	short, err := rec.BlockFound(ctx, payouts.FoundBlock{Hash: testHash(3), Height: 3, NetworkDifficulty: 1e-12, FindingSeq: mid})
	if err != nil {
		t.Fatal(err)
	}
	if late.WindowBoundary != payouts.BoundaryLate || late.WindowUnits.Int64() != 300 || late.FindingSeq != "" {
		t.Fatalf("late %+v", late)
	}
	if trimmed.WindowBoundary != payouts.BoundaryLate || trimmed.WindowUnits.Int64() != 300 {
		t.Fatalf("trimmed finding share %+v", trimmed)
	}
	if short.WindowBoundary != payouts.BoundaryExact || !short.WindowTruncated || short.WindowUnits.Int64() != 100 {
		t.Fatalf("short %+v", short)
	}
	if _, err := rec.BlockFound(ctx, payouts.FoundBlock{Hash: testHash(4), Height: 4, NetworkDifficulty: 1e-12, FindingSeq: "A:x"}); err == nil {
		t.Fatal("malformed finding sequence accepted")
	}
	if _, err := windowRecorder(t, s, 0).BlockFound(ctx, payouts.FoundBlock{Hash: testHash(5), Height: 5, NetworkDifficulty: 4.6565423739069247e-10}); !errors.Is(err, payouts.ErrZeroWindow) {
		t.Fatalf("a window of 0 units: %v", err)
	}
}

// TestWindowArchiveRetention: archives outside the most recent blocks and
// older than the age limit are deleted; the record keeps its root.
func TestWindowArchiveRetention(t *testing.T) {
	s, _ := blocksTestStore(t)
	ctx := context.Background()
	a := &instanceFeed{name: "A", seq: 10}
	old := time.Now().Add(-48 * time.Hour)
	for i := 1; i <= 4; i++ {
		bt, seqs := a.found([]testShare{{"x", 100}})
		if err := s.ApplyBatch(ctx, bt, "0"); err != nil {
			t.Fatal(err)
		}
		at := old
		if i == 2 {
			at = time.Now() // young: kept whatever its rank
		}
		fb := payouts.FoundBlock{Hash: testHash(i), Height: int64(i), NetworkDifficulty: 1e-12, FindingSeq: fmt.Sprintf("A:%d", seqs[0]), Time: at}
		if _, err := windowRecorder(t, s, 1).BlockFound(ctx, fb); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.PruneWindowArchives(ctx, 2, 24*time.Hour, time.Now())
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want 1 (block 1: old and not among the 2 newest)", n, err)
	}
	err = s.WindowLeaves(ctx, testHash(1), func(window.Leaf) error { return nil })
	if !errors.Is(err, payouts.ErrArchivePruned) {
		t.Fatalf("pruned archive: %v", err)
	}
	for _, i := range []int{2, 3, 4} {
		if len(archived(t, s, testHash(i))) != 1 {
			t.Fatalf("block %d lost its archive", i)
		}
	}
	b1, err := s.Block(ctx, testHash(1))
	if err != nil || b1.WindowRoot == nil || !b1.ArchivePruned {
		t.Fatalf("pruned record %+v %v", b1, err)
	}
}

// TestVerifyWindowNamesTampering: changing one archived entry, one credit or
// the stored root makes VerifyWindow fail naming what differs.
func TestVerifyWindowNamesTampering(t *testing.T) {
	s, rdb := blocksTestStore(t)
	ctx := context.Background()
	a := &instanceFeed{name: "A", seq: 10}
	bt, seqs := a.found([]testShare{{"x", 600}, {"y", 300}, {"x", 99}, {"z", 1}})
	if err := s.ApplyBatch(ctx, bt, "0"); err != nil {
		t.Fatal(err)
	}
	h := testHash(9)
	fb := payouts.FoundBlock{Hash: h, Height: 9, NetworkDifficulty: 1e-12, FindingSeq: fmt.Sprintf("A:%d", seqs[3])}
	if _, err := windowRecorder(t, s, 1).BlockFound(ctx, fb); err != nil {
		t.Fatal(err)
	}
	contrib, _ := s.Contributions(ctx, h)
	alloc, err := payouts.Split(1001, 100, contrib)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.CreditBlock(ctx, payouts.BlockCredit{Hash: h, Allocation: alloc, Time: time.Now()}); !ok || err != nil {
		t.Fatalf("credit %v %v", ok, err)
	}
	check := func() error {
		blk, err := s.Block(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		credits, _ := s.BlockCredits(ctx, h)
		return payouts.VerifyWindow(blk, archived(t, s, h), credits)
	}
	if err := check(); err != nil {
		t.Fatal(err)
	}
	wk := s.sliceKey(1) // the window's only slice
	orig, _ := rdb.HGet(ctx, wk, "x").Result()
	tests := []struct {
		name           string
		tamper, revert func()
		want           string
	}{
		{"archived entry", func() { rdb.HSet(ctx, wk, "x", strings.Replace(orig, "|699", "|698", 1)) },
			func() { rdb.HSet(ctx, wk, "x", orig) }, "window root"},
		{"credit", func() { rdb.HIncrBy(ctx, s.blockCreditsKey(h.String()), "y", 1) },
			func() { rdb.HIncrBy(ctx, s.blockCreditsKey(h.String()), "y", -1) }, "credits"},
		{"root", func() { rdb.HSet(ctx, s.blockKey(h.String()), "window_root", strings.Repeat("0", 64)) }, nil, "window root"},
	}
	for _, tc := range tests {
		tc.tamper()
		err := check()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s tampered: %v, want an error naming %q", tc.name, err, tc.want)
		}
		t.Logf("%s tampered: %v", tc.name, err)
		if tc.revert != nil {
			tc.revert()
		}
	}
}

// TestOrphanedCommitmentReturnsWindows: windows committed by a block that is
// orphaned go back to the pending set, with their order by height.
func TestOrphanedCommitmentReturnsWindows(t *testing.T) {
	s, _ := blocksTestStore(t)
	ctx := context.Background()
	a := &instanceFeed{name: "A", seq: 10}
	rec := windowRecorder(t, s, 1)
	for i := 1; i <= 2; i++ {
		bt, seqs := a.found([]testShare{{"x", int64(100 * i)}})
		if err := s.ApplyBatch(ctx, bt, "0"); err != nil {
			t.Fatal(err)
		}
		if _, err := rec.BlockFound(ctx, payouts.FoundBlock{Hash: testHash(i), Height: int64(i), NetworkDifficulty: 1e-12, FindingSeq: fmt.Sprintf("A:%d", seqs[0])}); err != nil {
			t.Fatal(err)
		}
	}
	pending, err := s.PendingCommitments(ctx)
	if err != nil || len(pending) != 2 {
		t.Fatalf("pending %v %v", pending, err)
	}
	script, _ := s.CommitmentScript(ctx)
	c, ok := window.ParseCommitScript(script)
	if !ok {
		t.Fatal("unparsable commitment")
	}
	bt, seqs := a.found([]testShare{{"y", 5}})
	if err := s.ApplyBatch(ctx, bt, "0"); err != nil {
		t.Fatal(err)
	}
	third := payouts.FoundBlock{Hash: testHash(3), Height: 3, NetworkDifficulty: 1e-12, FindingSeq: fmt.Sprintf("A:%d", seqs[0]), Commitment: &c}
	if _, err := rec.BlockFound(ctx, third); err != nil {
		t.Fatal(err)
	}
	if _, err := rec.BlockFound(ctx, third); err != nil { // a retry: already recorded, no mismatch
		t.Fatal(err)
	}
	pending, _ = s.PendingCommitments(ctx)
	if len(pending) != 1 || pending[0].Block != window.Hash(testHash(3)) {
		t.Fatalf("pending after the commitment %v", pending)
	}
	if ok, err := s.OrphanBlock(ctx, testHash(3), time.Now()); !ok || err != nil {
		t.Fatalf("orphan %v %v", ok, err)
	}
	pending, _ = s.PendingCommitments(ctx)
	if len(pending) != 3 || pending[0].Block != window.Hash(testHash(1)) || pending[1].Block != window.Hash(testHash(2)) {
		t.Fatalf("pending after the orphan %v", pending)
	}
	if b, _ := s.Block(ctx, testHash(1)); b.CommittedIn != "" {
		t.Fatalf("still committed in %s", b.CommittedIn)
	}
}
