package shares

import (
	"fmt"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/internal/sha256x"
)

// benchJob returns a job with a 252-byte coinbase (coinb1 80 bytes, so the
// midstate covers one block; 4-byte extranonce1, 8-byte extranonce2; coinb2
// 160 bytes) and a merkle branch of the given length.
func benchJob(id string, branch int) *blocktemplate.Job {
	j := &blocktemplate.Job{
		ID:              id,
		CleanJobs:       true,
		Coinb1:          make([]byte, 80),
		Coinb2:          make([]byte, 160),
		Extranonce1Size: 4,
		Extranonce2Size: 8,
		MerkleBranch:    make([]chainhash.Hash, branch),
		Version:         0x20000000,
		Bits:            0x1703098c,
		NTime:           0x66e39966,
		NetworkTarget:   blocktemplate.CompactToTarget(0x1703098c),
	}
	for i := range j.Coinb1 {
		j.Coinb1[i] = byte(i)
	}
	for i := range j.Coinb2 {
		j.Coinb2[i] = byte(3 * i)
	}
	for i := range j.MerkleBranch {
		j.MerkleBranch[i][0] = byte(i + 1)
	}
	return j
}

// floorBlocks is the number of compressions a share of benchJob cannot avoid:
// coinbase 4 (after the midstate) + 1, 3 per branch hash, header 2 + 1.
func floorBlocks(branch int) int { return 5 + 3*branch + 3 }

// benchShares is how many shares a session submits per job in
// BenchmarkValidate: a miner tuned by vardiff to a share every few seconds
// sends a few hundred per job at most.
const benchShares = 256

// BenchmarkValidate measures Session.SubmitParams: parsing the hex params,
// rebuilding coinbase, merkle root and header, hashing, target compares and
// the duplicate filter. Every share is accepted (the difficulty is tiny).
// Every 256 shares a new clean job replaces the old one, inside the timed
// loop, so the cost of recycling the duplicate filter is included. Compare
// with BenchmarkFloor of the same branch length.
func BenchmarkValidate(b *testing.B) {
	for _, branch := range []int{0, 6, 12} {
		b.Run(fmt.Sprintf("branch=%d", branch), func(b *testing.B) {
			v, err := New(Config{})
			if err != nil {
				b.Fatal(err)
			}
			var works [2]*Work
			var params [2][][]string
			for k := range works {
				if works[k], err = v.NewWork(benchJob(fmt.Sprintf("j%d", k), branch)); err != nil {
					b.Fatal(err)
				}
				params[k] = make([][]string, benchShares)
				for i := range params[k] {
					params[k][i] = []string{"w", works[k].ID(), "0000000000000001", "66e39966", fmt.Sprintf("%08x", i), "00002000"}
				}
			}
			s, err := v.NewSession([]byte{1, 2, 3, 4}, 0x1fffe000)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.SetDifficulty(1e-12); err != nil {
				b.Fatal(err)
			}
			cur := 0
			s.AddJob(works[cur])
			var res Result
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i == benchShares {
					cur ^= 1
					s.AddJob(works[cur])
					i = 0
				}
				if err := s.SubmitParams(params[cur][i], &res); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkValidateOverFloor reads "validation ÷ floor" robustly on a busy
// machine: it alternates chunks of 64 validations and 64 floor runs, times
// each chunk, and reports the medians of the per-chunk costs and of the
// per-pair ratio, so that both sides see the same load.
func BenchmarkValidateOverFloor(b *testing.B) {
	for _, branch := range []int{0, 6, 12} {
		b.Run(fmt.Sprintf("branch=%d", branch), func(b *testing.B) {
			v, err := New(Config{})
			if err != nil {
				b.Fatal(err)
			}
			var works [2]*Work
			var params [2][][]string
			for k := range works {
				if works[k], err = v.NewWork(benchJob(fmt.Sprintf("j%d", k), branch)); err != nil {
					b.Fatal(err)
				}
				params[k] = make([][]string, benchShares)
				for i := range params[k] {
					params[k][i] = []string{"w", works[k].ID(), "0000000000000001", "66e39966", fmt.Sprintf("%08x", i), "00002000"}
				}
			}
			s, err := v.NewSession([]byte{1, 2, 3, 4}, 0x1fffe000)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.SetDifficulty(1e-12); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, floorBlocks(branch)*sha256x.BlockSize)
			st := sha256x.IV
			const chunk = 64
			cur, i := 0, 0
			s.AddJob(works[cur])
			var res Result
			var vals, floors, ratios []float64
			for b.Loop() {
				t0 := time.Now()
				for range chunk {
					if i == benchShares {
						cur ^= 1
						s.AddJob(works[cur])
						i = 0
					}
					if err := s.SubmitParams(params[cur][i], &res); err != nil {
						b.Fatal(err)
					}
					i++
				}
				t1 := time.Now()
				for range chunk {
					sha256x.Blocks(&st, buf)
				}
				t2 := time.Now()
				val, fl := float64(t1.Sub(t0))/chunk, float64(t2.Sub(t1))/chunk
				vals, floors, ratios = append(vals, val), append(floors, fl), append(ratios, val/fl)
			}
			b.ReportMetric(median(vals), "validate-ns")
			b.ReportMetric(median(floors), "floor-ns")
			b.ReportMetric(median(ratios), "ratio")
		})
	}
}

func median(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	x = slices.Clone(x)
	slices.Sort(x)
	return x[len(x)/2]
}

// BenchmarkFloor hashes, as one contiguous run of 64-byte blocks through the
// compression function, as many blocks as BenchmarkValidate of the same
// branch cannot avoid: the lower bound validation is measured against.
func BenchmarkFloor(b *testing.B) {
	for _, branch := range []int{0, 6, 12} {
		b.Run(fmt.Sprintf("branch=%d", branch), func(b *testing.B) {
			buf := make([]byte, floorBlocks(branch)*sha256x.BlockSize)
			for i := range buf {
				buf[i] = byte(i)
			}
			s := sha256x.IV
			b.ReportAllocs()
			for b.Loop() {
				sha256x.Blocks(&s, buf)
			}
		})
	}
}

// BenchmarkHashDifficultyExact is the big.Rat difficulty computation the
// hot path avoids, for comparison.
func BenchmarkHashDifficultyExact(b *testing.B) {
	h := chainhash.Hash{1, 2, 3}
	b.ReportAllocs()
	for b.Loop() {
		_ = new(big.Rat).SetFrac(blocktemplate.Diff1Target(), blocktemplate.HashToBig(&h))
	}
}
