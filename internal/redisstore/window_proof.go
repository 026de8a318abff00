package redisstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strconv"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/redis/go-redis/v9"

	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/window"
)

// The proof index of a block's window (docs/redis.md, "proof index"): the
// tree's nodes at height proofGroupBits, one per group of 2^proofGroupBits
// consecutive leaves, and where each group's first leaf starts among the
// window's slices. With it a proof reads only the groups that hold the
// address's leaves (found with one LPOS per slice) instead of the whole
// window; the tree and the archive are unchanged (docs/verify.md). It is
// written once, by the pass over the leaves that computes the window's root
// when the block is recorded, and deleted with the archive.
//
// It holds no address → leaf positions map: that would be one number per
// leaf (5.2·10^5 for a mainnet window, ~1 MB per block with the addresses,
// kept for every retained block), while the slices already map an address
// to its entry (one per slice, found by LPOS in Redis), and the group
// cursors turn an entry into its group.

// proofGroupBits: groups of 256 leaves. A mainnet window (5.2·10^5 leaves)
// has 2,047 groups: 98 KB of nodes and 33 KB of cursors per block; an
// address with a leaf in each of the ~80 slices reads at most 80 groups,
// some 4% of the window.
const proofGroupBits = 8

// Fields of the proof index hash.
const (
	proofFieldBits         = "k"
	proofFieldLeaves       = "leaves"
	proofFieldContributors = "contributors"
	proofFieldNodes        = "nodes"   // per group: 32-byte hash, 16-byte big-endian sum
	proofFieldCursors      = "cursors" // per group: 8-byte slice id, 8-byte entry index (big-endian)
)

const (
	proofNodeBytes   = 32 + window.SumBytes
	proofCursorBytes = 16
)

// blockProofIndexKey is the hash of block hash's proof index.
func (s *Store) blockProofIndexKey(hash string) string {
	return s.key(acctTag, "block", hash, "proofidx")
}

// cursor is where a leaf starts: a slice and an entry index in it.
type cursor struct{ id, pos int64 }

func (c cursor) less(d cursor) bool { return c.id < d.id || c.id == d.id && c.pos < d.pos }

// IndexWindow implements payouts.WindowIndexer: one pass over the block's
// window leaves that returns the tree's root and, for a window kept in
// slices, stores its proof index. An archive from before slices is read and
// its root returned without an index (its proofs read the whole window).
func (s *Store) IndexWindow(ctx context.Context, hash chainhash.Hash) (window.Node, error) {
	return s.indexWindow(ctx, hash, proofGroupBits)
}

// indexWindow is IndexWindow with groups of 2^k leaves (tests use small
// groups: many of them, and groups starting inside a leaf's run).
func (s *Store) indexWindow(ctx context.Context, hash chainhash.Hash, k uint) (window.Node, error) {
	h := hash.String()
	pl, want, sliced, err := s.archivePlan(ctx, h)
	if err != nil {
		return window.Node{}, err
	}
	gb, err := window.NewGroupBuilder(k)
	if err != nil {
		return window.Node{}, err
	}
	if !sliced {
		if err := s.WindowLeaves(ctx, hash, gb.Add); err != nil {
			return window.Node{}, err
		}
		_, root, err := gb.Groups()
		return root, err
	}
	var cursors []byte
	addrs := map[string]struct{}{}
	size := uint64(1) << k
	if pl.first != 0 {
		err = s.planLeavesFrom(ctx, pl, pl.first, pl.cutIndex, sliceChunk, func(l window.Leaf, id, pos int64) error {
			if gb.Len()%size == 0 {
				cursors = binary.BigEndian.AppendUint64(cursors, uint64(id))
				cursors = binary.BigEndian.AppendUint64(cursors, uint64(pos))
			}
			addrs[l.Address] = struct{}{}
			return gb.Add(l)
		})
		if err != nil {
			return window.Node{}, fmt.Errorf("redisstore: window of %s, leaf %d: %w", h, gb.Len(), err)
		}
	}
	if int64(gb.Len()) != want {
		return window.Node{}, fmt.Errorf("redisstore: window of %s has %d leaves, its record says %d", h, gb.Len(), want)
	}
	groups, root, err := gb.Groups()
	if err != nil {
		return window.Node{}, fmt.Errorf("redisstore: window of %s: %w", h, err)
	}
	nodes := make([]byte, 0, len(groups)*proofNodeBytes)
	for _, g := range groups {
		nodes = append(nodes, g.Hash[:]...)
		var sum [window.SumBytes]byte
		g.Sum.FillBytes(sum[:]) // the builder bounded it to 128 bits
		nodes = append(nodes, sum[:]...)
	}
	err = s.rdb.HSet(ctx, s.blockProofIndexKey(h), proofFieldBits, k, proofFieldLeaves, gb.Len(),
		proofFieldContributors, len(addrs), proofFieldNodes, nodes, proofFieldCursors, cursors).Err()
	if err != nil {
		return window.Node{}, fmt.Errorf("redisstore: write the proof index of %s: %w", h, err)
	}
	return root, nil
}

// proofIndex is a block's proof index as read.
type proofIndex struct {
	k            uint
	leaves       uint64
	contributors int64
	groups       []window.Node
	cursors      []cursor
}

