package shares

import (
	"fmt"

	"github.com/lode-pool/lode/blocktemplate"
)

// Submission is a parsed mining.submit: params [worker, job_id, extranonce2,
// ntime, nonce, version_bits?]. Worker and JobID alias the input strings.
type Submission struct {
	Worker         string
	JobID          string
	Extranonce2    [blocktemplate.MaxExtranonce2Size]byte
	Extranonce2Len int
	NTime          uint32
	Nonce          uint32
	VersionBits    uint32
	HasVersionBits bool // the 6th param was present
}

// Extranonce2Bytes returns the submitted extranonce2.
func (s *Submission) Extranonce2Bytes() []byte { return s.Extranonce2[:s.Extranonce2Len] }

// ParseSubmit parses the 5 or 6 string params of a mining.submit. It checks
// the shape only (hex, field lengths); whether extranonce2 has the job's size,
// ntime is in range and the version bits are within the mask is decided by
// Session.Submit. Errors wrap ErrMalformed.
func ParseSubmit(params []string) (Submission, error) {
	var s Submission
	if err := parseSubmitInto(&s, params); err != nil {
		return Submission{}, err
	}
	return s, nil
}

// parseSubmitInto is ParseSubmit filling s in place (Session.SubmitParams
// reuses one Submission). A malformed submit allocates its error message,
// naming the field; a well-formed one allocates nothing.
func parseSubmitInto(s *Submission, params []string) error {
	if len(params) != 5 && len(params) != 6 {
		return fmt.Errorf("mining.submit has %d params, want 5 or 6: %w", len(params), ErrMalformed)
	}
	s.Worker = params[0]
	s.JobID = params[1]
	if s.JobID == "" {
		return fmt.Errorf("empty job id: %w", ErrMalformed)
	}
	en2 := params[2]
	if len(en2) == 0 || len(en2)%2 != 0 || len(en2) > 2*len(s.Extranonce2) {
		return fmt.Errorf("extranonce2 %q: want 1..%d bytes of hex: %w", clip(en2), len(s.Extranonce2), ErrMalformed)
	}
	if !decodeHex(s.Extranonce2[:len(en2)/2], en2) {
		return fmt.Errorf("extranonce2 %q: not hex: %w", clip(en2), ErrMalformed)
	}
	s.Extranonce2Len = len(en2) / 2
	var ok bool
	if s.NTime, ok = hex32(params[3]); !ok {
		return fmt.Errorf("ntime %q: want 8 hex digits: %w", clip(params[3]), ErrMalformed)
	}
	if s.Nonce, ok = hex32(params[4]); !ok {
		return fmt.Errorf("nonce %q: want 8 hex digits: %w", clip(params[4]), ErrMalformed)
	}
	s.HasVersionBits = len(params) == 6
	s.VersionBits = 0
	if s.HasVersionBits {
		if s.VersionBits, ok = hex32(params[5]); !ok {
			return fmt.Errorf("version bits %q: want 8 hex digits: %w", clip(params[5]), ErrMalformed)
		}
	}
	return nil
}

// clip keeps error messages short when a miner sends a huge field.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// The hex fields are decoded eight digits at a time in a uint64 (SWAR):
// this is the hot path, and a byte-at-a-time decode costs about as much as
// a third of a SHA-256 compression per submit.

const (
	swarOnes  = 0x0101010101010101
	swarHighs = 0x8080808080808080
)

// swarGE sets the high bit of each byte lane of x that is ≥ c. Every lane
// of x must be < 0x80 and 1 ≤ c ≤ 0x80, so no lane carries into the next.
func swarGE(x uint64, c uint64) uint64 { return (x + (0x80-c)*swarOnes) & swarHighs }

// hex8 decodes eight ASCII hex digits packed big-endian in x (first digit
// in the top byte) into a uint32, and reports whether all were hex digits.
func hex8(x uint64) (uint32, bool) {
	if x&swarHighs != 0 {
		return 0, false
	}
	digit := swarGE(x, '0') &^ swarGE(x, '9'+1)
	lower := x | 0x20*swarOnes // 'A'..'F' → 'a'..'f'; digits unchanged
	letter := swarGE(lower, 'a') &^ swarGE(lower, 'f'+1)
	if digit|letter != swarHighs {
		return 0, false
	}
	v := x&(0x0f*swarOnes) + (letter>>7)*9 // one nibble per byte lane
	v = (v | v>>4) & 0x00ff00ff00ff00ff
	v = (v | v>>8) & 0x0000ffff0000ffff
	v = (v | v>>16) & 0xffffffff
	return uint32(v), true
}

// load8 packs s[0:8] big-endian.
func load8(s string) uint64 {
	_ = s[7]
	return uint64(s[0])<<56 | uint64(s[1])<<48 | uint64(s[2])<<40 | uint64(s[3])<<32 |
		uint64(s[4])<<24 | uint64(s[5])<<16 | uint64(s[6])<<8 | uint64(s[7])
}

// hex32 parses exactly 8 hex digits as a big-endian uint32.
func hex32(s string) (uint32, bool) {
	if len(s) != 8 {
		return 0, false
	}
	return hex8(load8(s))
}

// decodeHex decodes len(dst)*2 hex digits of s into dst.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for len(s) >= 8 {
		v, ok := hex8(load8(s))
		if !ok {
			return false
		}
		dst[0], dst[1], dst[2], dst[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
		dst, s = dst[4:], s[8:]
	}
	for i := 0; i+1 < len(s); i += 2 {
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i/2] = hi<<4 | lo
	}
	return true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
