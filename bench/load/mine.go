package load

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/lode-pool/lode/bench/miner"
	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/internal/sha256x"
)

// Job is a mining.notify as a connection needs it for mining.
type Job struct {
	ID       string
	PrevHash [32]byte // header order
	Coinb1   []byte
	Coinb2   []byte
	Branch   []byte // merkle branch hashes concatenated, internal order
	Version  uint32
	NBits    uint32
	NTime    uint32
	Clean    bool
	// PrevHex is the prevhash as sent, used to group one block's clean jobs
	// across connections.
	PrevHex string
}

// ParseNotify decodes mining.notify params.
func ParseNotify(params json.RawMessage) (*Job, error) {
	var p []json.RawMessage
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, fmt.Errorf("decode notify params: %w", err)
	}
	if len(p) < 9 {
		return nil, fmt.Errorf("notify has %d params, want 9", len(p))
	}
	var s [7]string
	for i, idx := range [7]int{0, 1, 2, 3, 5, 6, 7} {
		if err := json.Unmarshal(p[idx], &s[i]); err != nil {
			return nil, fmt.Errorf("notify param %d: %w", idx, err)
		}
	}
	var branch []string
	if err := json.Unmarshal(p[4], &branch); err != nil {
		return nil, fmt.Errorf("notify merkle branch: %w", err)
	}
	j := &Job{ID: s[0], PrevHex: s[1]}
	if err := json.Unmarshal(p[8], &j.Clean); err != nil {
		return nil, fmt.Errorf("notify clean_jobs: %w", err)
	}
	prev, err := hex.DecodeString(s[1])
	if err != nil || len(prev) != 32 {
		return nil, fmt.Errorf("notify prevhash %q: want 64 hex digits", s[1])
	}
	// Stratum sends the prevhash with each 4-byte word byte-swapped
	// relative to header order (stratum-v1.md).
	for i := 0; i < 32; i += 4 {
		j.PrevHash[i], j.PrevHash[i+1], j.PrevHash[i+2], j.PrevHash[i+3] = prev[i+3], prev[i+2], prev[i+1], prev[i]
	}
	if j.Coinb1, err = hex.DecodeString(s[2]); err != nil {
		return nil, fmt.Errorf("notify coinb1: %w", err)
	}
	if j.Coinb2, err = hex.DecodeString(s[3]); err != nil {
		return nil, fmt.Errorf("notify coinb2: %w", err)
	}
	j.Branch = make([]byte, 0, 32*len(branch))
	for _, h := range branch {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("notify merkle branch hash %q", h)
		}
		j.Branch = append(j.Branch, b...)
	}
	for i, dst := range [3]*uint32{&j.Version, &j.NBits, &j.NTime} {
		v, err := strconv.ParseUint(s[4+i], 16, 32)
		if err != nil {
			return nil, fmt.Errorf("notify param %d: %w", 5+i, err)
		}
		*dst = uint32(v)
	}
	return j, nil
}

// Share is a solved share ready to submit.
type Share struct {
	Job         *Job
	Extranonce2 []byte
	NTime       uint32
	Nonce       uint32
	VersionBits uint32
	HasVersion  bool
	Difficulty  float64 // the difficulty it was mined for
}

// AppendSubmit appends a mining.submit request line for s.
func (s *Share) AppendSubmit(dst []byte, id int64, worker string) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, id, 10)
	dst = append(dst, `,"method":"mining.submit","params":[`...)
	dst = strconv.AppendQuote(dst, worker)
	dst = append(dst, ',')
	dst = strconv.AppendQuote(dst, s.Job.ID)
	dst = append(dst, `,"`...)
	dst = hex.AppendEncode(dst, s.Extranonce2)
	dst = append(dst, `","`...)
	dst = appendHex32(dst, s.NTime)
	dst = append(dst, `","`...)
	dst = appendHex32(dst, s.Nonce)
	if s.HasVersion {
		dst = append(dst, `","`...)
		dst = appendHex32(dst, s.VersionBits)
	}
	return append(dst, "\"]}\n"...)
}

func appendHex32(dst []byte, v uint32) []byte {
	const digits = "0123456789abcdef"
	for shift := 28; shift >= 0; shift -= 4 {
		dst = append(dst, digits[(v>>shift)&0xf])
	}
	return dst
}