func parseProofIndex(m map[string]string) (proofIndex, error) {
	var ix proofIndex
	k, e1 := strconv.ParseUint(m[proofFieldBits], 10, 8)
	n, e2 := strconv.ParseUint(m[proofFieldLeaves], 10, 64)
	c, e3 := strconv.ParseInt(m[proofFieldContributors], 10, 64)
	if err := errors.Join(e1, e2, e3); err != nil {
		return ix, err
	}
	ix.k, ix.leaves, ix.contributors = uint(k), n, c
	nodes, curs := m[proofFieldNodes], m[proofFieldCursors]
	g := len(nodes) / proofNodeBytes
	size := uint64(1) << ix.k
	if k > window.MaxGroupBits || len(nodes)%proofNodeBytes != 0 || len(curs) != g*proofCursorBytes || uint64(g) != (n+size-1)/size {
		return ix, fmt.Errorf("%d bytes of nodes and %d of cursors for %d leaves in groups of 2^%d", len(nodes), len(curs), n, k)
	}
	ix.groups = make([]window.Node, g)
	ix.cursors = make([]cursor, g)
	for i := range g {
		b := nodes[i*proofNodeBytes:]
		copy(ix.groups[i].Hash[:], b[:32])
		ix.groups[i].Sum = new(big.Int).SetBytes([]byte(b[32:proofNodeBytes]))
		c := curs[i*proofCursorBytes:]
		ix.cursors[i] = cursor{int64(binary.BigEndian.Uint64([]byte(c[:8]))), int64(binary.BigEndian.Uint64([]byte(c[8:16])))}
	}
	return ix, nil
}

// WindowProof returns the proof of address in block hash's window made
// from the block's proof index: it finds the address's entries among the
// window's slices (one LPOS per slice, in one round trip), reads only the
// groups of leaves that hold them and the stored group nodes, and checks
// each group against its node. ok is false when the block has no index
// (recorded before it, or its archive is a list from before slices): the
// caller reads the whole window then. The proof's money fields are left
// for the caller; contributors is the number of addresses in the window.
func (s *Store) WindowProof(ctx context.Context, hash chainhash.Hash, address string) (p *window.Proof, contributors int64, ok bool, err error) {
	h := hash.String()
	pl, want, sliced, err := s.archivePlan(ctx, h)
	if err != nil || !sliced {
		return nil, 0, false, err
	}
	m, err := s.rdb.HGetAll(ctx, s.blockProofIndexKey(h)).Result()
	if err != nil {
		return nil, 0, false, fmt.Errorf("redisstore: read the proof index of %s: %w", h, err)
	}
	if len(m) == 0 {
		return nil, 0, false, nil
	}
	ix, err := parseProofIndex(m)
	if err != nil {
		return nil, 0, false, fmt.Errorf("redisstore: proof index of %s: %w", h, err)
	}
	if int64(ix.leaves) != want {
		return nil, 0, false, fmt.Errorf("redisstore: proof index of %s has %d leaves, its record says %d", h, ix.leaves, want)
	}
	// The slices holding an entry of the address, and where.
	var found []cursor
	if pl.first != 0 {
		cmds := make([]*redis.IntCmd, 0, pl.last-pl.first+1)
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for id := pl.first; id <= pl.last; id++ {
				cmds = append(cmds, p.LPos(ctx, s.sliceOrderKey(id), address, redis.LPosArgs{}))
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, 0, false, fmt.Errorf("redisstore: find %s in the window of %s: %w", address, h, err)
		}
		for i, c := range cmds {
			pos, err := c.Result()
			if errors.Is(err, redis.Nil) {
				continue
			}
			if err != nil {
				return nil, 0, false, fmt.Errorf("redisstore: find %s in the window of %s: %w", address, h, err)
			}
			id := pl.first + int64(i)
			if id == pl.first && pos < pl.cutIndex {
				continue // before the window's oldest leaf
			}
			found = append(found, cursor{id, pos})
		}
	}
	// Each entry lies in the leaf that starts at or before it, whose group
	// is the last one starting at or before it.
	groups := map[int]bool{}
	for _, c := range found {
		g := sort.Search(len(ix.cursors), func(i int) bool { return c.less(ix.cursors[i]) }) - 1
		if g >= 0 {
			groups[g] = true
		}
	}
	size := uint64(1) << ix.k
	leaves := make(map[int][]window.Leaf, len(groups))
	for g := range groups {
		n := min(size, ix.leaves-uint64(g)*size)
		ls := make([]window.Leaf, 0, n)
		c := ix.cursors[g]
		// One more entry than the group's leaves: the last leaf ends where
		// another address's entry begins.
		err := s.planLeavesFrom(ctx, pl, c.id, c.pos, int64(n)+1, func(l window.Leaf, _, _ int64) error {
			ls = append(ls, l)
			if uint64(len(ls)) == n {
				return errStopLeaves
			}
			return nil
		})
		if err != nil {
			return nil, 0, false, fmt.Errorf("redisstore: window of %s, group %d: %w", h, g, err)
		}
		leaves[g] = ls
	}
	p, err = window.GroupProof(hash.String(), address, ix.k, ix.leaves, ix.groups, leaves)
	if err != nil {
		return nil, 0, false, fmt.Errorf("redisstore: proof of %s in the window of %s: %w", address, h, err)
	}
	return p, ix.contributors, true, nil
}

var _ payouts.WindowIndexer = (*Store)(nil)
