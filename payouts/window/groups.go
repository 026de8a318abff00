package window

import (
	"fmt"
	"math/big"
)

// Group nodes: the tree's nodes at height k, one per group of 2^k
// consecutive leaves (the last group possibly shorter). They are what a
// store keeps beside a window so that a proof reads only the groups that
// hold an address's leaves, not the whole window: below height k the tree
// over a group's leaves is the tree Build makes of those leaves alone (a
// group starts at a multiple of 2^k, so its pairs never cross its edges and
// its odd last node is promoted the same way), and from height k up the
// tree is Build's over the group nodes. Nothing here changes the tree
// (docs/verify.md): a proof made from groups is the proof NewProof makes
// from the whole tree.

// MaxGroupBits bounds k.
const MaxGroupBits = 20

// GroupBuilder computes the group nodes and the root of a window's tree
// from its leaves added one at a time, oldest first, holding O(k) nodes
// plus the group nodes.
type GroupBuilder struct {
	k      uint
	groups []Node
	cur    RootBuilder
	n      uint64
}

// NewGroupBuilder starts the groups of 2^k leaves.
func NewGroupBuilder(k uint) (*GroupBuilder, error) {
	if k > MaxGroupBits {
		return nil, fmt.Errorf("%w: group of 2^%d leaves", ErrInvalid, k)
	}
	return &GroupBuilder{k: k}, nil
}

// Add hashes leaf l and adds it after the leaves added before.
func (b *GroupBuilder) Add(l Leaf) error {
	if err := b.cur.Add(l); err != nil {
		return fmt.Errorf("leaf %d: %w", b.n, err)
	}
	b.n++
	if b.cur.Len() == 1<<b.k {
		return b.close()
	}
	return nil
}

func (b *GroupBuilder) close() error {
	g, err := b.cur.Root()
	if err != nil {
		return err
	}
	b.groups = append(b.groups, g)
	b.cur = RootBuilder{}
	return nil
}

// Groups returns the group nodes of the leaves added so far (the last group
// closed as it is) and the tree's root. No leaf may be added after it.
func (b *GroupBuilder) Groups() ([]Node, Node, error) {
	if b.cur.Len() > 0 {
		if err := b.close(); err != nil {
			return nil, Node{}, err
		}
	}
	root, err := rootOfNodes(b.groups)
	return b.groups, root, err
}

// Len returns the number of leaves added.
func (b *GroupBuilder) Len() uint64 { return b.n }

// nodeLevels builds the levels of the tree over nodes (Build's over the
// leaf nodes, GroupProof's over the group nodes): pairs hashed, an odd last
// node promoted unchanged.
func nodeLevels(nodes []Node) ([][]Node, error) {
	if len(nodes) == 0 {
		return nil, nil
	}
	levels := [][]Node{nodes}
	level := nodes
	for len(level) > 1 {
		next := make([]Node, 0, (len(level)+1)/2)
		for i := 0; i+1 < len(level); i += 2 {
			p, err := Parent(level[i], level[i+1])
			if err != nil {
				return nil, err
			}
			next = append(next, p)
		}
		if len(level)%2 == 1 {
			next = append(next, level[len(level)-1]) // promoted unchanged
		}
		levels = append(levels, next)
		level = next
	}
	return levels, nil
}

func rootOfNodes(nodes []Node) (Node, error) {
	levels, err := nodeLevels(nodes)
	if err != nil || len(levels) == 0 {
		return Node{Sum: new(big.Int)}, err
	}
	return levels[len(levels)-1][0], nil
}

// levelPath returns the siblings from node i of levels[0] up to the root,
// skipping the levels where i's ancestor is promoted without a sibling.
func levelPath(levels [][]Node, i int) []Node {
	var path []Node
	for _, level := range levels[:len(levels)-1] {
		switch {
		case i%2 == 1:
			path = append(path, level[i-1])
		case i+1 < len(level):
			path = append(path, level[i+1])
		}
		i /= 2
	}
	return path
}

// GroupProof builds the proof of address from a window's group nodes
// (groups of 2^k leaves, leafCount leaves in all) and the leaves of the
// groups that hold the address's leaves, keyed by group number. Each group
// given is checked against its node, so leaves that do not belong to the
// tree are an error (ErrMismatch), never a proof. The money fields are left
// for the caller; the proof equals NewProof's over the whole tree.
func GroupProof(block, address string, k uint, leafCount uint64, groups []Node, leaves map[int][]Leaf) (*Proof, error) {
	if k > MaxGroupBits {
		return nil, fmt.Errorf("%w: group of 2^%d leaves", ErrInvalid, k)
	}
	size := uint64(1) << k
	if want := (leafCount + size - 1) / size; uint64(len(groups)) != want {
		return nil, fmt.Errorf("%w: %d group nodes for %d leaves in groups of %d", ErrInvalid, len(groups), leafCount, size)
	}
	upper, err := nodeLevels(groups)
	if err != nil {
		return nil, err
	}
	root := Node{Sum: new(big.Int)}
	if len(upper) > 0 {
		root = upper[len(upper)-1][0]
	}
	p := &Proof{Version: ProofVersion, Block: block, Address: address, Root: root.Hash,
		Total: root.Sum.String(), LeafCount: leafCount}
	units := new(big.Int)
	for g := range len(groups) {
		ls, ok := leaves[g]
		if !ok {
			continue
		}
		if want := min(size, leafCount-uint64(g)*size); uint64(len(ls)) != want {
			return nil, fmt.Errorf("%w: group %d has %d leaves, want %d", ErrMismatch, g, len(ls), want)
		}
		t, err := Build(ls)
		if err != nil {
			return nil, fmt.Errorf("group %d: %w", g, err)
		}
		if gr := t.Root(); gr.Hash != groups[g].Hash || gr.Sum.Cmp(groups[g].Sum) != 0 {
			return nil, fmt.Errorf("%w: the leaves of group %d do not hash to its node", ErrMismatch, g)
		}
		up := levelPath(upper, g)
		for i, l := range ls {
			if l.Address != address {
				continue
			}
			in, err := t.Path(i)
			if err != nil {
				return nil, err
			}
			pl := ProofLeaf{Index: uint64(g)*size + uint64(i), Leaf: l, Path: make([]Branch, 0, len(in)+len(up))}
			for _, n := range append(in, up...) {
				pl.Path = append(pl.Path, Branch{Hash: n.Hash, Sum: n.Sum.String()})
			}
			p.Leaves = append(p.Leaves, pl)
			units.Add(units, t.levels[0][i].Sum)
		}
	}
	p.Units = units.String()
	return p, nil
}
