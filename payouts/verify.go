package payouts

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/lode-pool/lode/payouts/window"
)

// ErrWindowMismatch is returned (wrapped) by VerifyWindow.
var ErrWindowMismatch = errors.New("payouts: window does not match the block record")

// LeafContributions sums the leaves' units per address (sorted by address),
// the input of Split.
func LeafContributions(leaves []window.Leaf) ([]Contribution, error) {
	sums := map[string]*big.Int{}
	var out []Contribution
	for i, l := range leaves {
		u, err := window.ParseUnits(l.Units)
		if err != nil {
			return nil, fmt.Errorf("leaf %d: %w", i, err)
		}
		if sums[l.Address] == nil {
			sums[l.Address] = new(big.Int)
			out = append(out, Contribution{Address: l.Address, Units: sums[l.Address]})
		}
		sums[l.Address].Add(sums[l.Address], u)
	}
	sortContributions(out)
	return out, nil
}

// VerifyWindow recomputes a block's window from its archived leaves (oldest
// first) and checks it against the block record: the Merkle-sum root, the
// total, the number of leaves, the sequence bounds, the window size; and,
// once the block is credited, that credits (address → satoshis) are exactly
// the split of the reward less the fee over the leaves' units, remainder
// rule included (AuditCredit). The error names the first thing that differs.
func VerifyWindow(b Block, leaves []window.Leaf, credits map[string]int64) error {
	tree, err := window.Build(leaves)
	if err != nil {
		return fmt.Errorf("%w: block %s: archive: %w", ErrWindowMismatch, b.Hash, err)
	}
	root := tree.Root()
	switch {
	case b.WindowRoot == nil:
		return fmt.Errorf("%w: block %s has no window root", ErrWindowMismatch, b.Hash)
	case root.Hash != *b.WindowRoot:
		return fmt.Errorf("%w: block %s: window root: the archive hashes to %s, the record says %s", ErrWindowMismatch, b.Hash, root.Hash, b.WindowRoot)
	case b.WindowUnits == nil || root.Sum.Cmp(b.WindowUnits) != 0:
		return fmt.Errorf("%w: block %s: window total: the archive sums to %s units, the record says %v", ErrWindowMismatch, b.Hash, root.Sum, b.WindowUnits)
	case int64(len(leaves)) != b.WindowLeaves:
		return fmt.Errorf("%w: block %s: the archive has %d leaves, the record says %d", ErrWindowMismatch, b.Hash, len(leaves), b.WindowLeaves)
	case b.WindowLimit != nil && b.WindowLimit.Sign() > 0 && root.Sum.Cmp(b.WindowLimit) > 0:
		return fmt.Errorf("%w: block %s: window total %s above the window size %s", ErrWindowMismatch, b.Hash, root.Sum, b.WindowLimit)
	}
	if n := len(leaves); n > 0 {
		if leaves[0].FirstSeq != b.WindowFirstSeq || leaves[n-1].LastSeq != b.WindowLastSeq {
			return fmt.Errorf("%w: block %s: the archive spans %s..%s, the record says %s..%s", ErrWindowMismatch, b.Hash,
				leaves[0].FirstSeq, leaves[n-1].LastSeq, b.WindowFirstSeq, b.WindowLastSeq)
		}
	}
	if b.Status != StatusCredited {
		return nil
	}
	contributions, err := LeafContributions(leaves)
	if err != nil {
		return fmt.Errorf("%w: block %s: %w", ErrWindowMismatch, b.Hash, err)
	}
	return AuditCredit(b, contributions, credits)
}