// TargetFor returns the share target for difficulty d, big-endian (all
// ones when it would exceed 256 bits).
func TargetFor(d float64) [32]byte {
	var out [32]byte
	t := blocktemplate.DifficultyToTarget(d)
	if t == nil { // not a positive finite difficulty: mine at difficulty 1
		t = blocktemplate.Diff1Target()
	}
	if t.Sign() < 0 || t.BitLen() > 256 {
		for i := range out {
			out[i] = 0xff
		}
		return out
	}
	t.FillBytes(out[:])
	return out
}

// Worker mines shares for one connection's extranonce1 on one job at a
// time. It is not safe for concurrent use.
type Worker struct {
	en1     []byte
	en2Size int
	mask    uint32

	job    *Job
	diff   float64
	target [32]byte
	en2    uint64
	e2     []byte
	ver    uint32
	bits   uint32
	mid    sha256x.State
	tail   [64]byte
	nonce  uint64 // next nonce to try; > MaxUint32 means this en2 is used up
	cb     []byte
	primed bool
}

// NewWorker returns a worker for a subscription's extranonce1, extranonce2
// size and negotiated version-rolling mask (0 for none). seed spreads
// extranonce2 values so workers sharing an extranonce1 do not collide.
func NewWorker(en1 []byte, en2Size int, mask uint32, seed uint64) *Worker {
	return &Worker{en1: en1, en2Size: en2Size, mask: mask, en2: seed << 32}
}

// SetJob switches to job at difficulty d.
func (w *Worker) SetJob(j *Job, d float64) {
	if j == w.job && d == w.diff {
		return
	}
	w.job, w.diff = j, d
	w.target = TargetFor(d)
	w.primed = false
}

func (w *Worker) prime() {
	w.en2++
	w.e2 = make([]byte, w.en2Size)
	for i := 0; i < w.en2Size && i < 8; i++ {
		w.e2[w.en2Size-1-i] = byte(w.en2 >> (8 * i))
	}
	w.cb = append(append(append(append(w.cb[:0], w.job.Coinb1...), w.en1...), w.e2...), w.job.Coinb2...)
	rootBytes := sha256x.Sum256d(w.cb)
	root := sha256x.FromBytes(&rootBytes)
	sha256x.MerkleFold(&root, w.job.Branch)
	w.ver, w.bits = w.job.Version, 0
	if w.mask != 0 {
		// Roll a few different patterns inside the granted mask.
		w.bits = miner.SpreadBits(uint32(w.en2%7)+1, w.mask)
		w.ver = w.job.Version&^w.mask | w.bits
	}
	var hdr [80]byte
	binary.LittleEndian.PutUint32(hdr[0:], w.ver)
	copy(hdr[4:36], w.job.PrevHash[:])
	root.PutBytes((*[32]byte)(hdr[36:68]))
	binary.LittleEndian.PutUint32(hdr[68:], w.job.NTime)
	binary.LittleEndian.PutUint32(hdr[72:], w.job.NBits)
	w.mid = sha256x.IV
	sha256x.Blocks(&w.mid, hdr[:64])
	copy(w.tail[:16], hdr[64:80])
	sha256x.Pad(w.tail[:], 16, 80)
	w.nonce = 0
	w.primed = true
}

// ErrNoJob is returned by Mine before the first job.
var ErrNoJob = errors.New("no job yet")

// Mine tries up to maxHashes nonces and returns a share when one meets the
// difficulty, or nil when none did (call again; the search continues).
func (w *Worker) Mine(maxHashes int) (*Share, error) {
	if w.job == nil {
		return nil, ErrNoJob
	}
	var out sha256x.State
	var digest [32]byte
	for range maxHashes {
		if !w.primed || w.nonce > math.MaxUint32 {
			w.prime()
		}
		n := uint32(w.nonce)
		w.nonce++
		binary.LittleEndian.PutUint32(w.tail[12:], n)
		sha256x.Double(&out, &w.mid, w.tail[:])
		out.PutBytes(&digest)
		if meets(&digest, &w.target) {
			return &Share{Job: w.job, Extranonce2: w.e2, NTime: w.job.NTime, Nonce: n,
				VersionBits: w.bits, HasVersion: w.mask != 0, Difficulty: w.diff}, nil
		}
	}
	return nil, nil
}

// meets reports whether a digest (internal byte order: little-endian
// number) is at most a big-endian target.
func meets(h, target *[32]byte) bool {
	for i := range 32 {
		b := h[31-i]
		if b != target[i] {
			return b < target[i]
		}
	}
	return true
}
