package window

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestGroupProofMatchesNewProof: for windows of 1 to a few thousand leaves
// and groups of 1 to 256 leaves, the group nodes give the tree's root, and
// the proof of every address made from its groups alone is the proof
// NewProof makes from the whole tree, and it verifies.
func TestGroupProofMatchesNewProof(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 3))
	for _, n := range []int{1, 2, 3, 7, 8, 9, 255, 256, 257, 1000, 3001} {
		leaves := randomLeaves(r, n)
		tree, err := Build(leaves)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []uint{0, 1, 2, 3, 5, 8} {
			t.Run(fmt.Sprintf("%d leaves, groups of %d", n, 1<<k), func(t *testing.T) {
				gb, err := NewGroupBuilder(k)
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range leaves {
					if err := gb.Add(l); err != nil {
						t.Fatal(err)
					}
				}
				groups, root, err := gb.Groups()
				if err != nil {
					t.Fatal(err)
				}
				if want := tree.Root(); root.Hash != want.Hash || root.Sum.Cmp(want.Sum) != 0 {
					t.Fatalf("root from groups %s, tree %s", root.Hash, want.Hash)
				}
				size := 1 << k
				for _, addr := range addresses(leaves) {
					byGroup := map[int][]Leaf{}
					for i, l := range leaves {
						if l.Address == addr {
							g := i / size
							byGroup[g] = leaves[g*size : min((g+1)*size, n)]
						}
					}
					got, err := GroupProof("blk", addr, k, uint64(n), groups, byGroup)
					if err != nil {
						t.Fatal(err)
					}
					want, err := NewProof(tree, "blk", addr)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("proof of %s from groups:\n%+v\nfrom the tree:\n%+v", addr, got, want)
					}
					if err := got.Verify(); err != nil {
						t.Fatalf("proof of %s: %v", addr, err)
					}
				}
			})
		}
	}
}

func addresses(leaves []Leaf) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range leaves {
		if !seen[l.Address] {
			seen[l.Address] = true
			out = append(out, l.Address)
		}
	}
	return out
}

// TestGroupProofRefusesForeignLeaves: a group's leaves that do not hash to
// its node, or a wrong count of them, give no proof.
func TestGroupProofRefusesForeignLeaves(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	leaves := randomLeaves(r, 40)
	gb, _ := NewGroupBuilder(3)
	for _, l := range leaves {
		if err := gb.Add(l); err != nil {
			t.Fatal(err)
		}
	}
	groups, _, err := gb.Groups()
	if err != nil {
		t.Fatal(err)
	}
	addr := leaves[9].Address
	tampered := append([]Leaf{}, leaves[8:16]...)
	tampered[1].Units = "1"
	for name, byGroup := range map[string]map[int][]Leaf{
		"tampered leaf": {1: tampered},
		"short group":   {1: leaves[8:15]},
		"other group":   {1: leaves[16:24]},
	} {
		if _, err := GroupProof("blk", addr, 3, 40, groups, byGroup); !errors.Is(err, ErrMismatch) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := GroupProof("blk", addr, 3, 41, groups, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("wrong leaf count: err = %v", err)
	}
}
