package miner

import (
	"encoding/hex"
	"encoding/json"
	"math/big"
	"strconv"
	"testing"

	"github.com/lode-pool/lode/internal/testvectors"
)

// TestHeaderMatchesVectors checks the miner's notify parsing and header
// building against the recorded mainnet/testnet shares, including version
// rolling, ntime rolling and a 12-hash branch.
func TestHeaderMatchesVectors(t *testing.T) {
	file := testvectors.Load(t)
	hex32 := func(s string) uint32 {
		v, err := strconv.ParseUint(s, 16, 32)
		if err != nil {
			t.Fatalf("hex %q: %v", s, err)
		}
		return uint32(v)
	}
	for _, v := range file.Shares {
		t.Run(v.Name, func(t *testing.T) {
			n := v.Notify
			params, _ := json.Marshal(n.Params())
			job, err := parseNotify(params)
			if err != nil {
				t.Fatal(err)
			}
			en1, _ := hex.DecodeString(v.Extranonce1)
			en2, _ := hex.DecodeString(v.Submit.Extranonce2)
			version := job.Version
			if v.Submit.VersionBits != "" {
				const mask = 0x1fffe000
				version = job.Version&^mask | hex32(v.Submit.VersionBits)&mask
			}
			hdr := Header(job, en1, en2, version, hex32(v.Submit.NTime), hex32(v.Submit.Nonce))
			if got := hex.EncodeToString(hdr[:]); got != v.Expected.HeaderHex {
				t.Fatalf("header\n got %s\nwant %s", got, v.Expected.HeaderHex)
			}
			h := sha256d(hdr[:])
			var display [32]byte
			for i := range h {
				display[i] = h[31-i]
			}
			if got := hex.EncodeToString(display[:]); got != v.Expected.BlockHash {
				t.Fatalf("hash %s, want %s", got, v.Expected.BlockHash)
			}
			// The share meets a target just below its own difficulty and
			// misses one just above it.
			below := v.Expected.ShareDifficulty * 0.999
			above := v.Expected.ShareDifficulty * 1.001
			var tb, ta [32]byte
			DifficultyTarget(below).FillBytes(tb[:])
			DifficultyTarget(above).FillBytes(ta[:])
			if !meets(&h, &tb) || meets(&h, &ta) {
				t.Fatalf("difficulty %v: meets below %v, above %v", v.Expected.ShareDifficulty, meets(&h, &tb), meets(&h, &ta))
			}
		})
	}
}

func TestSpread(t *testing.T) {
	tests := []struct{ v, mask, want uint32 }{
		{1, 0x1fffe000, 0x00002000},
		{3, 0x1fffe000, 0x00006000},
		{1, 0x18000000, 0x08000000},
		{2, 0x18000000, 0x10000000},
		{4, 0x18000000, 0},
	}
	for _, tc := range tests {
		if got := SpreadBits(tc.v, tc.mask); got != tc.want || got&^tc.mask != 0 {
			t.Errorf("SpreadBits(%d, %08x) = %08x, want %08x", tc.v, tc.mask, got, tc.want)
		}
	}
	if DifficultyTarget(1).Cmp(new(big.Int).Lsh(big.NewInt(0xffff), 208)) != 0 {
		t.Error("difficulty 1 target")
	}
}
