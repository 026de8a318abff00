package blocktemplate

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// Template transactions are checked and hashed from their bytes, without
// decoding them into wire.MsgTx values: a mainnet template holds thousands
// of transactions, decoded ones take about 1.4 times their serialized size
// again (measured on 4,000 two-input segwit transactions: 3.6 MB per parsed
// template instead of 1.5), and every session keeps up to shares.MaxJobs
// jobs and their templates alive. btcd's decoder also keeps a 4 MiB buffer
// for good once it has decoded one transaction. A block is decoded only
// when one is found (Job.Block).

// txShape is what scanTx learns about one serialized transaction.
type txShape struct {
	// The transaction without its witness (the txid's preimage) is
	// data[:4] + data[bodyStart:bodyEnd] + data[len(data)-4:].
	bodyStart, bodyEnd int
	inputs             int
	witness            bool // some input has witness items (wtxid ≠ txid)
	coinbase           bool // some input spends the null outpoint
}

// Limits a serialized transaction must respect (consensus allows no
// transaction near them; they bound the loops on hostile input).
const (
	maxTxSize   = 4_000_000 // a whole block's weight in bytes at most
	minTxInSize = 32 + 4 + 1 + 4
	minTxOutLen = 8 + 1
)

var errTxTruncated = errors.New("truncated")

// txCursor reads a serialized transaction front to back.
type txCursor struct {
	b   []byte
	off int
}

func (c *txCursor) skip(n uint64) error {
	if n > uint64(len(c.b)-c.off) {
		return errTxTruncated
	}
	c.off += int(n)
	return nil
}

// varInt reads a CompactSize, refusing non-canonical encodings as Bitcoin
// Core and btcd do.
func (c *txCursor) varInt() (uint64, error) {
	if c.off >= len(c.b) {
		return 0, errTxTruncated
	}
	first := c.b[c.off]
	c.off++
	var n uint64
	var size int
	var min uint64
	switch first {
	case 0xfd:
		size, min = 2, 0xfd
	case 0xfe:
		size, min = 4, 0x10000
	case 0xff:
		size, min = 8, 0x100000000
	default:
		return uint64(first), nil
	}
	if len(c.b)-c.off < size {
		return 0, errTxTruncated
	}
	switch size {
	case 2:
		n = uint64(binary.LittleEndian.Uint16(c.b[c.off:]))
	case 4:
		n = uint64(binary.LittleEndian.Uint32(c.b[c.off:]))
	default:
		n = binary.LittleEndian.Uint64(c.b[c.off:])
	}
	c.off += size
	if n < min {
		return 0, fmt.Errorf("non-canonical varint %d", n)
	}
	return n, nil
}

// count reads a list length whose elements take at least minSize bytes each.
func (c *txCursor) count(minSize int) (int, error) {
	n, err := c.varInt()
	if err != nil {
		return 0, err
	}
	if n > uint64(len(c.b)-c.off)/uint64(minSize) {
		return 0, fmt.Errorf("%d elements cannot fit in %d bytes", n, len(c.b)-c.off)
	}
	return int(n), nil
}

// bytesField skips a length-prefixed byte string.
func (c *txCursor) bytesField() error {
	n, err := c.varInt()
	if err != nil {
		return err
	}
	return c.skip(n)
}

// scanTx checks that data is one whole serialized transaction (legacy or
// BIP 144 witness form) and returns its shape.
func scanTx(data []byte) (txShape, error) {
	var sh txShape
	if len(data) > maxTxSize {
		return sh, fmt.Errorf("%d bytes: too large", len(data))
	}
	c := &txCursor{b: data}
	if err := c.skip(4); err != nil { // version
		return sh, err
	}
	sh.bodyStart = c.off
	marked := false
	if len(data) > c.off+1 && data[c.off] == 0 {
		// BIP 144: marker 0x00 (an empty input list otherwise), flag 0x01.
		if data[c.off+1] != 1 {
			return sh, fmt.Errorf("witness flag %#x, want 0x01", data[c.off+1])
		}
		marked = true
		c.off += 2
		sh.bodyStart = c.off
	}
	nIn, err := c.count(minTxInSize)
	if err != nil {
		return sh, fmt.Errorf("inputs: %w", err)
	}
	if nIn == 0 {
		return sh, errors.New("no inputs")
	}
	sh.inputs = nIn
	for range nIn {
		prev := c.off
		if err := c.skip(32 + 4); err != nil {
			return sh, fmt.Errorf("input: %w", err)
		}
		if binary.LittleEndian.Uint32(data[prev+32:]) == math.MaxUint32 && allZero(data[prev:prev+32]) {
			sh.coinbase = true
		}
		if err := c.bytesField(); err != nil {
			return sh, fmt.Errorf("input script: %w", err)
		}
		if err := c.skip(4); err != nil { // sequence
			return sh, fmt.Errorf("input: %w", err)
		}
	}
	nOut, err := c.count(minTxOutLen)
	if err != nil {
		return sh, fmt.Errorf("outputs: %w", err)
	}
	for range nOut {
		if err := c.skip(8); err != nil { // value
			return sh, fmt.Errorf("output: %w", err)
		}
		if err := c.bytesField(); err != nil {
			return sh, fmt.Errorf("output script: %w", err)
		}
	}
	sh.bodyEnd = c.off
	if marked {
		for range nIn {
			items, err := c.count(1)
			if err != nil {
				return sh, fmt.Errorf("witness: %w", err)
			}
			if items > 0 {
				sh.witness = true
			}
			for range items {
				if err := c.bytesField(); err != nil {
					return sh, fmt.Errorf("witness item: %w", err)
				}
			}
		}
	}
	if err := c.skip(4); err != nil { // lock time
		return sh, fmt.Errorf("lock time: %w", err)
	}
	if c.off != len(data) {
		return sh, fmt.Errorf("%d trailing bytes", len(data)-c.off)
	}
	return sh, nil
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// txid is the double SHA-256 of the transaction without its witness.
func (sh txShape) txid(data []byte) chainhash.Hash {
	h := sha256.New()
	h.Write(data[:4])
	h.Write(data[sh.bodyStart:sh.bodyEnd])
	h.Write(data[len(data)-4:])
	var first [sha256.Size]byte
	return chainhash.Hash(sha256.Sum256(h.Sum(first[:0])))
}

// wtxid is the double SHA-256 of the whole serialization, or the txid when
// no input has witness items (BIP 141).
func (sh txShape) wtxid(data []byte) chainhash.Hash {
	if !sh.witness {
		return sh.txid(data)
	}
	return chainhash.DoubleHashH(data)
}

// strippedSize is the size without the witness (for the weight).
func (sh txShape) strippedSize() int { return 8 + sh.bodyEnd - sh.bodyStart }
