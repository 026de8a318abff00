package blocktemplate

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// Notify holds the nine mining.notify params as Stratum sends them (hex as
// in stratum-v1.md §4).
type Notify struct {
	JobID        string
	PrevHash     string // internal order with each 4-byte word byte-reversed
	Coinb1       string
	Coinb2       string
	MerkleBranch []string // internal order, leaf to root
	Version      string   // 8 hex digits of the number
	NBits        string
	NTime        string
	CleanJobs    bool
}

// Params returns the notify params in wire order, ready for JSON encoding.
func (n Notify) Params() []any {
	branch := n.MerkleBranch
	if branch == nil {
		branch = []string{}
	}
	return []any{n.JobID, n.PrevHash, n.Coinb1, n.Coinb2, branch, n.Version, n.NBits, n.NTime, n.CleanJobs}
}

// Notify returns the job's mining.notify params.
func (j *Job) Notify() Notify {
	branch := make([]string, len(j.MerkleBranch))
	for i := range j.MerkleBranch {
		branch[i] = hex.EncodeToString(j.MerkleBranch[i][:])
	}
	return Notify{
		JobID:        j.ID,
		PrevHash:     StratumPrevHash(j.PrevHash),
		Coinb1:       hex.EncodeToString(j.Coinb1),
		Coinb2:       hex.EncodeToString(j.Coinb2),
		MerkleBranch: branch,
		Version:      fmt.Sprintf("%08x", j.Version),
		NBits:        fmt.Sprintf("%08x", j.Bits),
		NTime:        fmt.Sprintf("%08x", j.NTime),
		CleanJobs:    j.CleanJobs,
	}
}

// StratumPrevHash encodes a hash in internal order as Stratum's prevhash:
// the bytes of each 4-byte word reversed, as hex.
func StratumPrevHash(h chainhash.Hash) string {
	sw := swapWords(h)
	return hex.EncodeToString(sw[:])
}

// ParseStratumPrevHash is the inverse of StratumPrevHash.
func ParseStratumPrevHash(s string) (chainhash.Hash, error) {
	if len(s) != 2*chainhash.HashSize {
		return chainhash.Hash{}, fmt.Errorf("prevhash %q: want 64 hex digits", s)
	}
	var h chainhash.Hash
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return chainhash.Hash{}, fmt.Errorf("prevhash %q: not hex", s)
	}
	return swapWords(h), nil
}

func swapWords(h chainhash.Hash) chainhash.Hash {
	var out chainhash.Hash
	for i := 0; i < chainhash.HashSize; i += 4 {
		out[i], out[i+1], out[i+2], out[i+3] = h[i+3], h[i+2], h[i+1], h[i]
	}
	return out
}

