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
	for i := 0; i < len(en2); i += 2 {
		hi, ok1 := unhex(en2[i])
		lo, ok2 := unhex(en2[i+1])
		if !ok1 || !ok2 {
			return fmt.Errorf("extranonce2 %q: not hex: %w", clip(en2), ErrMalformed)
		}
		s.Extranonce2[i/2] = hi<<4 | lo
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

// hexVal maps an ASCII byte to its hex digit value, or 0xff.
var hexVal = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c - 'a' + 10)
		t[c-'a'+'A'] = byte(c - 'a' + 10)
	}
	return t
}()

func unhex(c byte) (byte, bool) {
	v := hexVal[c]
	return v, v != 0xff
}

// hex32 parses exactly 8 hex digits as a big-endian uint32.
func hex32(s string) (uint32, bool) {
	if len(s) != 8 {
		return 0, false
	}
	var v uint32
	var bad byte
	for i := 0; i < 8; i++ {
		d := hexVal[s[i]]
		bad |= d
		v = v<<4 | uint32(d&0x0f)
	}
	// Valid digits are < 16; 0xff (invalid) sets the high bits.
	return v, bad&0xf0 == 0
}
