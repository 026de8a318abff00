// Package window is the verifiable form of a block's PPLNS window: the
// Merkle-sum tree over the window's leaves, its root, inclusion proofs for
// one payout address, their offline verification, and the digest the pool
// commits on chain for the windows of its previous blocks.
//
// It is pure (no Redis, no node, no network): the pool builds trees with it,
// and so do the API, `lodectl verify` and any third party re-implementing
// docs/verify.md, which specifies every byte hashed here. It lives under
// payouts because the window is the input of the PPLNS split
// (payouts.Split); it imports nothing of the pool so that a verifier can be
// built from it alone.
//
// # Leaves and order
//
// A leaf is one run of consecutive window entries of one payout address, in
// window order, oldest first: (address, units, first sequence, last
// sequence). Units are difficulty units (difficulty × 10^8, the share
// ledger's exact integer unit) as counted by the snapshot; the oldest leaf may
// be counted only in part (the part inside the window size N).
//
// # Tree
//
// Every leaf and node carries a hash and a sum of units. A node's hash is
// SHA-256 over both children's hashes and sums, so the root commits to every
// leaf, its position and the total. At each level an odd last node is
// promoted unchanged to the next level (never paired with itself: a
// duplicated node would count its units twice and make two different leaf
// lists hash alike, the flaw of Bitcoin's transaction tree). Sums are
// encoded as 128-bit big-endian integers; a mainnet window is about 2^75
// units, and a sum that does not fit is an error, never a wrap.
//
// # Errors
//
// ErrInvalid (wrapped) reports malformed input: a leaf, a proof or a
// commitment that cannot be encoded or parsed. ErrMismatch (wrapped) reports
// a well-formed proof whose figures do not verify; the message names what
// differs.
package window

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
)

// Domain separation tags: the first byte of every hashed message, so a leaf,
// a node and a commitment can never be taken for one another.
const (
	TagLeaf   = 0x00
	TagNode   = 0x01
	TagCommit = 0x02
)

// SumBytes is the width of an encoded sum of units (128 bits).
const SumBytes = 16

// MaxFieldBytes bounds each variable-length leaf field (address, sequences):
// their lengths are encoded in two bytes.
const MaxFieldBytes = 0xffff

var (
	// ErrInvalid reports input that cannot be encoded or parsed.
	ErrInvalid = errors.New("window: invalid input")
	// ErrMismatch reports a proof or window that does not verify.
	ErrMismatch = errors.New("window: verification failed")
)

// maxSum is 2^128 − 1.
var maxSum = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 8*SumBytes), big.NewInt(1))

// Hash is a SHA-256 digest.
type Hash [32]byte

// String returns the hash as lowercase hex, in byte order (no reversal).
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText implements encoding.TextMarshaler (hex).
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (64 hex digits).
func (h *Hash) UnmarshalText(b []byte) error {
	p, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = p
	return nil
}

// ParseHash parses 64 hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("%w: hash %q: want 64 hex digits", ErrInvalid, truncate(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("%w: hash %q: %v", ErrInvalid, truncate(s), err)
	}
	return h, nil
}

// Leaf is one run of consecutive window entries of one payout address.
type Leaf struct {
	Address string `json:"address"`
	// Units is the run's Σ difficulty units, a base-10 integer string
	// without leading zeros.
	Units string `json:"units"`
	// FirstSeq and LastSeq are the ledger sequences ("instance:counter") of
	// the run's oldest and newest window entries (each entry is named by its
	// first share).
	FirstSeq string `json:"first_seq"`
	LastSeq  string `json:"last_seq"`
}

// Node is a hash with the sum of units below it.
type Node struct {
	Hash Hash     `json:"hash"`
	Sum  *big.Int `json:"-"`
}

