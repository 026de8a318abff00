package blocks_test

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/blocks"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// trackerEnv is a pool (real btcd) with a real redis-server holding the
// share ledger and the block records.
type trackerEnv struct {
	*pool
	redis    *testenv.Redis
	store    *redisstore.Store
	recorder *payouts.Recorder
	script   []byte
}

func newTrackerEnv(t *testing.T) *trackerEnv {
	t.Helper()
	p := newPool(t)
	rs := testenv.StartRedis(t)
	store, err := redisstore.Connect(p.ctx, redisstore.ConnectConfig{Addr: rs.Addr, Prefix: "bt"})
	if err != nil {
		t.Fatal(err)
	}
	// A window far above the shares these tests record: every share up to
	// the finding share is in it. (Regtest's 2 × difficulty is 0 units.)
	recorder, err := payouts.NewRecorder(payouts.RecorderConfig{Ledger: store, MinWindow: 1e9, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	script, err := txscript.PayToAddrScript(p.payout)
	if err != nil {
		t.Fatal(err)
	}
	return &trackerEnv{pool: p, redis: rs, store: store, recorder: recorder, script: script}
}

// tracker returns a Tracker over a new Submitter on journal, as a process
// (re)started on that journal makes.
func (e *trackerEnv) tracker(t *testing.T, journal string) *blocks.Tracker {
	t.Helper()
	tr, err := blocks.New(blocks.Config{
		Submitter: newSubmitter(t, journal, blocks.NamedNode{Name: "btcd", Node: e.client}),
		Recorder:  e.recorder, PayoutScript: e.script, RetryMin: 50 * time.Millisecond, RetryMax: time.Second,
		Logger: zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// run runs tr until the test ends.
func run(t *testing.T, tr *blocks.Tracker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// share is one accepted share for applyBatch.
type share struct {
	addr  string
	diff  float64
	block bool
}

// applyBatch writes shares through the share ledger's store as the
// recorder of instance does, numbered from seq on; it returns the next
// free sequence.
func (e *trackerEnv) applyBatch(t *testing.T, instance string, seq uint64, list ...share) uint64 {
	t.Helper()
	b := &ledger.Batch{Instance: instance}
	for _, s := range list {
		u, err := ledger.DiffUnits(s.diff)
		if err != nil {
			t.Fatal(err)
		}
		b.Shares = append(b.Shares, ledger.Entry{Seq: seq, Units: u, Share: shares.Share{
			Worker: s.addr + ".rig", Address: s.addr, WorkerName: "rig", Difficulty: s.diff, Time: time.Now(), Block: s.block}})
		seq++
	}
	b.Seq = seq
	if err := e.store.ApplyBatch(e.ctx, b, "0"); err != nil {
		t.Fatal(err)
	}
	return seq + 1
}

// waitRecorded waits until the block's record is complete (its window root
// is stored: the last step of a record) and returns it.
func (e *trackerEnv) waitRecorded(t *testing.T, hash chainhash.Hash) payouts.Block {
	t.Helper()
	var blk payouts.Block
	testenv.WaitFor(t, time.Minute, "the block recorded", func() bool {
		var err error
		blk, err = e.store.Block(e.ctx, hash)
		return err == nil && blk.WindowRoot != nil
	})
	return blk
}

// TestWindowEndsAtFindingShareAfterRestart (issue 12): the node takes a
// block while Redis is down, so its record cannot be taken, and the process
// dies. Shares recorded after the block (by then in the ledger) must not be
// in its window: the journal kept the finding share's sequence, so the
// process started on the same journal records the window ending exactly at
// that share.
func TestWindowEndsAtFindingShareAfterRestart(t *testing.T) {
	e := newTrackerEnv(t)
	journal := filepath.Join(t.TempDir(), "blocks.journal")
	next := e.applyBatch(t, "i1", 1, share{"A", 2, false}, share{"B", 1, false})
	findingSeq := "i1:" + "3"
	if next = e.applyBatch(t, "i1", next-1, share{"C", 0.5, true}); next != 5 {
		t.Fatalf("sequences: next %d", next)
	}

	e.redis.Stop()
	first := e.tracker(t, journal)
	c, _ := e.mine(t)
	c.Worker = "C.rig"
	rep, err := first.Submit(e.ctx, c)
	if err != nil || !rep.Confirmed || rep.JournalErr != nil {
		t.Fatalf("submit: %+v %v", rep, err)
	}
	first.ShareDone(c.Hash, "C.rig", findingSeq)
	testenv.WaitFor(t, time.Minute, "the record failed (Redis down)", func() bool { return first.Retrying() == 1 })
	// The process dies here: first never runs again.

	e.redis.Restart()
	// Shares mined after the block: a window taken "now" would hold them.
	e.applyBatch(t, "i1", next, share{"D", 4, false}, share{"A", 1, false})

	second := e.tracker(t, journal)
	run(t, second)
	blk := e.waitRecorded(t, c.Hash)
	if blk.FindingSeq != findingSeq || blk.WindowLastSeq != findingSeq || blk.WindowBoundary != payouts.BoundaryExact {
		t.Fatalf("window finding %q last %q boundary %q, want the window to end exactly at %s",
			blk.FindingSeq, blk.WindowLastSeq, blk.WindowBoundary, findingSeq)
	}
	if blk.Finder != "C.rig" || blk.WindowFirstSeq != "i1:1" {
		t.Fatalf("finder %q, first %q", blk.Finder, blk.WindowFirstSeq)
	}
	contrib, err := e.store.Contributions(e.ctx, c.Hash)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range contrib {
		got[c.Address] = c.Units.String()
	}
	want := map[string]string{"A": "200000000", "B": "100000000", "C": "50000000"}
	if len(got) != len(want) {
		t.Fatalf("window %v, want %v (nothing after the finding share)", got, want)
	}
	for a, u := range want {
		if got[a] != u {
			t.Fatalf("window %v, want %v", got, want)
		}
	}
	testenv.WaitFor(t, time.Minute, "the journal emptied", func() bool {
		states, err := newSubmitter(t, journal, blocks.NamedNode{Name: "btcd", Node: e.client}).States()
		return err == nil && len(states) == 0
	})
}

// TestTrackerJournalUnwritable: the block journal cannot be written (its
// directory is gone) and Redis is down when the node accepts a block; the
// block waits in memory, with its finder and finding share, and is recorded
// once Redis is back.
func TestTrackerJournalUnwritable(t *testing.T) {
	e := newTrackerEnv(t)
	next := e.applyBatch(t, "i1", 1, share{"A", 1, true})
	tr := e.tracker(t, filepath.Join(t.TempDir(), "gone", "blocks.journal"))

	e.redis.Stop()
	c, _ := e.mine(t)
	c.Worker = "A.rig"
	rep, err := tr.Submit(e.ctx, c)
	if err != nil || !rep.Confirmed || rep.JournalErr == nil {
		t.Fatalf("submit: %+v %v", rep, err)
	}
	const worker = "finder.rig"
	tr.ShareDone(c.Hash, worker, "i1:1")
	testenv.WaitFor(t, time.Minute, "the record failed (Redis down)", func() bool { return tr.Retrying() == 1 })
	if _, err := e.store.Block(e.ctx, c.Hash); err == nil {
		t.Fatal("block recorded while Redis was down")
	}

	run(t, tr)
	e.redis.Restart()
	e.applyBatch(t, "i1", next, share{"B", 1, false})
	blk := e.waitRecorded(t, c.Hash)
	testenv.WaitFor(t, time.Minute, "no block left waiting in memory", func() bool { return tr.Retrying() == 0 })
	if blk.Finder != worker || blk.Height != c.Job.Height || blk.Status != payouts.StatusPending ||
		blk.WindowLastSeq != "i1:1" || blk.WindowBoundary != payouts.BoundaryExact {
		t.Fatalf("record %+v", blk)
	}
}

// TestFoundTimeIsWhenThePoolFoundIt (issue 15): a block's found_at was the
// header's timestamp, which a miner's clock and ntime rolling move. The
// record carries when the pool found it.
func TestFoundTimeIsWhenThePoolFoundIt(t *testing.T) {
	e := newTrackerEnv(t)
	e.applyBatch(t, "i1", 1, share{"A", 1, true})
	tr := e.tracker(t, filepath.Join(t.TempDir(), "blocks.journal"))
	c, _ := e.mineAt(t, 600) // ntime rolled 10 minutes ahead
	before := time.Now()
	if rep, err := tr.Submit(e.ctx, c); err != nil || !rep.Confirmed {
		t.Fatalf("submit: %+v %v", rep, err)
	}
	after := time.Now()
	tr.ShareDone(c.Hash, "A.rig", "i1:1")
	blk := e.waitRecorded(t, c.Hash)
	header, err := e.client.GetBlock(e.ctx, c.Hash)
	if err != nil {
		t.Fatal(err)
	}
	// The record keeps milliseconds.
	if blk.Time.Before(before.Truncate(time.Millisecond)) || blk.Time.After(after) {
		t.Fatalf("found_at %v, want when the pool found it (%v … %v), not the header's %v", blk.Time, before, after, header.Header.Timestamp)
	}
}

// TestTwoBlocksAtOneHeight: two candidates at the same height (two shares
// of one job met the target): each block is handed its own finding share by
// hash, whatever the order of the hand-over, and its window ends there. The
// node keeps both (one on a side branch, which the unlocker orphans later).
func TestTwoBlocksAtOneHeight(t *testing.T) {
	e := newTrackerEnv(t)
	tr := e.tracker(t, filepath.Join(t.TempDir(), "blocks.journal"))
	run(t, tr)
	first, _ := e.mine(t)
	second := first
	// Another nonce of the same job, also a block (regtest).
	for nonce := binary.LittleEndian.Uint32(first.Header[76:]) + 1; ; nonce++ {
		hdr := first.Header
		binary.LittleEndian.PutUint32(hdr[76:], nonce)
		h := chainhash.DoubleHashH(hdr[:])
		if shares.MeetsTarget(&h, first.Job.NetworkTarget) {
			second.Header, second.Hash = hdr, h
			break
		}
	}
	next := e.applyBatch(t, "i1", 1, share{"A", 1, true})
	e.applyBatch(t, "i1", next, share{"B", 1, true})
	// The second share's answer comes first, before its block is even
	// journaled; the first's after its block was taken.
	tr.ShareDone(second.Hash, "B.rig", "i1:3")
	for _, c := range []shares.Candidate{first, second} {
		if rep, err := tr.Submit(e.ctx, c); err != nil || !rep.Confirmed {
			t.Fatalf("submit %s: %+v %v", c.Hash, rep, err)
		}
	}
	tr.ShareDone(first.Hash, "A.rig", "i1:1")
	for _, want := range []struct {
		hash         chainhash.Hash
		finder, last string
	}{{first.Hash, "A.rig", "i1:1"}, {second.Hash, "B.rig", "i1:3"}} {
		blk := e.waitRecorded(t, want.hash)
		if blk.Finder != want.finder || blk.WindowLastSeq != want.last || blk.WindowBoundary != payouts.BoundaryExact ||
			blk.Height != first.Job.Height {
			t.Fatalf("block %s: finder %q, height %d, window ends at %q (%s); want %q, %d, %q (exact)",
				want.hash, blk.Finder, blk.Height, blk.WindowLastSeq, blk.WindowBoundary, want.finder, first.Job.Height, want.last)
		}
	}
}

// TestWindowEndsAtFindingShareWhenNoNodeAnswered: no node answered the
// submission (all transport errors) and the process died; the journal
// holds the block and its finding share's sequence. The next process
// submits it again (Run's Recover), and records the window ending at that
// share, not at the shares recorded since.
func TestWindowEndsAtFindingShareWhenNoNodeAnswered(t *testing.T) {
	e := newTrackerEnv(t)
	journal := filepath.Join(t.TempDir(), "blocks.journal")
	next := e.applyBatch(t, "i1", 1, share{"A", 1, false}, share{"C", 2, true})
	down, err := blocks.New(blocks.Config{
		Submitter: newSubmitter(t, journal, blocks.NamedNode{Name: "down", Node: &flakyNode{Node: e.client, failures: 1 << 30}}),
		Recorder:  e.recorder, PayoutScript: e.script, Logger: zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := e.mine(t)
	c.Worker = "C.rig"
	rep, err := down.Submit(e.ctx, c)
	if err != nil || rep.Confirmed {
		t.Fatalf("submit to a node that never answers: %+v %v", rep, err)
	}
	down.ShareDone(c.Hash, "C.rig", "i1:2")
	testenv.WaitFor(t, time.Minute, "the finding share journaled", func() bool {
		got, err := newSubmitter(t, journal, blocks.NamedNode{Name: "btcd", Node: e.client}).States()
		return err == nil && got[c.Hash.String()] == blocks.StateJournaled && journalHasSeq(t, journal, "i1:2")
	})
	// The process dies; shares keep coming (another frontend).
	e.applyBatch(t, "i1", next, share{"D", 5, false})

	run(t, e.tracker(t, journal))
	blk := e.waitRecorded(t, c.Hash)
	if blk.WindowLastSeq != "i1:2" || blk.WindowBoundary != payouts.BoundaryExact || blk.Finder != "C.rig" {
		t.Fatalf("finder %q, window ends at %q (%s); want C.rig, i1:2, exact", blk.Finder, blk.WindowLastSeq, blk.WindowBoundary)
	}
	if tip, _ := e.client.GetBestBlockHash(e.ctx); tip != c.Hash {
		t.Fatalf("tip %v, want the resubmitted block %v", tip, c.Hash)
	}
}

// journalHasSeq reports whether the journal file mentions the sequence.
func journalHasSeq(t *testing.T, journal, seq string) bool {
	t.Helper()
	b, err := os.ReadFile(journal)
	return err == nil && strings.Contains(string(b), `"seq":"`+seq+`"`)
}
