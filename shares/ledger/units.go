package ledger

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
)

// UnitScale is the number of diff units in one unit of difficulty: one unit
// is 1e-8 difficulty, so fractional difficulties (vardiff below 1, regtest)
// are counted exactly. This file is the one definition of the pool's money
// arithmetic units: the share ledger records them, payouts splits by them,
// the API and lodectl show them.
const UnitScale = 100_000_000

// unitDecimals is log10(UnitScale).
const unitDecimals = 8

// DiffUnits converts a difficulty to diff units: d × 10^8 rounded to the
// nearest integer, as a base-10 string without leading zeros. It fails for
// NaN, infinities and negative values. A difficulty below 5e-9 is "0".
func DiffUnits(d float64) (string, error) {
	var buf [48]byte
	b, err := appendDiffUnits(buf[:0], d)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// appendDiffUnits appends the diff units of d to dst. strconv rounds the
// exact binary value of d to 8 decimals, so the result is deterministic.
func appendDiffUnits(dst []byte, d float64) ([]byte, error) {
	if math.IsNaN(d) || math.IsInf(d, 0) || d < 0 {
		return dst, fmt.Errorf("diff units of %v: not a finite non-negative number", d)
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, d, 'f', unitDecimals, 64)
	// Drop the decimal point: "12.34560000" → "1234560000".
	dot := len(dst) - unitDecimals - 1
	copy(dst[dot:], dst[dot+1:])
	dst = dst[:len(dst)-1]
	// Drop leading zeros, keeping one digit.
	i := start
	for i < len(dst)-1 && dst[i] == '0' {
		i++
	}
	n := copy(dst[start:], dst[i:])
	return dst[:start+n], nil
}

// ParseUnits parses a diff-units string as written by DiffUnits or by the
// store (a non-negative base-10 integer).
func ParseUnits(s string) (*big.Int, error) {
	if s == "" {
		return nil, fmt.Errorf("parse diff units: empty")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return nil, fmt.Errorf("parse diff units %q: not a non-negative integer", s)
		}
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return nil, fmt.Errorf("parse diff units %q: not an integer", s)
	}
	return v, nil
}

// UnitsToDifficulty converts diff units back to a (float) difficulty, for
// display and statistics only.
func UnitsToDifficulty(u *big.Int) float64 {
	f, _ := new(big.Rat).SetFrac(u, big.NewInt(UnitScale)).Float64()
	return f
}

// DiffToUnits is DiffUnits as an integer: d × 10^8 rounded to the nearest
// integer (0.3, really 0.29999…, is 30000000 units). NaN, infinities and
// negative values give 0.
func DiffToUnits(d float64) *big.Int {
	s, err := DiffUnits(d)
	if err != nil {
		return new(big.Int)
	}
	u, _ := new(big.Int).SetString(s, 10)
	return u
}

// WindowDifficulty is the PPLNS window size N in difficulty: factor ×
// network difficulty (factor DefaultWindowFactor unless configured), at
// least minWindow. The one definition: the share ledger trims its window
// list to it (plus WindowMargin) and the found block's snapshot counts
// WindowUnits of it.
func WindowDifficulty(factor, minWindow, networkDifficulty float64) float64 {
	return max(factor*networkDifficulty, minWindow)
}

// WindowUnits is WindowDifficulty in diff units. 0 means the window rounds
// to nothing (payouts refuses such a window: it never means "the whole
// history").
func WindowUnits(factor, minWindow, networkDifficulty float64) *big.Int {
	return DiffToUnits(WindowDifficulty(factor, minWindow, networkDifficulty))
}