// ParseUnits parses a units string: a base-10 integer without sign or
// leading zeros that fits in 128 bits.
func ParseUnits(s string) (*big.Int, error) {
	if s == "" || len(s) > 39 {
		return nil, fmt.Errorf("%w: units %q", ErrInvalid, truncate(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return nil, fmt.Errorf("%w: units %q: not a base-10 integer", ErrInvalid, truncate(s))
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return nil, fmt.Errorf("%w: units %q: leading zero", ErrInvalid, s)
	}
	v, _ := new(big.Int).SetString(s, 10)
	if v.Cmp(maxSum) > 0 {
		return nil, fmt.Errorf("%w: units %s exceed 128 bits", ErrInvalid, s)
	}
	return v, nil
}

// putSum writes v as SumBytes big-endian bytes; v must be in [0, 2^128).
func putSum(dst []byte, v *big.Int) error {
	if v.Sign() < 0 || v.Cmp(maxSum) > 0 {
		return fmt.Errorf("%w: sum %s outside 128 bits", ErrInvalid, v)
	}
	v.FillBytes(dst[:SumBytes])
	return nil
}

func appendField(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

// LeafNode hashes a leaf:
//
//	SHA-256( 0x00 ‖ len16(address) ‖ address ‖ len16(first) ‖ first ‖
//	         len16(last) ‖ last ‖ units128 )
//
// len16 is a 2-byte big-endian length, units128 a 16-byte big-endian
// integer.
func LeafNode(l Leaf) (Node, error) {
	if l.Address == "" {
		return Node{}, fmt.Errorf("%w: leaf without address", ErrInvalid)
	}
	if len(l.Address) > MaxFieldBytes || len(l.FirstSeq) > MaxFieldBytes || len(l.LastSeq) > MaxFieldBytes {
		return Node{}, fmt.Errorf("%w: leaf field longer than %d bytes", ErrInvalid, MaxFieldBytes)
	}
	u, err := ParseUnits(l.Units)
	if err != nil {
		return Node{}, fmt.Errorf("leaf of %s: %w", truncate(l.Address), err)
	}
	msg := make([]byte, 0, 1+6+len(l.Address)+len(l.FirstSeq)+len(l.LastSeq)+SumBytes)
	msg = append(msg, TagLeaf)
	msg = appendField(msg, l.Address)
	msg = appendField(msg, l.FirstSeq)
	msg = appendField(msg, l.LastSeq)
	var sum [SumBytes]byte
	_ = putSum(sum[:], u) // ParseUnits bounded it
	msg = append(msg, sum[:]...)
	return Node{Hash: sha256.Sum256(msg), Sum: u}, nil
}

// Parent hashes two children:
//
//	SHA-256( 0x01 ‖ left hash ‖ left sum128 ‖ right hash ‖ right sum128 )
//
// and sums their units. It fails when the sum does not fit in 128 bits.
func Parent(left, right Node) (Node, error) {
	var msg [1 + 2*(32+SumBytes)]byte
	msg[0] = TagNode
	copy(msg[1:33], left.Hash[:])
	if err := putSum(msg[33:33+SumBytes], left.Sum); err != nil {
		return Node{}, err
	}
	off := 33 + SumBytes
	copy(msg[off:off+32], right.Hash[:])
	if err := putSum(msg[off+32:], right.Sum); err != nil {
		return Node{}, err
	}
	sum := new(big.Int).Add(left.Sum, right.Sum)
	if sum.Cmp(maxSum) > 0 {
		return Node{}, fmt.Errorf("%w: sum of units exceeds 128 bits", ErrInvalid)
	}
	return Node{Hash: sha256.Sum256(msg[:]), Sum: sum}, nil
}

// Tree is a Merkle-sum tree over a window's leaves. levels[0] are the leaf
// nodes, the last level holds the root.
type Tree struct {
	leaves []Leaf
	levels [][]Node
}

// Build hashes leaves (oldest first) into a tree. An empty list gives the
// empty tree, whose root is 32 zero bytes with sum 0.
func Build(leaves []Leaf) (*Tree, error) {
	t := &Tree{leaves: leaves}
	if len(leaves) == 0 {
		return t, nil
	}
	level := make([]Node, len(leaves))
	for i, l := range leaves {
		n, err := LeafNode(l)
		if err != nil {
			return nil, fmt.Errorf("leaf %d: %w", i, err)
		}
		level[i] = n
	}
	levels, err := nodeLevels(level)
	if err != nil {
		return nil, err
	}
	t.levels = levels
	return t, nil
}

// RootBuilder computes the root of the tree over leaves added one at a
// time, oldest first, holding O(log n) nodes: a window's root without its
// whole tree in memory (a mainnet window has some 10^6 leaves). The root is
// the one Build gives for the same leaves.
type RootBuilder struct {
	// stack holds the roots of complete subtrees, heights strictly
	// decreasing: the binary representation of the leaves added so far.
	stack  []Node
	height []int
	n      uint64
}

// Add hashes leaf l and adds it after the leaves added before.
func (b *RootBuilder) Add(l Leaf) error {
	node, err := LeafNode(l)
	if err != nil {
		return fmt.Errorf("leaf %d: %w", b.n, err)
	}
	h := 0
	for k := len(b.stack) - 1; k >= 0 && b.height[k] == h; k-- {
		if node, err = Parent(b.stack[k], node); err != nil {
			return err
		}
		b.stack, b.height = b.stack[:k], b.height[:k]
		h++
	}
	b.stack, b.height = append(b.stack, node), append(b.height, h)
	b.n++
	return nil
}

// Len returns the number of leaves added.
func (b *RootBuilder) Len() uint64 { return b.n }

// Root returns the root of the leaves added so far. The incomplete subtrees
// are joined right to left: the last one is promoted unchanged up to the
// height of the one before it and paired with it there, as Build does.
func (b *RootBuilder) Root() (Node, error) {
	if len(b.stack) == 0 {
		return Node{Sum: new(big.Int)}, nil
	}
	acc := b.stack[len(b.stack)-1]
	for k := len(b.stack) - 2; k >= 0; k-- {
		var err error
		if acc, err = Parent(b.stack[k], acc); err != nil {
			return Node{}, err
		}
	}
	return acc, nil
}

// Root returns the root node (the zero hash and sum 0 for an empty tree).
func (t *Tree) Root() Node {
	if len(t.levels) == 0 {
		return Node{Sum: new(big.Int)}
	}
	return t.levels[len(t.levels)-1][0]
}

// Len returns the number of leaves.
func (t *Tree) Len() int { return len(t.leaves) }

// Leaves returns the leaves (not a copy).
func (t *Tree) Leaves() []Leaf { return t.leaves }

// Path returns the siblings from leaf i up to the root, skipping the levels
// where i's ancestor is promoted without a sibling.
func (t *Tree) Path(i int) ([]Node, error) {
	if i < 0 || i >= len(t.leaves) {
		return nil, fmt.Errorf("%w: leaf index %d of %d", ErrInvalid, i, len(t.leaves))
	}
	return levelPath(t.levels, i), nil
}

// pathShape walks leaf index i of a tree of n leaves up to the root and
// calls f with, for each level where i's ancestor has a sibling, whether
// that sibling is on the left. It is how a verifier knows the expected path
// length and directions from (index, leaf count) alone.
func pathShape(i, n uint64, f func(siblingLeft bool)) {
	for n > 1 {
		switch {
		case i%2 == 1:
			f(true)
		case i+1 < n:
			f(false)
		}
		i /= 2
		n = (n + 1) / 2
	}
}

// RootFromPath recomputes the root from a leaf node, its index among n
// leaves and its sibling path (as Tree.Path gives it). The path must have
// exactly the length the tree shape implies.
func RootFromPath(leaf Node, index, n uint64, path []Node) (Node, error) {
	if n == 0 || index >= n {
		return Node{}, fmt.Errorf("%w: leaf index %d of %d leaves", ErrInvalid, index, n)
	}
	want := 0
	pathShape(index, n, func(bool) { want++ })
	if len(path) != want {
		return Node{}, fmt.Errorf("%w: path has %d siblings, leaf %d of %d needs %d", ErrInvalid, len(path), index, n, want)
	}
	cur := leaf
	k := 0
	var err error
	pathShape(index, n, func(left bool) {
		if err != nil {
			return
		}
		sib := path[k]
		k++
		if sib.Sum == nil {
			err = fmt.Errorf("%w: sibling %d without sum", ErrInvalid, k-1)
			return
		}
		if left {
			cur, err = Parent(sib, cur)
		} else {
			cur, err = Parent(cur, sib)
		}
	})
	if err != nil {
		return Node{}, err
	}
	return cur, nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
