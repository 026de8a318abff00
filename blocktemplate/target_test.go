package blocktemplate

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

func TestDifficultyVectors(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.Difficulty {
		t.Run(tc.Name, func(t *testing.T) {
			bits, err := strconv.ParseUint(tc.Bits, 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			target := CompactToTarget(uint32(bits))
			if got := fmt.Sprintf("%064x", target); got != tc.Target {
				t.Fatalf("target %s, want %s", got, tc.Target)
			}
			if got := TargetToCompact(target); got != uint32(bits) {
				t.Errorf("TargetToCompact = %08x, want %s", got, tc.Bits)
			}
			if got := TargetToDifficulty(target); got != tc.Difficulty {
				t.Errorf("difficulty %v, want %v", got, tc.Difficulty)
			}
			// diff → target loses at most the float's precision.
			back := DifficultyToTarget(tc.Difficulty)
			diff := new(big.Int).Sub(back, target)
			diff.Abs(diff)
			limit := new(big.Int).Rsh(target, 50)
			if diff.Cmp(limit) > 0 {
				t.Errorf("DifficultyToTarget(%v) = %x, want ≈ %x", tc.Difficulty, back, target)
			}
		})
	}
}

func TestHashDifficultyVectors(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.HashDifficulty {
		t.Run(tc.Name, func(t *testing.T) {
			h, err := chainhash.NewHashFromStr(tc.Hash)
			if err != nil {
				t.Fatal(err)
			}
			got := HashDifficulty(h)
			if math.Abs(got-tc.ShareDifficulty) > tc.ShareDifficulty*1e-15 {
				t.Errorf("HashDifficulty = %v, want %v", got, tc.ShareDifficulty)
			}
		})
	}
}

func TestDifficultyToTargetFractional(t *testing.T) {
	tests := []struct {
		name string
		d    float64
	}{
		{"1", 1}, {"0.5", 0.5}, {"0.001", 0.001}, {"1e-8", 1e-8}, {"3.3e-9", 3.3e-9}, {"1024", 1024}, {"1e15", 1e15},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target := DifficultyToTarget(tc.d)
			// Exact check: target = floor(diff1/d) ⇔ target·d ≤ diff1 < (target+1)·d.
			rd := new(big.Rat).SetFloat64(tc.d)
			lo := new(big.Rat).Mul(new(big.Rat).SetInt(target), rd)
			hi := new(big.Rat).Mul(new(big.Rat).SetInt(new(big.Int).Add(target, big.NewInt(1))), rd)
			d1 := new(big.Rat).SetInt(diff1Target)
			if lo.Cmp(d1) > 0 || hi.Cmp(d1) <= 0 {
				t.Fatalf("DifficultyToTarget(%v) = %x is not floor(diff1/d)", tc.d, target)
			}
			if got := TargetToDifficulty(target); math.Abs(got-tc.d) > tc.d*1e-12 {
				t.Errorf("round trip %v → %v", tc.d, got)
			}
		})
	}
	for _, bad := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		if got := DifficultyToTarget(bad); got != nil {
			t.Errorf("DifficultyToTarget(%v) = %v, want nil", bad, got)
		}
	}
	if got := DifficultyToTarget(1e-300); got.Cmp(maxTarget) != 0 {
		t.Errorf("tiny difficulty not capped: %x", got)
	}
}

func ExampleDifficultyToTarget() {
	fmt.Printf("%064x\n", DifficultyToTarget(1))
	fmt.Printf("%064x\n", DifficultyToTarget(0.5))
	fmt.Println(TargetToDifficulty(CompactToTarget(0x1b0404cb)))
	// Output:
	// 00000000ffff0000000000000000000000000000000000000000000000000000
	// 00000001fffe0000000000000000000000000000000000000000000000000000
	// 16307.420938523983
}
