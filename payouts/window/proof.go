package window

import (
	"encoding/json"
	"fmt"
	"math/big"
)

// ProofVersion is the version of the Proof format.
const ProofVersion = 1

// maxProofLeaves bounds the leaves one proof may carry, and maxTreeLeaves
// the leaf count it may claim, so a hostile proof cannot make the verifier
// work or allocate without bound (a path is at most 64 siblings).
const (
	maxProofLeaves = 1 << 20
	maxTreeLeaves  = 1 << 40
)

// ProofLeaf is one leaf of the address with its position and sibling path.
type ProofLeaf struct {
	Index uint64   `json:"index"`
	Leaf  Leaf     `json:"leaf"`
	Path  []Branch `json:"path"`
}

// Branch is one sibling on a path: its hash and sum of units.
type Branch struct {
	Hash Hash   `json:"hash"`
	Sum  string `json:"sum"`
}

// Proof shows an address's leaves in a block's window and the credit they
// earned. Everything a verifier needs is in it; see docs/verify.md.
type Proof struct {
	Version int    `json:"version"`
	Block   string `json:"block"` // block hash, RPC display order
	Address string `json:"address"`

	// The tree: its root, total (the root's sum) and number of leaves.
	Root      Hash   `json:"root"`
	Total     string `json:"total"`
	LeafCount uint64 `json:"leaf_count"`

	Leaves []ProofLeaf `json:"leaves"`
	// Units is Σ units of Leaves: the address's part of the window.
	Units string `json:"units"`

	// Money, integer satoshis: the block reward paying the pool, the pool
	// fee out of it, and what the address was credited (0 while the block is
	// not credited; Credited says whether it is). Remainder is the part of
	// Credit above ⌊(Reward − Fee) × Units / Total⌋: the rounding leftover,
	// which only the largest contributor receives.
	Credited     bool  `json:"credited"`
	Reward       int64 `json:"reward"`
	Fee          int64 `json:"fee"`
	Credit       int64 `json:"credit"`
	Remainder    int64 `json:"remainder"`
	Contributors int64 `json:"contributors"`
}

// ParseProof decodes a JSON proof.
func ParseProof(b []byte) (*Proof, error) {
	var p Proof
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%w: proof: %v", ErrInvalid, err)
	}
	return &p, nil
}

// NewProof builds the proof of every leaf of address in t. The money fields
// are left for the caller.
func NewProof(t *Tree, block, address string) (*Proof, error) {
	root := t.Root()
	p := &Proof{Version: ProofVersion, Block: block, Address: address, Root: root.Hash,
		Total: root.Sum.String(), LeafCount: uint64(t.Len())}
	units := new(big.Int)
	for i, l := range t.leaves {
		if l.Address != address {
			continue
		}
		path, err := t.Path(i)
		if err != nil {
			return nil, err
		}
		pl := ProofLeaf{Index: uint64(i), Leaf: l, Path: make([]Branch, len(path))}
		for k, n := range path {
			pl.Path[k] = Branch{Hash: n.Hash, Sum: n.Sum.String()}
		}
		p.Leaves = append(p.Leaves, pl)
		units.Add(units, t.levels[0][i].Sum)
	}
	p.Units = units.String()
	return p, nil
}

