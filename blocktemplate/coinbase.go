package blocktemplate

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// maxHeightPushSize is the size of the BIP34 push for the largest height a
// template may carry (2^31−1): a 4-byte push plus its opcode.
const maxHeightPushSize = 5

// coinbaseTxVersion is the version of the coinbase transactions we build.
const coinbaseTxVersion = 1

// jobCounter makes job ids unique within the process, across Builders.
var jobCounter atomic.Uint64

// Builder turns Templates into Jobs for one payout configuration. It is
// safe for concurrent use.
type Builder struct {
	cfg          Config
	payoutScript []byte
	tagPush      []byte
}

// NewBuilder checks cfg (after defaults) and returns a Builder.
func NewBuilder(cfg Config) (*Builder, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("blocktemplate config: %w", err)
	}
	script, err := cfg.payoutScript()
	if err != nil {
		return nil, fmt.Errorf("blocktemplate config: %w", err)
	}
	return &Builder{cfg: cfg, payoutScript: script, tagPush: pushData([]byte(cfg.PoolTag))}, nil
}

// Config returns the Builder's configuration with defaults applied.
func (b *Builder) Config() Config { return b.cfg }

// PayoutScript returns a copy of the payout output script.
func (b *Builder) PayoutScript() []byte { return append([]byte(nil), b.payoutScript...) }

// MaxCommitmentScript bounds the commitment output's script: an OP_RETURN
// of at most 80 bytes of data (the relay policy's classic limit, which keeps
// the coinbase small).
const MaxCommitmentScript = 83

// Job builds the Stratum job for t. The coinbase scriptSig is
// BIP34 height ‖ coinbaseaux ‖ push(extranonce1 ‖ extranonce2) ‖ push(tag);
// Coinb1 ends with the push opcode of the extranonce slot. Outputs are the
// payout (the whole coinbase value) and, when t has one, the witness
// commitment, last.
func (b *Builder) Job(t *Template, clean bool) (*Job, error) {
	return b.JobWithCommitment(t, clean, nil)
}

// JobWithCommitment is Job with, when commitment is not empty, one more
// output of value 0 paying commitment (an OP_RETURN script: the pool's
// PPLNS window commitment, docs/verify.md), placed after the payout and
// before the witness commitment.
func (b *Builder) JobWithCommitment(t *Template, clean bool, commitment []byte) (*Job, error) {
	if t == nil {
		return nil, fmt.Errorf("build job: nil template")
	}
	if len(commitment) > 0 && (commitment[0] != 0x6a || len(commitment) > MaxCommitmentScript) {
		return nil, fmt.Errorf("build job: commitment output is not an OP_RETURN of at most %d bytes", MaxCommitmentScript)
	}
	if t.Height < 0 || t.Height > math.MaxInt32 {
		return nil, fmt.Errorf("build job: height %d out of range", t.Height)
	}
	height := HeightPush(t.Height)
	slot := b.cfg.Extranonce1Size + b.cfg.Extranonce2Size
	sigLen := scriptSigSize(len(height), len(t.CoinbaseAux), slot, len(b.cfg.PoolTag))
	if sigLen > maxScriptSigSize {
		return nil, fmt.Errorf("build job: coinbase scriptSig is %d bytes (limit %d; coinbaseaux %d bytes)", sigLen, maxScriptSigSize, len(t.CoinbaseAux))
	}

	var c1 bytes.Buffer
	var u32 [4]byte
	binary.LittleEndian.PutUint32(u32[:], coinbaseTxVersion)
	c1.Write(u32[:])
	c1.WriteByte(1) // one input
	c1.Write(make([]byte, chainhash.HashSize))
	c1.Write([]byte{0xff, 0xff, 0xff, 0xff}) // null prevout index
	_ = wire.WriteVarInt(&c1, 0, uint64(sigLen))
	c1.Write(height)
	c1.Write(t.CoinbaseAux)
	c1.WriteByte(byte(slot)) // direct push of the extranonce slot

	var c2 bytes.Buffer
	c2.Write(b.tagPush)
	c2.Write([]byte{0xff, 0xff, 0xff, 0xff}) // sequence
	outputs := 1
	if len(commitment) > 0 {
		outputs++
	}
	if t.WitnessCommitment != nil {
		outputs++
	}
	_ = wire.WriteVarInt(&c2, 0, uint64(outputs))
	writeOutput(&c2, t.CoinbaseValue, b.payoutScript)
	if len(commitment) > 0 {
		writeOutput(&c2, 0, commitment)
	}
	if t.WitnessCommitment != nil {
		writeOutput(&c2, 0, t.WitnessCommitment)
	}
	c2.Write([]byte{0, 0, 0, 0}) // lock time

	txids := make([]chainhash.Hash, len(t.Transactions))
	for i := range t.Transactions {
		txids[i] = t.Transactions[i].TxID
	}
	now := time.Now()
	return &Job{
		ID:              strconv.FormatUint(jobCounter.Add(1), 16),
		CleanJobs:       clean,
		Height:          t.Height,
		PrevHash:        t.PrevHash,
		Coinb1:          c1.Bytes(),
		Coinb2:          c2.Bytes(),
		Extranonce1Size: b.cfg.Extranonce1Size,
		Extranonce2Size: b.cfg.Extranonce2Size,
		MerkleBranch:    MerkleBranch(txids),
		Version:         t.Version &^ b.cfg.VersionMask,
		Bits:            t.Bits,
		NTime:           uint32(t.CurTime),
		MinTime:         uint32(t.MinTime),
		NetworkTarget:   CompactToTarget(t.Bits),
		Template:        t,
		CoinbaseWitness: t.WitnessCommitment != nil,
		CreatedAt:       now,
		TipSeenAt:       now,
	}, nil
}

