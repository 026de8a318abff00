package shares

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/internal/sha256x"
)

// Defaults for Config fields left zero.
const (
	DefaultMaxNTimeAhead = 7200 * time.Second
	DefaultMaxJobs       = 16
)

// Config configures share validation. The zero value is usable: zero fields
// take the documented defaults (see WithDefaults).
type Config struct {
	// MaxNTimeAhead is how far past the template's curtime a submitted ntime
	// may be. Default 7200 s, the consensus limit on a header's time relative
	// to node time.
	MaxNTimeAhead time.Duration
	// MaxJobs is how many jobs a session keeps valid at once; the oldest is
	// dropped (its shares become stale, code 21) when a new one arrives.
	// This also bounds the duplicate filter's memory. Default 16.
	MaxJobs int
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.MaxNTimeAhead == 0 {
		c.MaxNTimeAhead = DefaultMaxNTimeAhead
	}
	if c.MaxJobs == 0 {
		c.MaxJobs = DefaultMaxJobs
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.MaxNTimeAhead < 0 || c.MaxNTimeAhead > math.MaxUint32*time.Second {
		return fmt.Errorf("shares: MaxNTimeAhead %v: want 0..2^32 s", c.MaxNTimeAhead)
	}
	if c.MaxJobs < 0 || c.MaxJobs > 1024 {
		return fmt.Errorf("shares: MaxJobs %d: want 1..1024", c.MaxJobs)
	}
	return nil
}

// Validator holds the process-wide validation settings. It is immutable and
// safe for concurrent use; per-connection state lives in Session.
type Validator struct {
	cfg Config
}

// New returns a Validator for cfg (zero fields take defaults).
func New(cfg Config) (*Validator, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Validator{cfg: cfg}, nil
}

// Work is the per-job state precomputed once for all sessions: the coinbase
// midstate, the padded coinbase tail, the merkle branch as one byte run, the
// header template and the network target as fixed-width integers. It is
// immutable and shared by every session that was sent the job.
type Work struct {
	job *blocktemplate.Job

	mid      sha256x.State // state after coinb1's whole 64-byte blocks
	cb       []byte        // coinb1 tail ‖ extranonce slot (zeros) ‖ coinb2 ‖ SHA-256 padding
	slot     int           // offset of extranonce1 in cb
	headLen  int           // bytes of cb that vary per share (whole blocks, or all of cb)
	en1Size  int
	en2Size  int
	branch   []byte    // merkle branch hashes concatenated, internal order
	header   [128]byte // header with prevhash and bits set, plus SHA-256 padding
	netLimbs [4]uint64 // network target, least significant limb first
	minTime  uint32    // submitted ntime below it is rejected
	maxTime  uint32    // submitted ntime above it is rejected
	version  uint32    // job version (mask bits cleared by the job builder)
	netDiff  float64   // network difficulty, for logs

	// content identifies what a share's hash covers besides the miner's
	// fields (coinbase around the extranonce slot, branch, prevhash, bits,
	// version). Two jobs with equal content (a refresh of an unchanged
	// template) yield the same hash for the same submit, so the duplicate
	// check looks across them.
	content [sha256.Size]byte
}

// Job returns the job the work was built from.
func (w *Work) Job() *blocktemplate.Job { return w.job }

// ID returns the job id.
func (w *Work) ID() string { return w.job.ID }

// NetworkDifficulty returns the difficulty of the job's network target.
func (w *Work) NetworkDifficulty() float64 { return w.netDiff }

// NewWork precomputes the per-job state. Call it once per job (for example
// where the job is fanned out) and hand the same *Work to every session.
func (v *Validator) NewWork(job *blocktemplate.Job) (*Work, error) {
	if job == nil {
		return nil, errors.New("shares: new work: nil job")
	}
	if job.ID == "" {
		return nil, errors.New("shares: new work: empty job id")
	}
	if job.Extranonce1Size < 0 || job.Extranonce1Size > blocktemplate.MaxExtranonce1Size ||
		job.Extranonce2Size < 1 || job.Extranonce2Size > blocktemplate.MaxExtranonce2Size {
		return nil, fmt.Errorf("shares: new work %s: extranonce sizes %d+%d out of range",
			job.ID, job.Extranonce1Size, job.Extranonce2Size)
	}
	if job.NetworkTarget == nil || job.NetworkTarget.Sign() <= 0 || job.NetworkTarget.BitLen() > 256 {
		return nil, fmt.Errorf("shares: new work %s: network target is not a positive 256-bit number", job.ID)
	}
	w := &Work{
		job:     job,
		en1Size: job.Extranonce1Size,
		en2Size: job.Extranonce2Size,
		minTime: job.MinTime,
		version: job.Version,
		netDiff: blocktemplate.TargetToDifficulty(job.NetworkTarget),
	}
	ahead := uint64(v.cfg.MaxNTimeAhead / time.Second)
	if maxT := uint64(job.NTime) + ahead; maxT > math.MaxUint32 {
		w.maxTime = math.MaxUint32
	} else {
		w.maxTime = uint32(maxT)
	}

	// Coinbase: hash coinb1's whole blocks once; keep the rest padded so a
	// share only copies the blocks holding the extranonces.
	full := len(job.Coinb1) &^ (sha256x.BlockSize - 1)
	w.mid = sha256x.IV
	sha256x.Blocks(&w.mid, job.Coinb1[:full])
	slotLen := w.en1Size + w.en2Size
	total := len(job.Coinb1) + slotLen + len(job.Coinb2)
	restLen := total - full
	cb := make([]byte, sha256x.PaddedLen(restLen))
	n := copy(cb, job.Coinb1[full:])
	w.slot = n
	n += slotLen
	n += copy(cb[n:], job.Coinb2)
	if _, ok := sha256x.Pad(cb, n, uint64(total)); !ok {
		return nil, fmt.Errorf("shares: new work %s: coinbase padding", job.ID)
	}
	w.cb = cb
	w.headLen = (w.slot + slotLen + sha256x.BlockSize - 1) &^ (sha256x.BlockSize - 1)
	if w.headLen > len(cb) {
		w.headLen = len(cb)
	}

	w.branch = make([]byte, 0, 32*len(job.MerkleBranch))
	for i := range job.MerkleBranch {
		w.branch = append(w.branch, job.MerkleBranch[i][:]...)
	}

	copy(w.header[4:36], job.PrevHash[:])
	binary.LittleEndian.PutUint32(w.header[72:], job.Bits)
	w.header[80] = 0x80
	binary.BigEndian.PutUint64(w.header[120:], 80*8)

	w.netLimbs = targetLimbs(job.NetworkTarget)

	h := sha256.New()
	h.Write(job.Coinb1)
	h.Write(job.Coinb2)
	h.Write(w.branch)
	h.Write(w.header[:80])
	var fixed [12]byte
	binary.LittleEndian.PutUint32(fixed[0:], w.version)
	binary.LittleEndian.PutUint32(fixed[4:], uint32(w.en1Size))
	binary.LittleEndian.PutUint32(fixed[8:], uint32(w.en2Size))
	h.Write(fixed[:])
	h.Sum(w.content[:0])
	return w, nil
}

// maxHeadLen bounds Work.headLen: the extranonce slot ends at most
// 63+MaxExtranonce1Size+MaxExtranonce2Size bytes into cb.
const maxHeadLen = 2 * sha256x.BlockSize

// targetLimbs converts a non-negative target of at most 256 bits into limbs,
// least significant first.
func targetLimbs(t *big.Int) [4]uint64 {
	var be [32]byte
	t.FillBytes(be[:])
	return [4]uint64{
		binary.BigEndian.Uint64(be[24:]),
		binary.BigEndian.Uint64(be[16:]),
		binary.BigEndian.Uint64(be[8:]),
		binary.BigEndian.Uint64(be[0:]),
	}
}

// hashLimbs reads a hash in internal byte order as the number compared with
// targets (display order big-endian = internal order little-endian).
func hashLimbs(h *chainhash.Hash) [4]uint64 {
	return [4]uint64{
		binary.LittleEndian.Uint64(h[0:]),
		binary.LittleEndian.Uint64(h[8:]),
		binary.LittleEndian.Uint64(h[16:]),
		binary.LittleEndian.Uint64(h[24:]),
	}
}

// lessOrEqual reports a ≤ b.
func lessOrEqual(a, b *[4]uint64) bool {
	for i := 3; i >= 0; i-- {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return true
}

// limbsDifficulty returns diff1 / h as a float64 within one ulp of the
// exact quotient (the accept/reject decisions use exact integer compares;
// this is the reported difficulty). h is normalized to its top 64 bits,
// converted once and divided once, then scaled by a power of two.
func limbsDifficulty(h *[4]uint64) float64 {
	k := 3
	for k >= 0 && h[k] == 0 {
		k--
	}
	if k < 0 {
		return math.Inf(1)
	}
	lz := bits.LeadingZeros64(h[k])
	top := h[k] << lz
	if lz > 0 && k > 0 {
		top |= h[k-1] >> (64 - lz)
	}
	// h ≈ top · 2^(64k − lz), top in [2^63, 2^64): diff1/h = (65535/top) · 2^(208 − 64k + lz),
	// and the exponent stays within 16..271, so the scaling is exact.
	e := 208 - 64*k + lz
	return 65535 / float64(top) * math.Float64frombits(uint64(1023+e)<<52)
}

// hashInto double-SHA256s the share: coinbase (from the midstate), merkle
// branch fold, header, in one sha256x.Share call. It fills hdr (the header
// and its padding) and the hash (internal order).
func (w *Work) hashInto(hdr *[128]byte, hash *chainhash.Hash, en1, en2 []byte, version, ntime, nonce uint32) {
	var head [maxHeadLen]byte
	copy(head[:w.headLen], w.cb)
	copy(head[w.slot:], en1)
	copy(head[w.slot+len(en1):], en2)
	*hdr = w.header
	binary.LittleEndian.PutUint32(hdr[0:], version)
	binary.LittleEndian.PutUint32(hdr[68:], ntime)
	binary.LittleEndian.PutUint32(hdr[76:], nonce)
	var h sha256x.State
	sha256x.Share(&h, &w.mid, head[:w.headLen], w.cb[w.headLen:], w.branch, hdr)
	for i, word := range h {
		binary.BigEndian.PutUint32(hash[4*i:], word)
	}
}

// hashHeader double-SHA256s an 80-byte header followed by its padding.
func hashHeader(hdr *[128]byte, hash *chainhash.Hash) {
	var h sha256x.State
	sha256x.Double(&h, &sha256x.IV, hdr[:])
	for i, word := range h {
		binary.BigEndian.PutUint32(hash[4*i:], word)
	}
}

// HeaderHash returns the block hash (internal order) of an 80-byte header,
// through the same code as share validation.
func HeaderHash(header *[80]byte) chainhash.Hash {
	var buf [128]byte
	copy(buf[:], header[:])
	buf[80] = 0x80
	binary.BigEndian.PutUint64(buf[120:], 80*8)
	var h chainhash.Hash
	hashHeader(&buf, &h)
	return h
}

// HashDifficulty returns diff1 / hash for a hash in internal order, as share
// validation computes Result.HashDifficulty (within a few ulps of exact).
func HashDifficulty(h *chainhash.Hash) float64 {
	l := hashLimbs(h)
	return limbsDifficulty(&l)
}

// MeetsTarget reports whether a hash (internal order) is at or below target,
// with the integer compare share validation uses.
func MeetsTarget(h *chainhash.Hash, target *big.Int) bool {
	if target == nil || target.Sign() < 0 {
		return false
	}
	if target.BitLen() > 256 {
		return true
	}
	l, t := hashLimbs(h), targetLimbs(target)
	return lessOrEqual(&l, &t)
}
