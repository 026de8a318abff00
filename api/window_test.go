package api

import (
	"context"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/window"
)

// TestBuildProofCredits: proofs built for every address of a credited
// window verify, the largest contributor's with the split's remainder; a
// summary whose root is not the leaves' is refused.
func TestBuildProofCredits(t *testing.T) {
	leaves := []window.Leaf{
		{Address: "A", Units: "600", FirstSeq: "i:1", LastSeq: "i:1"},
		{Address: "B", Units: "300", FirstSeq: "i:2", LastSeq: "i:2"},
		{Address: "A", Units: "99", FirstSeq: "i:3", LastSeq: "i:4"},
		{Address: "C", Units: "1", FirstSeq: "j:1", LastSeq: "j:1"},
	}
	tree, err := window.Build(leaves)
	if err != nil {
		t.Fatal(err)
	}
	contrib, _ := payouts.LeafContributions(leaves)
	alloc, err := payouts.Split(1001, 100, contrib)
	if err != nil {
		t.Fatal(err)
	}
	credits := map[string]int64{}
	for _, c := range alloc.Credits {
		credits[c.Address] = c.Amount
	}
	bw := BlockWindow{Hash: strings.Repeat("ab", 32), Root: tree.Root().Hash.String(), Total: tree.Root().Sum.String(),
		Credited: true, Reward: alloc.Reward, Fee: alloc.Fee, Credits: credits}
	remainders := map[string]int64{}
	for _, addr := range []string{"A", "B", "C"} {
		p, err := BuildProof(bw, leaves, addr)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Verify(); err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		remainders[addr] = p.Remainder
	}
	if remainders["B"] != 0 || remainders["C"] != 0 || remainders["A"] <= 0 {
		t.Fatalf("remainders %v: only A, the largest contributor, gets one", remainders)
	}
	bw.Total = new(big.Int).Add(tree.Root().Sum, big.NewInt(1)).String()
	if _, err := BuildProof(bw, leaves, "A"); err == nil {
		t.Fatal("a proof against a root the leaves do not hash to")
	}
}

// countingWindows serves one block's window and counts the leaf reads.
type countingWindows struct {
	bw     BlockWindow
	leaves []window.Leaf
	reads  atomic.Int32
}

func (c *countingWindows) Blocks(context.Context, int) ([]Block, error) { return nil, nil }

func (c *countingWindows) BlockWindow(_ context.Context, hash string) (BlockWindow, error) {
	if hash != c.bw.Hash {
		return BlockWindow{}, ErrNotFound
	}
	return c.bw, nil
}

func (c *countingWindows) WindowLeaves(_ context.Context, _ string, fn func(window.Leaf) error) error {
	c.reads.Add(1)
	for _, l := range c.leaves {
		if err := fn(l); err != nil {
			return err
		}
	}
	return nil
}

// TestProofCache: a proof is built from the window's leaves once, then
// served from the cache; another address, or the block becoming credited,
// builds a new one; concurrent requests for one proof read the leaves once.
func TestProofCache(t *testing.T) {
	leaves := []window.Leaf{
		{Address: "A", Units: "600", FirstSeq: "i:1", LastSeq: "i:1"},
		{Address: "B", Units: "400", FirstSeq: "i:2", LastSeq: "i:2"},
	}
	tree, err := window.Build(leaves)
	if err != nil {
		t.Fatal(err)
	}
	cw := &countingWindows{leaves: leaves, bw: BlockWindow{Hash: strings.Repeat("ab", 32),
		Root: tree.Root().Hash.String(), Total: tree.Root().Sum.String()}}
	s, err := New(Config{Blocks: cw})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	get := func(addr string) (int, string) {
		return do(t, h, "GET", "/api/v1/blocks/"+cw.bw.Hash+"/proof?address="+addr, "", "")
	}
	for i := range 3 {
		if code, body := get("A"); code != 200 || !strings.Contains(body, `"address": "A"`) {
			t.Fatalf("request %d: %d %s", i, code, body)
		}
	}
	if n := cw.reads.Load(); n != 1 {
		t.Fatalf("3 requests for one proof read the window %d times, want 1", n)
	}
	if code, _ := get("B"); code != 200 || cw.reads.Load() != 2 {
		t.Fatalf("another address: %d, %d reads", code, cw.reads.Load())
	}
	if code, _ := get("C"); code != 404 || cw.reads.Load() != 3 {
		t.Fatalf("an address without shares: %d, %d reads", code, cw.reads.Load())
	}
	if code, _ := get("C"); code != 404 || cw.reads.Load() != 3 {
		t.Fatalf("the same again: %d, %d reads (want the cached answer)", code, cw.reads.Load())
	}
	cw.bw.Credited, cw.bw.Reward, cw.bw.Fee, cw.bw.Credits = true, 1000, 10, map[string]int64{"A": 594, "B": 396}
	if code, body := get("A"); code != 200 || !strings.Contains(body, `"credit": 594`) || cw.reads.Load() != 4 {
		t.Fatalf("after the credit: %d %s, %d reads", code, body, cw.reads.Load())
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if code, _ := get("B"); code != 200 {
				t.Errorf("concurrent request: %d", code)
			}
		})
	}
	wg.Wait()
	if n := cw.reads.Load(); n != 5 {
		t.Fatalf("8 concurrent requests for a new proof: %d reads in all, want 5", n)
	}
}
