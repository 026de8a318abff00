package payouts_test

import (
	"context"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/blocktemplate/bitcoind"
	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/window"
)

// TestWindowCommitmentOnChain: the roots of the pool's two previous windows
// are committed in the coinbase of its next block, built from a real
// template with the store as the job builder's CommitmentSource, mined and
// accepted by the node. The commitment is read back from the node's copy of
// the block (getblock), not from Redis, and checked against roots
// recomputed from the archived windows; recording the block marks both
// windows committed in it. A tampered root fails the check, naming it.
func TestWindowCommitmentOnChain(t *testing.T) { forEachNode(t, testWindowCommitmentOnChain) }

func testWindowCommitmentOnChain(t *testing.T, nodeKind string) {
	e := newEnv(t, nodeKind)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e.recordShares("A", 3.0, "B", 1.0)
	first := e.mineFound()
	e.recordShares("B", 2.0, "A", 0.5)
	second := e.mineFound()
	if first.WindowRoot == nil || second.WindowRoot == nil {
		t.Fatalf("roots %v %v", first.WindowRoot, second.WindowRoot)
	}

	client := e.ledgerChain.(*bitcoind.Client)
	raw, err := client.GetBlockTemplate(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := blocktemplate.ParseTemplate(raw)
	if err != nil {
		t.Fatal(err)
	}
	builder, err := blocktemplate.NewBuilder(blocktemplate.Config{Network: e.chain.Chain(), PayoutAddress: e.chain.MiningAddress().EncodeAddress()})
	if err != nil {
		t.Fatal(err)
	}
	var source blocktemplate.CommitmentSource = e.store
	script, err := source.CommitmentScript(ctx)
	if err != nil || len(script) == 0 {
		t.Fatalf("commitment script %x, %v", script, err)
	}
	job, err := builder.JobWithCommitment(tpl, true, script)
	if err != nil {
		t.Fatal(err)
	}
	en1, en2 := []byte{1, 2, 3, 4}, make([]byte, 8)
	var hdr [80]byte
	for nonce := uint32(0); ; nonce++ {
		if nonce == 1<<22 {
			t.Fatal("no nonce found")
		}
		hdr, err = job.Header(en1, en2, job.Version, job.NTime, nonce)
		if err != nil {
			t.Fatal(err)
		}
		h := chainhash.DoubleHashH(hdr[:])
		if blocktemplate.HashToBig(&h).Cmp(job.NetworkTarget) <= 0 {
			break
		}
	}
	blk, err := job.Block(en1, en2, hdr)
	if err != nil {
		t.Fatal(err)
	}
	if reason, err := client.SubmitBlock(ctx, blk); err != nil || reason != "" {
		t.Fatalf("submitblock: %q %v", reason, err)
	}

	// From the node, not from Redis.
	onChain, err := client.GetBlock(ctx, blk.BlockHash())
	if err != nil {
		t.Fatal(err)
	}
	var commitment *window.Commitment
	for _, out := range onChain.Transactions[0].TxOut {
		if c, ok := window.ParseCommitScript(out.PkScript); ok && out.Value == 0 {
			commitment = &c
		}
	}
	if commitment == nil || commitment.Count != 2 {
		t.Fatalf("no commitment of 2 windows in the node's coinbase: %+v", onChain.Transactions[0].TxOut)
	}
	// What a verifier does: recompute each window's root from its archive.
	var windows []window.Committed
	for _, b := range []payouts.Block{first, second} {
		var leaves []window.Leaf
		if err := e.store.WindowLeaves(ctx, b.Hash, func(l window.Leaf) error { leaves = append(leaves, l); return nil }); err != nil {
			t.Fatal(err)
		}
		tree, err := window.Build(leaves)
		if err != nil {
			t.Fatal(err)
		}
		windows = append(windows, window.Committed{Block: window.Hash(b.Hash), Root: tree.Root().Hash, Total: tree.Root().Sum})
	}
	if err := commitment.Check(windows); err != nil {
		t.Fatalf("commitment read from the node: %v", err)
	}
	tampered := append([]window.Committed(nil), windows...)
	tampered[1].Root[0] ^= 1
	if err := commitment.Check(tampered); !errors.Is(err, window.ErrMismatch) {
		t.Fatalf("tampered root: %v", err)
	}
	tampered[1] = windows[1]
	tampered[1].Total = new(big.Int).Add(windows[1].Total, big.NewInt(1))
	if err := commitment.Check(tampered); !errors.Is(err, window.ErrMismatch) {
		t.Fatalf("tampered total: %v", err)
	}

	// Recording the block (as the daemon does from the accepted block)
	// marks both windows committed in it; only its own window is pending.
	fb, err := payouts.NewFoundBlock(onChain, tpl.Height, "A.rig", e.script)
	if err != nil {
		t.Fatal(err)
	}
	if fb.Commitment == nil || *fb.Commitment != *commitment {
		t.Fatalf("found block commitment %+v", fb.Commitment)
	}
	rec, err := payouts.NewRecorder(payouts.RecorderConfig{Ledger: e.store, MinWindow: 1e9, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	third, err := rec.BlockFound(ctx, fb)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []payouts.Block{first, second} {
		got, err := e.store.Block(ctx, b.Hash)
		if err != nil || got.CommittedIn != third.Hash.String() {
			t.Fatalf("block %s committed in %q (%v), want %s", b.Hash, got.CommittedIn, err, third.Hash)
		}
	}
	pending, err := e.store.PendingCommitments(ctx)
	if err != nil || len(pending) != 1 || pending[0].Block != window.Hash(third.Hash) {
		t.Fatalf("pending after the commitment: %v %v", pending, err)
	}
	hashes, _, err := e.store.BlockCommits(ctx, third.Hash)
	if err != nil || len(hashes) != 2 || hashes[0] != first.Hash.String() || hashes[1] != second.Hash.String() {
		t.Fatalf("commits of the third block: %v %v", hashes, err)
	}
}