// Verify checks the proof: every leaf is the address's, at a distinct index,
// and its path leads to Root with sum Total; Units is the sum of the leaves;
// and, when Credited, Credit is the address's share of Reward − Fee in the
// split of payouts.Split (⌊(Reward − Fee) × Units / Total⌋, plus Remainder,
// which is below Contributors). It never panics on malformed input. The
// error names what differs.
func (p *Proof) Verify() error {
	if p.Version != ProofVersion {
		return fmt.Errorf("%w: proof version %d (want %d)", ErrInvalid, p.Version, ProofVersion)
	}
	if p.Address == "" {
		return fmt.Errorf("%w: proof without address", ErrInvalid)
	}
	total, err := ParseUnits(p.Total)
	if err != nil {
		return fmt.Errorf("total: %w", err)
	}
	if p.LeafCount == 0 || p.LeafCount > maxTreeLeaves {
		return fmt.Errorf("%w: leaf count %d", ErrInvalid, p.LeafCount)
	}
	if len(p.Leaves) > maxProofLeaves || uint64(len(p.Leaves)) > p.LeafCount {
		return fmt.Errorf("%w: %d leaves in a proof of a %d-leaf tree", ErrInvalid, len(p.Leaves), p.LeafCount)
	}
	units := new(big.Int)
	seen := make(map[uint64]bool, len(p.Leaves))
	for k, pl := range p.Leaves {
		if pl.Leaf.Address != p.Address {
			return fmt.Errorf("%w: leaf %d is of address %q, not %q", ErrMismatch, pl.Index, truncate(pl.Leaf.Address), truncate(p.Address))
		}
		if seen[pl.Index] {
			return fmt.Errorf("%w: leaf index %d given twice", ErrMismatch, pl.Index)
		}
		seen[pl.Index] = true
		leaf, err := LeafNode(pl.Leaf)
		if err != nil {
			return fmt.Errorf("proof leaf %d: %w", k, err)
		}
		path := make([]Node, len(pl.Path))
		for j, b := range pl.Path {
			s, err := ParseUnits(b.Sum)
			if err != nil {
				return fmt.Errorf("proof leaf %d sibling %d: %w", k, j, err)
			}
			path[j] = Node{Hash: b.Hash, Sum: s}
		}
		got, err := RootFromPath(leaf, pl.Index, p.LeafCount, path)
		if err != nil {
			return fmt.Errorf("proof leaf %d: %w", pl.Index, err)
		}
		if got.Hash != p.Root {
			return fmt.Errorf("%w: leaf %d (%s units, %s..%s) leads to root %s, proof says %s",
				ErrMismatch, pl.Index, pl.Leaf.Units, truncate(pl.Leaf.FirstSeq), truncate(pl.Leaf.LastSeq), got.Hash, p.Root)
		}
		if got.Sum.Cmp(total) != 0 {
			return fmt.Errorf("%w: leaf %d's path sums to %s units, proof total is %s", ErrMismatch, pl.Index, got.Sum, total)
		}
		units.Add(units, leaf.Sum)
	}
	claimed, err := ParseUnits(p.Units)
	if err != nil {
		return fmt.Errorf("units: %w", err)
	}
	if claimed.Cmp(units) != 0 {
		return fmt.Errorf("%w: address units %s, its leaves sum to %s", ErrMismatch, claimed, units)
	}
	if !p.Credited {
		return nil
	}
	return p.verifyCredit(units, total)
}

func (p *Proof) verifyCredit(units, total *big.Int) error {
	if p.Reward < 0 || p.Fee < 0 || p.Fee > p.Reward || p.Credit < 0 || p.Remainder < 0 {
		return fmt.Errorf("%w: reward %d, fee %d, credit %d, remainder %d", ErrMismatch, p.Reward, p.Fee, p.Credit, p.Remainder)
	}
	if total.Sign() == 0 {
		if p.Credit != 0 {
			return fmt.Errorf("%w: credit %d sat from an empty window", ErrMismatch, p.Credit)
		}
		return nil
	}
	base := new(big.Int).Mul(big.NewInt(p.Reward-p.Fee), units)
	base.Quo(base, total)
	if !base.IsInt64() || base.Int64()+p.Remainder != p.Credit {
		return fmt.Errorf("%w: credit %d sat, but ⌊(reward %d − fee %d) × units %s / total %s⌋ = %s sat plus remainder %d",
			ErrMismatch, p.Credit, p.Reward, p.Fee, units, total, base, p.Remainder)
	}
	if p.Remainder > 0 && p.Remainder >= p.Contributors {
		return fmt.Errorf("%w: remainder %d sat not below the %d contributors", ErrMismatch, p.Remainder, p.Contributors)
	}
	return nil
}

