package blocktemplate

import (
	"math"
	"math/big"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// diff1Target is the difficulty-1 target 0xFFFF·2^208 (nbits 1d00ffff), the
// "bdiff" base used by Bitcoin Core's getdifficulty and by miners.
var diff1Target = new(big.Int).Lsh(big.NewInt(0xFFFF), 208)

// maxTarget is the largest 256-bit value; a target above it is meaningless.
var maxTarget = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

// Diff1Target returns a copy of the difficulty-1 target.
func Diff1Target() *big.Int { return new(big.Int).Set(diff1Target) }

// CompactToTarget expands a compact nbits value into the target it encodes.
// The sign bit (0x00800000) yields a negative number, which no valid header
// carries; callers that accept nbits from outside should reject it.
func CompactToTarget(bits uint32) *big.Int {
	mantissa := int64(bits & 0x007fffff)
	exponent := uint(bits >> 24)
	t := big.NewInt(mantissa)
	if exponent <= 3 {
		t.Rsh(t, 8*(3-exponent))
	} else {
		t.Lsh(t, 8*(exponent-3))
	}
	if bits&0x00800000 != 0 {
		t.Neg(t)
	}
	return t
}

// TargetToCompact encodes a non-negative target in compact form (the
// inverse of CompactToTarget, with the precision loss of the format).
func TargetToCompact(target *big.Int) uint32 {
	if target.Sign() <= 0 {
		return 0
	}
	b := target.Bytes()
	size := uint32(len(b))
	var mantissa uint32
	if size <= 3 {
		mantissa = uint32(target.Uint64()) << (8 * (3 - size))
	} else {
		mantissa = uint32(new(big.Int).Rsh(target, 8*uint(size-3)).Uint64())
	}
	// A set top bit would read as the sign: move one byte into the exponent.
	if mantissa&0x00800000 != 0 {
		mantissa >>= 8
		size++
	}
	return size<<24 | mantissa
}

// TargetToDifficulty returns diff1/target as the float64 nearest to the exact
// quotient. A non-positive target returns +Inf.
func TargetToDifficulty(target *big.Int) float64 {
	if target == nil || target.Sign() <= 0 {
		return math.Inf(1)
	}
	f, _ := new(big.Rat).SetFrac(diff1Target, target).Float64()
	return f
}

// DifficultyToTarget returns floor(diff1/d) computed exactly from the binary
// value of d, so fractional difficulties (down to 1e-8 and below) give the
// exact target the miner is held to. The result is capped at 2^256−1.
// It returns nil when d is not a positive finite number.
func DifficultyToTarget(d float64) *big.Int {
	if math.IsNaN(d) || math.IsInf(d, 0) || d <= 0 {
		return nil
	}
	r := new(big.Rat).SetFloat64(d)
	// diff1 / (num/den) = diff1·den / num
	t := new(big.Int).Mul(diff1Target, r.Denom())
	t.Quo(t, r.Num())
	if t.Cmp(maxTarget) > 0 {
		t.Set(maxTarget)
	}
	return t
}

// HashToBig reads a hash in internal byte order (raw SHA256d output) as the
// 256-bit number that is compared with targets (its display order read
// big-endian).
func HashToBig(h *chainhash.Hash) *big.Int {
	var be [chainhash.HashSize]byte
	for i := range h {
		be[chainhash.HashSize-1-i] = h[i]
	}
	return new(big.Int).SetBytes(be[:])
}

// HashDifficulty is the share difficulty of a header hash in internal byte
// order: diff1 divided by the hash as a number. A zero hash returns +Inf.
func HashDifficulty(h *chainhash.Hash) float64 {
	return TargetToDifficulty(HashToBig(h))
}