// scriptSigSize is the coinbase scriptSig length for the given parts.
func scriptSigSize(heightPush, aux, slot, tag int) int {
	return heightPush + aux + 1 + slot + len(pushPrefix(tag)) + tag
}

func writeOutput(w *bytes.Buffer, value int64, script []byte) {
	var v [8]byte
	binary.LittleEndian.PutUint64(v[:], uint64(value))
	w.Write(v[:])
	_ = wire.WriteVarInt(w, 0, uint64(len(script)))
	w.Write(script)
}

// pushPrefix is the opcode(s) pushing n bytes; none for n == 0 (no push).
func pushPrefix(n int) []byte {
	switch {
	case n == 0:
		return nil
	case n <= 75:
		return []byte{byte(n)}
	case n <= 255:
		return []byte{0x4c, byte(n)} // OP_PUSHDATA1
	default:
		return []byte{0x4d, byte(n), byte(n >> 8)} // OP_PUSHDATA2
	}
}

// pushData returns a push of data (nothing for empty data).
func pushData(data []byte) []byte {
	return append(pushPrefix(len(data)), data...)
}

// HeightPush returns the BIP34 height push that must open the coinbase
// scriptSig, encoded as Bitcoin Core's CScript() << height: OP_0 for 0,
// OP_1..OP_16 for 1–16, otherwise a minimal little-endian script number.
func HeightPush(height int64) []byte {
	switch {
	case height == 0:
		return []byte{0x00}
	case height >= 1 && height <= 16:
		return []byte{0x50 + byte(height)}
	}
	neg := height < 0
	abs := uint64(height)
	if neg {
		abs = uint64(-height)
	}
	var num []byte
	for abs > 0 {
		num = append(num, byte(abs))
		abs >>= 8
	}
	// The top bit of the last byte is the sign: add a byte when it is taken.
	if num[len(num)-1]&0x80 != 0 {
		if neg {
			num = append(num, 0x80)
		} else {
			num = append(num, 0x00)
		}
	} else if neg {
		num[len(num)-1] |= 0x80
	}
	return append([]byte{byte(len(num))}, num...)
}