// JobFromNotify rebuilds a Job from mining.notify params (lodectl
// share-check). The result can validate shares but not build blocks:
// Template is nil and MinTime is 0. Every field is checked strictly: hex
// strings must decode, hashes are 64 hex digits, version/nbits/ntime exactly
// 8, and the extranonce sizes in 1..16.
func JobFromNotify(n Notify, extranonce1Size, extranonce2Size int) (*Job, error) {
	if n.JobID == "" {
		return nil, errors.New("notify: empty job id")
	}
	if extranonce1Size < 0 || extranonce1Size > MaxExtranonce1Size {
		return nil, fmt.Errorf("notify: extranonce1 size %d: want 0..%d", extranonce1Size, MaxExtranonce1Size)
	}
	if extranonce2Size < 1 || extranonce2Size > MaxExtranonce2Size {
		return nil, fmt.Errorf("notify: extranonce2 size %d: want 1..%d", extranonce2Size, MaxExtranonce2Size)
	}
	prev, err := ParseStratumPrevHash(n.PrevHash)
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	coinb1, err := hex.DecodeString(n.Coinb1)
	if err != nil || len(coinb1) == 0 {
		return nil, fmt.Errorf("notify: coinb1: want non-empty hex")
	}
	coinb2, err := hex.DecodeString(n.Coinb2)
	if err != nil || len(coinb2) == 0 {
		return nil, fmt.Errorf("notify: coinb2: want non-empty hex")
	}
	branch := make([]chainhash.Hash, len(n.MerkleBranch))
	for i, s := range n.MerkleBranch {
		if len(s) != 2*chainhash.HashSize {
			return nil, fmt.Errorf("notify: merkle branch %d: want 64 hex digits", i)
		}
		if _, err := hex.Decode(branch[i][:], []byte(s)); err != nil {
			return nil, fmt.Errorf("notify: merkle branch %d: not hex", i)
		}
	}
	version, err := ParseHex32(n.Version)
	if err != nil {
		return nil, fmt.Errorf("notify: version: %w", err)
	}
	bits, err := ParseHex32(n.NBits)
	if err != nil {
		return nil, fmt.Errorf("notify: nbits: %w", err)
	}
	target := CompactToTarget(bits)
	if target.Sign() <= 0 || target.Cmp(maxTarget) > 0 {
		return nil, fmt.Errorf("notify: nbits %s: not a positive 256-bit target", n.NBits)
	}
	ntime, err := ParseHex32(n.NTime)
	if err != nil {
		return nil, fmt.Errorf("notify: ntime: %w", err)
	}
	return &Job{
		ID:              n.JobID,
		CleanJobs:       n.CleanJobs,
		PrevHash:        prev,
		Coinb1:          coinb1,
		Coinb2:          coinb2,
		Extranonce1Size: extranonce1Size,
		Extranonce2Size: extranonce2Size,
		MerkleBranch:    branch,
		Version:         version,
		Bits:            bits,
		NTime:           ntime,
		NetworkTarget:   target,
	}, nil
}

// ParseHex32 parses exactly 8 hex digits as a big-endian uint32, the form of
// Stratum's version, nbits, ntime and nonce fields.
func ParseHex32(s string) (uint32, error) {
	if len(s) != 8 {
		return 0, fmt.Errorf("%q: want 8 hex digits", s)
	}
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("%q: not hex", s)
	}
	return uint32(v), nil
}

// Coinbase returns coinb1 ‖ extranonce1 ‖ extranonce2 ‖ coinb2, the
// non-witness coinbase serialization whose sha256d is the merkle leaf.
func (j *Job) Coinbase(extranonce1, extranonce2 []byte) ([]byte, error) {
	if len(extranonce1) != j.Extranonce1Size {
		return nil, fmt.Errorf("extranonce1 is %d bytes, job wants %d", len(extranonce1), j.Extranonce1Size)
	}
	if len(extranonce2) != j.Extranonce2Size {
		return nil, fmt.Errorf("extranonce2 is %d bytes, job wants %d", len(extranonce2), j.Extranonce2Size)
	}
	cb := make([]byte, 0, len(j.Coinb1)+len(extranonce1)+len(extranonce2)+len(j.Coinb2))
	cb = append(cb, j.Coinb1...)
	cb = append(cb, extranonce1...)
	cb = append(cb, extranonce2...)
	return append(cb, j.Coinb2...), nil
}

// Header builds the 80-byte header for a submission: version is the final
// header version (after rolling), ntime and nonce as submitted. It is the
// straightforward reference construction (it allocates); the share hot path
// lives in package shares.
func (j *Job) Header(extranonce1, extranonce2 []byte, version, ntime, nonce uint32) ([80]byte, error) {
	var out [80]byte
	cb, err := j.Coinbase(extranonce1, extranonce2)
	if err != nil {
		return out, err
	}
	root := FoldBranch(chainhash.DoubleHashH(cb), j.MerkleBranch)
	hdr := wire.NewBlockHeader(int32(version), &j.PrevHash, &root, j.Bits, nonce)
	hdr.Timestamp = unixTime(ntime)
	var buf bytes.Buffer
	if err := hdr.Serialize(&buf); err != nil {
		return out, fmt.Errorf("serialize header: %w", err)
	}
	copy(out[:], buf.Bytes())
	return out, nil
}
