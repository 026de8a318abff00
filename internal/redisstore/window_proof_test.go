package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/window"
	"github.com/lode-pool/lode/shares/ledger"
)

// manyShares is n shares over 300 addresses, a few of them far more active
// than the rest, so the window has thousands of leaves and addresses with
// one leaf as well as addresses in every slice.
func manyShares(r *rand.Rand, n int) []testShare {
	out := make([]testShare, n)
	for i := range out {
		a := r.IntN(300)
		if r.IntN(3) == 0 {
			a = r.IntN(4)
		}
		out[i] = testShare{fmt.Sprintf("bc1qminer%03d", a), 1 + r.Int64N(200_000)}
	}
	return out
}

// TestWindowProofFromIndex: for blocks recorded from a window of a few
// thousand leaves (the second one's window starting in the middle of a
// slice and of a leaf), the proof of every address made from the proof
// index equals the proof made from the whole window, and the offline
// verifier (lodectl verify proof: window.ParseProof, Proof.Verify) accepts
// it. Without an index the store says so and the API reads the whole
// window.
func TestWindowProofFromIndex(t *testing.T) {
	s, _ := blocksTestStore(t)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(9, 9))
	const minWindow = 5.0 // difficulty: N = 5e8 units, about 5,000 shares
	trim := ledger.DiffToUnits(3 * minWindow).String()
	feed := &instanceFeed{name: "A"}
	rec := windowRecorder(t, s, minWindow)
	for blockNo := range 2 {
		for range 2000 {
			b, _ := feed.batch(manyShares(r, 1+r.IntN(5)))
			if err := s.ApplyBatch(ctx, b, trim); err != nil {
				t.Fatal(err)
			}
		}
		b, seqs := feed.found(manyShares(r, 3))
		if err := s.ApplyBatch(ctx, b, trim); err != nil {
			t.Fatal(err)
		}
		h := testHash(700 + blockNo)
		blk, err := rec.BlockFound(ctx, payouts.FoundBlock{Hash: h, Height: int64(700 + blockNo), NetworkDifficulty: 1e-12,
			FindingSeq: fmt.Sprintf("A:%d", seqs[len(seqs)-1]), Time: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		leaves := archived(t, s, h)
		if n, _ := s.rdb.Exists(ctx, s.blockProofIndexKey(h.String())).Result(); n != 1 {
			t.Fatal("no proof index written with the root")
		}
		addrs := map[string]bool{}
		for _, l := range leaves {
			addrs[l.Address] = true
		}
		t.Logf("block %d: %d leaves, %d addresses, window from slice %s", blockNo, len(leaves), len(addrs), blk.WindowFirstSeq)
		if len(leaves) < 2000 {
			t.Fatalf("only %d leaves", len(leaves))
		}
		addrs["bc1qnobody"] = false       // no leaf: a proof with no leaves
		tree, err := window.Build(leaves) // the whole window, as ProofBuilder streams it
		if err != nil {
			t.Fatal(err)
		}
		for addr := range addrs {
			want, err := window.NewProof(tree, h.String(), addr)
			if err != nil {
				t.Fatal(err)
			}
			got, contributors, ok, err := s.WindowProof(ctx, h, addr)
			if err != nil || !ok {
				t.Fatalf("WindowProof(%s) = ok %v, %v", addr, ok, err)
			}
			if len(want.Leaves) == 0 && len(got.Leaves) == 0 {
				got.Leaves, want.Leaves = nil, nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("proof of %s from the index:\n%+v\nfrom the whole window:\n%+v", addr, got, want)
			}
			if contributors != int64(len(addrs)-1) {
				t.Fatalf("contributors %d, want %d", contributors, len(addrs)-1)
			}
			if got.Root != *blk.WindowRoot || got.Total != blk.WindowUnits.String() {
				t.Fatalf("proof root %s total %s, record %s %s", got.Root, got.Total, blk.WindowRoot, blk.WindowUnits)
			}
			if len(got.Leaves) == 0 {
				continue
			}
			js, _ := json.Marshal(got)
			p, err := window.ParseProof(js)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Verify(); err != nil {
				t.Fatalf("offline verification of %s's proof: %v", addr, err)
			}
		}
	}
	// A block recorded before the index: the store says so.
	h := testHash(700)
	if err := s.rdb.Del(ctx, s.blockProofIndexKey(h.String())).Err(); err != nil {
		t.Fatal(err)
	}
	if p, _, ok, err := s.WindowProof(ctx, h, "bc1qminer001"); ok || err != nil || p != nil {
		t.Fatalf("without an index: %v, %v, %v", p, ok, err)
	}
}