// ProofBuilder builds the proof of one address from a window's leaves added
// one at a time, oldest first, holding O(log n) nodes plus the proof itself
// (a mainnet window has some 10^6 leaves; Tree holds them all). Its proof
// is the one NewProof gives for the same leaves.
type ProofBuilder struct {
	address string
	proof   Proof
	units   *big.Int
	// stack holds the roots of complete subtrees, heights strictly
	// decreasing, each with the indexes (into proof.Leaves) of the
	// address's leaves below it.
	stack []proofNode
	n     uint64
}

type proofNode struct {
	node    Node
	height  int
	targets []int
}

// NewProofBuilder starts the proof of address in block (RPC display order).
func NewProofBuilder(block, address string) *ProofBuilder {
	return &ProofBuilder{address: address, units: new(big.Int),
		proof: Proof{Version: ProofVersion, Block: block, Address: address}}
}

// join pairs left and right, appending each to the paths of the other's
// target leaves.
func join(left, right proofNode, leaves []ProofLeaf) (proofNode, error) {
	p, err := Parent(left.node, right.node)
	if err != nil {
		return proofNode{}, err
	}
	for _, t := range right.targets {
		leaves[t].Path = append(leaves[t].Path, Branch{Hash: left.node.Hash, Sum: left.node.Sum.String()})
	}
	for _, t := range left.targets {
		leaves[t].Path = append(leaves[t].Path, Branch{Hash: right.node.Hash, Sum: right.node.Sum.String()})
	}
	var targets []int
	if len(left.targets)+len(right.targets) > 0 {
		targets = append(append(targets, left.targets...), right.targets...)
	}
	return proofNode{node: p, height: left.height + 1, targets: targets}, nil
}

// Add hashes leaf l and adds it after the leaves added before.
func (b *ProofBuilder) Add(l Leaf) error {
	node, err := LeafNode(l)
	if err != nil {
		return fmt.Errorf("leaf %d: %w", b.n, err)
	}
	cur := proofNode{node: node}
	if l.Address == b.address {
		cur.targets = []int{len(b.proof.Leaves)}
		b.proof.Leaves = append(b.proof.Leaves, ProofLeaf{Index: b.n, Leaf: l, Path: []Branch{}})
		b.units.Add(b.units, node.Sum)
	}
	for k := len(b.stack) - 1; k >= 0 && b.stack[k].height == cur.height; k-- {
		if cur, err = join(b.stack[k], cur, b.proof.Leaves); err != nil {
			return err
		}
		b.stack = b.stack[:k]
	}
	b.stack = append(b.stack, cur)
	b.n++
	return nil
}

// Proof returns the proof of the leaves added so far: the address's leaves
// (none when it has no leaf: check len(Leaves)), their paths, the root, the
// total and the leaf count. The money fields are left for the caller.
func (b *ProofBuilder) Proof() (*Proof, error) {
	p := b.proof
	p.LeafCount, p.Units = b.n, b.units.String()
	if len(b.stack) == 0 {
		p.Total = "0"
		return &p, nil
	}
	// The incomplete subtrees joined right to left (as RootBuilder.Root),
	// on copies: the builder can take more leaves.
	p.Leaves = make([]ProofLeaf, len(b.proof.Leaves))
	for i, l := range b.proof.Leaves {
		l.Path = append([]Branch{}, l.Path...)
		p.Leaves[i] = l
	}
	acc := b.stack[len(b.stack)-1]
	for k := len(b.stack) - 2; k >= 0; k-- {
		var err error
		if acc, err = join(b.stack[k], acc, p.Leaves); err != nil {
			return nil, err
		}
	}
	p.Root, p.Total = acc.node.Hash, acc.node.Sum.String()
	return &p, nil
}
