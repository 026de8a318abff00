package shares

import (
	"encoding/hex"
	"math"
	"math/big"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/internal/testvectors"
)

// notifyOf converts a vector's notify to the blocktemplate form.
func notifyOf(n testvectors.Notify) blocktemplate.Notify {
	return blocktemplate.Notify{JobID: n.JobID, PrevHash: n.PrevHash, Coinb1: n.Coinb1, Coinb2: n.Coinb2,
		MerkleBranch: n.MerkleBranch, Version: n.Version, NBits: n.NBits, NTime: n.NTime, CleanJobs: n.CleanJobs}
}

func loadVectors(t testing.TB) *testvectors.File { return testvectors.Load(t) }

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

func mustHex32(t testing.TB, s string) uint32 {
	t.Helper()
	v, err := blocktemplate.ParseHex32(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// closeTo compares floats to a relative 1e-13: the hot path's float
// difficulty is within a few ulps of the exact quotient.
func closeTo(got, want float64) bool {
	return math.Abs(got-want) <= 1e-13*math.Abs(want)
}

func displayHash(h chainhash.Hash) string { return h.String() }

func TestShareVectors(t *testing.T) {
	v := loadVectors(t)
	val, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sv := range v.Shares {
		t.Run(sv.Name, func(t *testing.T) {
			en1 := mustHex(t, sv.Extranonce1)
			job, err := blocktemplate.JobFromNotify(notifyOf(sv.Notify), len(en1), sv.Extranonce2Len)
			if err != nil {
				t.Fatalf("JobFromNotify: %v", err)
			}
			if cb, err := job.Coinbase(en1, mustHex(t, sv.Submit.Extranonce2)); err != nil || hex.EncodeToString(cb) != sv.Expected.CoinbaseHex {
				t.Fatalf("coinbase = %x, %v", cb, err)
			}
			w, err := val.NewWork(job)
			if err != nil {
				t.Fatalf("NewWork: %v", err)
			}
			mask := uint32(0)
			if sv.VersionMask != "" {
				mask = mustHex32(t, sv.VersionMask)
			}
			sess, err := val.NewSession(en1, mask)
			if err != nil {
				t.Fatal(err)
			}
			sess.AddJob(w)
			res, err := submitP(sess, sv.Submit.Params())
			if err != nil {
				t.Fatalf("submit: %v", err)
			}
			if got := hex.EncodeToString(res.Header[36:68]); got != sv.Expected.MerkleRootHeaderOrder {
				t.Errorf("merkle root = %s, want %s", got, sv.Expected.MerkleRootHeaderOrder)
			}
			if got := hex.EncodeToString(res.Header[:]); got != sv.Expected.HeaderHex {
				t.Errorf("header = %s\nwant     %s", got, sv.Expected.HeaderHex)
			}
			if got := displayHash(res.Hash); got != sv.Expected.BlockHash {
				t.Errorf("hash = %s, want %s", got, sv.Expected.BlockHash)
			}
			if !closeTo(res.HashDifficulty, sv.Expected.ShareDifficulty) {
				t.Errorf("share difficulty = %v, want %v", res.HashDifficulty, sv.Expected.ShareDifficulty)
			}
			if res.Block != sv.Expected.MeetsNetworkTarget {
				t.Errorf("block = %v, want %v", res.Block, sv.Expected.MeetsNetworkTarget)
			}
			if !res.MeetsTarget || res.Difficulty != 1 {
				t.Errorf("meets = %v credited %v, want true at difficulty 1", res.MeetsTarget, res.Difficulty)
			}
			netTarget := new(big.Int).SetBytes(mustHex(t, sv.Expected.NetworkTarget))
			if job.NetworkTarget.Cmp(netTarget) != 0 {
				t.Errorf("network target = %x, want %x", job.NetworkTarget, netTarget)
			}
			// The same share again is a duplicate.
			if _, err := submitP(sess, sv.Submit.Params()); err != ErrDuplicateShare {
				t.Errorf("resubmit: err = %v, want ErrDuplicateShare", err)
			}
			// At a difficulty just above the share's, it is low difficulty
			// (unless it is a block, which always counts).
			sess2, _ := val.NewSession(en1, mask)
			if err := sess2.SetDifficulty(sv.Expected.ShareDifficulty * (1 + 1e-9)); err != nil {
				t.Fatal(err)
			}
			sess2.AddJob(w)
			res2, err := submitP(sess2, sv.Submit.Params())
			if sv.Expected.MeetsNetworkTarget {
				if err != nil || !res2.Block || res2.MeetsTarget {
					t.Errorf("block above share target: err=%v block=%v meets=%v", err, res2.Block, res2.MeetsTarget)
				}
			} else if err != ErrLowDifficulty {
				t.Errorf("above share difficulty: err = %v, want ErrLowDifficulty", err)
			}
			// And just below it, accepted.
			sess3, _ := val.NewSession(en1, mask)
			if err := sess3.SetDifficulty(sv.Expected.ShareDifficulty * (1 - 1e-9)); err != nil {
				t.Fatal(err)
			}
			sess3.AddJob(w)
			if res3, err := submitP(sess3, sv.Submit.Params()); err != nil || !res3.MeetsTarget {
				t.Errorf("below share difficulty: err = %v meets = %v", err, res3.MeetsTarget)
			}
		})
	}
}

func TestHeaderVectors(t *testing.T) {
	for _, hv := range loadVectors(t).Headers {
		t.Run(hv.Name, func(t *testing.T) {
			var hdr [80]byte
			if n := copy(hdr[:], mustHex(t, hv.HeaderHex)); n != 80 {
				t.Fatalf("header is %d bytes", n)
			}
			h := HeaderHash(&hdr)
			if got := h.String(); got != hv.BlockHash {
				t.Fatalf("hash = %s, want %s", got, hv.BlockHash)
			}
			if want := chainhash.DoubleHashH(hdr[:]); h != want {
				t.Fatalf("differs from chainhash.DoubleHashH")
			}
		})
	}
}

func TestHashDifficultyVectors(t *testing.T) {
	for _, hv := range loadVectors(t).HashDifficulty {
		t.Run(hv.Name, func(t *testing.T) {
			h, err := chainhash.NewHashFromStr(hv.Hash)
			if err != nil {
				t.Fatal(err)
			}
			if got := HashDifficulty(h); !closeTo(got, hv.ShareDifficulty) {
				t.Fatalf("difficulty = %v, want %v", got, hv.ShareDifficulty)
			}
		})
	}
}

func TestDifficultyVectors(t *testing.T) {
	val, _ := New(Config{})
	for _, dv := range loadVectors(t).Difficulty {
		t.Run(dv.Name, func(t *testing.T) {
			target := new(big.Int).SetBytes(mustHex(t, dv.Target))
			if got := blocktemplate.CompactToTarget(mustHex32(t, dv.Bits)); got.Cmp(target) != 0 {
				t.Fatalf("bits %s → %x, want %x", dv.Bits, got, target)
			}
			lt := targetLimbs(target)
			if got := limbsDifficulty(&lt); !closeTo(got, dv.Difficulty) {
				t.Fatalf("difficulty of target = %v, want %v", got, dv.Difficulty)
			}
			// A hash equal to the target meets it, one above does not; the
			// share target set from the difficulty is the target to within
			// the float's rounding.
			var eq, above chainhash.Hash
			fillHash(&eq, target)
			fillHash(&above, new(big.Int).Add(target, big.NewInt(1)))
			if !MeetsTarget(&eq, target) || MeetsTarget(&above, target) {
				t.Fatal("target boundary compare is wrong")
			}
			s, _ := val.NewSession(nil, 0)
			if err := s.SetDifficulty(dv.Difficulty); err != nil {
				t.Fatal(err)
			}
			st := limbsToBig(s.target)
			diff := new(big.Int).Sub(st, target)
			diff.Abs(diff)
			if tol := new(big.Int).Rsh(target, 48); diff.Cmp(tol) > 0 {
				t.Fatalf("share target %x, want ≈ %x", st, target)
			}
		})
	}
}

func TestVersionRollingVectors(t *testing.T) {
	for _, vv := range loadVectors(t).VersionRolling {
		t.Run(vv.Name, func(t *testing.T) {
			server := mustHex32(t, vv.ServerMask)
			if vv.MinerMask != "" {
				if got := NegotiateVersionMask(server, mustHex32(t, vv.MinerMask)); got != mustHex32(t, vv.NegotiatedMask) {
					t.Fatalf("negotiated %08x, want %s", got, vv.NegotiatedMask)
				}
				return
			}
			if vv.Valid == nil {
				t.Fatal("vector has neither negotiation nor validity")
			}
			got, err := RollVersion(mustHex32(t, vv.JobVersion), server, mustHex32(t, vv.VersionBits))
			if !*vv.Valid {
				if err != ErrBadVersionBits {
					t.Fatalf("err = %v, want ErrBadVersionBits", err)
				}
				return
			}
			if err != nil || got != mustHex32(t, vv.HeaderVersion) {
				t.Fatalf("version = %08x, %v; want %s", got, err, vv.HeaderVersion)
			}
		})
	}
}

func fillHash(h *chainhash.Hash, n *big.Int) {
	var be [32]byte
	n.FillBytes(be[:])
	for i := range be {
		h[i] = be[31-i]
	}
}

func limbsToBig(l [4]uint64) *big.Int {
	n := new(big.Int)
	for i := 3; i >= 0; i-- {
		n.Lsh(n, 64)
		n.Or(n, new(big.Int).SetUint64(l[i]))
	}
	return n
}
