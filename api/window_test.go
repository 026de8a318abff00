package api

import (
	"math/big"
	"strings"
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
