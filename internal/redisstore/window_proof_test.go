package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

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
		t.Logf("block %d: %d leaves, window from %s", blockNo, len(leaves), blk.WindowFirstSeq)
		if len(leaves) < 2000 {
			t.Fatalf("only %d leaves", len(leaves))
		}
		ks := []uint{proofGroupBits}
		if blockNo == 1 {
			ks = append(ks, 2) // small groups too, on one of the windows (-race makes each pass ~10 s)
		}
		checkIndexProofs(t, s, blk, leaves, ks)
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

// checkIndexProofs checks, for indexes of groups of 2^k leaves for each k
// in ks (proofGroupBits: the index as recorded; smaller ones are built again
// over the same window: many group boundaries, also inside a run of one
// address across slices), that the proof of every address of blk's window
// (and of one with no leaf) made from the index equals the proof made from
// the whole window (leaves), and that the offline verifier accepts it.
func checkIndexProofs(t *testing.T, s *Store, blk payouts.Block, leaves []window.Leaf, ks []uint) {
	t.Helper()
	ctx := context.Background()
	h := blk.Hash
	addrs := map[string]bool{"bc1qnobody": true} // no leaf: a proof with no leaves
	contributors := map[string]bool{}
	for _, l := range leaves {
		addrs[l.Address], contributors[l.Address] = true, true
	}
	tree, err := window.Build(leaves) // the whole window, as ProofBuilder streams it
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		if k != proofGroupBits {
			root, err := s.indexWindow(ctx, h, k)
			if err != nil || root.Hash != *blk.WindowRoot {
				t.Fatalf("index of groups of 2^%d: root %s, %v", k, root.Hash, err)
			}
		}
		for addr := range addrs {
			want, err := window.NewProof(tree, h.String(), addr)
			if err != nil {
				t.Fatal(err)
			}
			got, n, ok, err := s.WindowProof(ctx, h, addr)
			if err != nil || !ok {
				t.Fatalf("groups of 2^%d: WindowProof(%s) = ok %v, %v", k, addr, ok, err)
			}
			if len(want.Leaves) == 0 && len(got.Leaves) == 0 {
				got.Leaves, want.Leaves = nil, nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("groups of 2^%d: proof of %s from the index:\n%+v\nfrom the whole window:\n%+v", k, addr, got, want)
			}
			if n != int64(len(contributors)) {
				t.Fatalf("contributors %d, want %d", n, len(contributors))
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
}

// TestWindowProofRunsAcrossSlices: leaves that are one address's entries in
// two or three consecutive slices (a run across a slice's end), and a
// window whose oldest leaf is cut inside a slice, with groups that start
// and end inside such runs: every proof from the index is the whole
// window's.
func TestWindowProofRunsAcrossSlices(t *testing.T) {
	s, _ := blocksTestStore(t)
	ctx := context.Background()
	feed := &instanceFeed{name: "A"}
	// No limit known: every batch seals its slice.
	for _, batch := range [][]testShare{
		{{"addrZ", 400}, {"addrA", 100}, {"addrB", 100}},
		{{"addrB", 100}, {"addrC", 100}},
		{{"addrC", 100}},
		{{"addrC", 100}, {"addrA", 100}, {"addrD", 100}},
		{{"addrD", 100}, {"addrB", 100}},
		{{"addrA", 100}, {"addrB", 100}, {"addrA", 100}},
	} {
		b, _ := feed.batch(batch)
		if err := s.ApplyBatch(ctx, b, "0"); err != nil {
			t.Fatal(err)
		}
	}
	b, seqs := feed.found([]testShare{{"addrA", 100}})
	if err := s.ApplyBatch(ctx, b, "0"); err != nil {
		t.Fatal(err)
	}
	h := testHash(801)
	fb := payouts.FoundBlock{Hash: h, Height: 801, FindingSeq: fmt.Sprintf("A:%d", seqs[0]), Time: time.Now()}
	// N cuts addrZ's 400 units to 50: the oldest leaf is counted in part.
	if _, err := s.SnapshotBlock(ctx, fb, big.NewInt(1450)); err != nil {
		t.Fatal(err)
	}
	rec, err := payouts.NewRecorder(payouts.RecorderConfig{Ledger: s, MinWindow: 1, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	blk, err := rec.BlockFound(ctx, fb)
	if err != nil {
		t.Fatal(err)
	}
	leaves := archived(t, s, h)
	var runs []string
	for _, l := range leaves {
		runs = append(runs, l.Address+":"+l.Units)
	}
	// Slices: [Z A B] [B C] [C] [C A D] [D B] [A B] [A]: runs B, C and D
	// cross slice ends, C three slices.
	if got := strings.Join(runs, " "); got != "addrZ:50 addrA:100 addrB:200 addrC:300 addrA:100 addrD:200 addrB:100 addrA:200 addrB:100 addrA:100" {
		t.Fatalf("leaves %s", got)
	}
	checkIndexProofs(t, s, blk, leaves, []uint{proofGroupBits, 2, 1, 0})
}
