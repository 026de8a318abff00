package window

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
)

// CommitMagic opens the payload of the pool's commitment output.
var CommitMagic = [4]byte{'L', 'O', 'D', 'E'}

// CommitVersion is the version byte of the commitment payload.
const CommitVersion = 1

// MaxCommitted is the most windows one commitment covers (the count is one
// byte); more wait for the next block.
const MaxCommitted = 255

// CommitPayloadSize is the size of the OP_RETURN payload:
// magic(4) ‖ version(1) ‖ count(1) ‖ digest(32).
const CommitPayloadSize = 4 + 1 + 1 + 32

// Committed is one block's window as committed on chain.
type Committed struct {
	Block Hash     // block hash in internal byte order (as in the header)
	Root  Hash     // window root hash
	Total *big.Int // window root sum
}

// CommitDigest is the digest over the windows of one commitment, in order:
//
//	SHA-256( 0x02 ‖ count8 ‖ for each: block hash ‖ root hash ‖ total128 )
func CommitDigest(c []Committed) (Hash, error) {
	if len(c) == 0 || len(c) > MaxCommitted {
		return Hash{}, fmt.Errorf("%w: %d windows in one commitment (1..%d)", ErrInvalid, len(c), MaxCommitted)
	}
	msg := make([]byte, 0, 2+len(c)*(64+SumBytes))
	msg = append(msg, TagCommit, byte(len(c)))
	var sum [SumBytes]byte
	for _, w := range c {
		if w.Total == nil {
			return Hash{}, fmt.Errorf("%w: committed window without total", ErrInvalid)
		}
		if err := putSum(sum[:], w.Total); err != nil {
			return Hash{}, err
		}
		msg = append(msg, w.Block[:]...)
		msg = append(msg, w.Root[:]...)
		msg = append(msg, sum[:]...)
	}
	return sha256.Sum256(msg), nil
}

// CommitScript is the commitment output's script:
// OP_RETURN ‖ push(38) ‖ magic ‖ version ‖ count ‖ digest.
func CommitScript(c []Committed) ([]byte, error) {
	d, err := CommitDigest(c)
	if err != nil {
		return nil, err
	}
	s := make([]byte, 0, 2+CommitPayloadSize)
	s = append(s, 0x6a, CommitPayloadSize)
	s = append(s, CommitMagic[:]...)
	s = append(s, CommitVersion, byte(len(c)))
	return append(s, d[:]...), nil
}

// Commitment is a commitment read from an output script.
type Commitment struct {
	Count  int
	Digest Hash
}

// ParseCommitScript reads a commitment from an output script; ok is false
// for any other script.
func ParseCommitScript(script []byte) (c Commitment, ok bool) {
	if len(script) != 2+CommitPayloadSize || script[0] != 0x6a || script[1] != CommitPayloadSize {
		return c, false
	}
	p := script[2:]
	if !bytes.Equal(p[:4], CommitMagic[:]) || p[4] != CommitVersion || p[5] == 0 {
		return c, false
	}
	c.Count = int(p[5])
	copy(c.Digest[:], p[6:])
	return c, true
}

// Check verifies that c commits exactly to the windows w (in order); the
// error names what differs.
func (c Commitment) Check(w []Committed) error {
	if len(w) != c.Count {
		return fmt.Errorf("%w: commitment covers %d windows, %d given", ErrMismatch, c.Count, len(w))
	}
	d, err := CommitDigest(w)
	if err != nil {
		return err
	}
	if d != c.Digest {
		return fmt.Errorf("%w: committed digest %s, the windows given hash to %s", ErrMismatch, c.Digest, d)
	}
	return nil
}

// Entry is one PPLNS window entry as the share ledger stores it: one payout
// address's shares in one slice of the window, with the sequences of the
// first and the last of them and their units.
type Entry struct {
	FirstSeq string
	LastSeq  string
	Address  string
	Units    string
}

// Leaves merges consecutive entries of one address (entries oldest first)
// into leaves.
func Leaves(entries []Entry) ([]Leaf, error) {
	var out []Leaf
	var units *big.Int
	for i, e := range entries {
		u, err := ParseUnits(e.Units)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		if n := len(out); n > 0 && out[n-1].Address == e.Address {
			units.Add(units, u)
			out[n-1].LastSeq = e.LastSeq
			out[n-1].Units = units.String()
			continue
		}
		units = u
		out = append(out, Leaf{Address: e.Address, Units: e.Units, FirstSeq: e.FirstSeq, LastSeq: e.LastSeq})
	}
	return out, nil
}

// HexBlockHash turns a block hash in RPC display order (hex) into internal
// byte order.
func HexBlockHash(s string) (Hash, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return Hash{}, fmt.Errorf("%w: block hash %q", ErrInvalid, truncate(s))
	}
	var h Hash
	for i := range b {
		h[i] = b[31-i]
	}
	return h, nil
}
