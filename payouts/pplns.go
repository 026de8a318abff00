package payouts

import (
	"errors"
	"fmt"
	"math/big"
	"sort"
)

// MaxFeeBasisPoints is a fee of 100%.
const MaxFeeBasisPoints = 10_000

// ErrInvalidSplit reports input that cannot be split (negative amounts, a fee
// outside 0–100%, an empty address).
var ErrInvalidSplit = errors.New("payouts: invalid split input")

// WindowShare is one entry of the PPLNS window as the share ledger keeps it.
type WindowShare struct {
	Address string
	Units   *big.Int // share (target) difficulty in diff units (shares/ledger.DiffToUnits)
}

// Contribution is the difficulty one payout address contributed to a block's
// window.
type Contribution struct {
	Address string
	Units   *big.Int
}

// Credit is the satoshis one address earns from a block.
type Credit struct {
	Address string
	Amount  int64
}

// Allocation is how a block reward is divided. Fee plus the sum of Credits
// is always Reward.
type Allocation struct {
	Reward  int64
	Fee     int64    // to the pool's fee account
	Credits []Credit // sorted by address; addresses earning 0 sat are left out
}

// SumWindow adds up the window, newest share first, until n difficulty units
// are reached: the share that crosses n counts only for the part inside the
// window, older shares not at all. A nil or non-positive n counts the whole
// window. Contributions come back sorted by address with their total.
func SumWindow(window []WindowShare, n *big.Int) ([]Contribution, *big.Int, error) {
	limited := n != nil && n.Sign() > 0
	total := new(big.Int)
	sums := map[string]*big.Int{}
	for i, s := range window {
		if s.Address == "" || s.Units == nil || s.Units.Sign() < 0 {
			return nil, nil, fmt.Errorf("%w: window entry %d", ErrInvalidSplit, i)
		}
		u := s.Units
		if limited {
			left := new(big.Int).Sub(n, total)
			if left.Sign() <= 0 {
				break
			}
			if u.Cmp(left) > 0 {
				u = left
			}
		}
		if sums[s.Address] == nil {
			sums[s.Address] = new(big.Int)
		}
		sums[s.Address].Add(sums[s.Address], u)
		total.Add(total, u)
	}
	out := make([]Contribution, 0, len(sums))
	for a, u := range sums {
		out = append(out, Contribution{Address: a, Units: u})
	}
	sortContributions(out)
	return out, total, nil
}

// sortContributions sorts by address (byte order).
func sortContributions(c []Contribution) {
	sort.Slice(c, func(i, j int) bool { return c[i].Address < c[j].Address })
}

// Split divides reward satoshis: first the pool fee, feeBasisPoints/10000 of
// the reward rounded down; then the rest in proportion to each address's
// difficulty units, each share rounded down. The rounding remainder (fewer
// satoshis than there are addresses) goes to the largest contributor; on a
// tie, to the address that sorts first (byte order). With no difficulty at
// all (an empty window) the whole reward goes to the fee account, since there
// is nobody to credit. Duplicate addresses are merged.
func Split(reward, feeBasisPoints int64, contributions []Contribution) (Allocation, error) {
	if reward < 0 {
		return Allocation{}, fmt.Errorf("%w: negative reward %d", ErrInvalidSplit, reward)
	}
	if feeBasisPoints < 0 || feeBasisPoints > MaxFeeBasisPoints {
		return Allocation{}, fmt.Errorf("%w: fee %d basis points", ErrInvalidSplit, feeBasisPoints)
	}
	sums := map[string]*big.Int{}
	total := new(big.Int)
	for i, c := range contributions {
		if c.Address == "" || c.Units == nil || c.Units.Sign() < 0 {
			return Allocation{}, fmt.Errorf("%w: contribution %d", ErrInvalidSplit, i)
		}
		if sums[c.Address] == nil {
			sums[c.Address] = new(big.Int)
		}
		sums[c.Address].Add(sums[c.Address], c.Units)
		total.Add(total, c.Units)
	}
	a := Allocation{Reward: reward}
	// reward ≤ 21e14 and basis points ≤ 1e4: the product fits in int64.
	a.Fee = reward * feeBasisPoints / MaxFeeBasisPoints
	if total.Sign() == 0 {
		a.Fee = reward
		return a, nil
	}
	miners := reward - a.Fee
	addrs := make([]string, 0, len(sums))
	for addr := range sums {
		addrs = append(addrs, addr)
	}
	sort.Strings(addrs)
	amounts := make([]int64, len(addrs))
	var paid int64
	largest := -1
	m := big.NewInt(miners)
	q := new(big.Int)
	for i, addr := range addrs {
		u := sums[addr]
		q.Mul(m, u)
		q.Quo(q, total) // ≤ miners, so it fits in int64
		amounts[i] = q.Int64()
		paid += amounts[i]
		// Strictly greater keeps the first address (byte order) on a tie.
		if largest < 0 || u.Cmp(sums[addrs[largest]]) > 0 {
			largest = i
		}
	}
	amounts[largest] += miners - paid
	for i, addr := range addrs {
		if amounts[i] > 0 {
			a.Credits = append(a.Credits, Credit{Address: addr, Amount: amounts[i]})
		}
	}
	return a, nil
}

// ErrCreditMismatch is returned (wrapped) by AuditCredit.
var ErrCreditMismatch = errors.New("payouts: credits do not match the snapshot")

// AuditCredit checks a credited block against its snapshot: the recorded
// credits plus the fee add up to the reward, and they are exactly what Split
// gives for the reward less the fee (the fee rate is not recorded; splitting
// reward − fee at 0% divides the miners' part the same way). Tests and
// operators use it to confirm a block paid what its snapshot implies.
func AuditCredit(b Block, contributions []Contribution, credited map[string]int64) error {
	if b.Status != StatusCredited {
		return fmt.Errorf("%w: block %s is %s", ErrCreditMismatch, b.Hash, b.Status)
	}
	var sum int64
	for _, v := range credited {
		sum += v
	}
	if sum+b.Fee != b.Reward {
		return fmt.Errorf("%w: block %s: credits %d + fee %d != reward %d", ErrCreditMismatch, b.Hash, sum, b.Fee, b.Reward)
	}
	if b.Reward < b.Fee {
		return fmt.Errorf("%w: block %s: fee %d above reward %d", ErrCreditMismatch, b.Hash, b.Fee, b.Reward)
	}
	want, err := Split(b.Reward-b.Fee, 0, contributions)
	if err != nil {
		return fmt.Errorf("audit block %s: %w", b.Hash, err)
	}
	if want.Fee != 0 {
		// An empty snapshot: everything must have gone to the fee account.
		if len(credited) != 0 || b.Fee != b.Reward {
			return fmt.Errorf("%w: block %s: empty snapshot but %d sat credited to miners", ErrCreditMismatch, b.Hash, sum)
		}
		return nil
	}
	if len(want.Credits) != len(credited) {
		return fmt.Errorf("%w: block %s: %d addresses credited, snapshot implies %d", ErrCreditMismatch, b.Hash, len(credited), len(want.Credits))
	}
	for _, c := range want.Credits {
		if got, ok := credited[c.Address]; !ok || got != c.Amount {
			return fmt.Errorf("%w: block %s: %s credited %d, snapshot implies %d", ErrCreditMismatch, b.Hash, c.Address, got, c.Amount)
		}
	}
	return nil
}
