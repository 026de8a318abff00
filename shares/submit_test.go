package shares

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestParseSubmit(t *testing.T) {
	tests := []struct {
		name    string
		params  []string
		wantErr bool
		check   func(t *testing.T, s Submission)
	}{
		{name: "five params", params: []string{"slush.miner1", "bf", "00000001", "504e86ed", "b2957c02"},
			check: func(t *testing.T, s Submission) {
				if s.Worker != "slush.miner1" || s.JobID != "bf" || s.NTime != 0x504e86ed || s.Nonce != 0xb2957c02 ||
					s.HasVersionBits || string(s.Extranonce2Bytes()) != "\x00\x00\x00\x01" {
					t.Errorf("got %+v", s)
				}
			}},
		{name: "six params uppercase hex", params: []string{"w", "6a1f", "61FABE6D6DB43C2E", "6155A491", "41DAD6E3", "1FFFE000"},
			check: func(t *testing.T, s Submission) {
				if !s.HasVersionBits || s.VersionBits != 0x1fffe000 || s.Extranonce2Len != 8 || s.Extranonce2[0] != 0x61 {
					t.Errorf("got %+v", s)
				}
			}},
		{name: "max extranonce2", params: []string{"w", "j", strings.Repeat("ab", 16), "00000000", "00000000"}},
		{name: "four params", params: []string{"w", "j", "00", "00000000"}, wantErr: true},
		{name: "seven params", params: []string{"w", "j", "00", "00000000", "00000000", "00000000", "x"}, wantErr: true},
		{name: "no params", params: nil, wantErr: true},
		{name: "empty job id", params: []string{"w", "", "00", "00000000", "00000000"}, wantErr: true},
		{name: "odd extranonce2", params: []string{"w", "j", "000", "00000000", "00000000"}, wantErr: true},
		{name: "empty extranonce2", params: []string{"w", "j", "", "00000000", "00000000"}, wantErr: true},
		{name: "extranonce2 too long", params: []string{"w", "j", strings.Repeat("00", 17), "00000000", "00000000"}, wantErr: true},
		{name: "extranonce2 not hex", params: []string{"w", "j", "0g", "00000000", "00000000"}, wantErr: true},
		{name: "short ntime", params: []string{"w", "j", "00", "0000000", "00000000"}, wantErr: true},
		{name: "ntime not hex", params: []string{"w", "j", "00", "0000000x", "00000000"}, wantErr: true},
		{name: "ntime with sign", params: []string{"w", "j", "00", "+0000000", "00000000"}, wantErr: true},
		{name: "long nonce", params: []string{"w", "j", "00", "00000000", "000000000"}, wantErr: true},
		{name: "bad version bits", params: []string{"w", "j", "00", "00000000", "00000000", "1fffe00z"}, wantErr: true},
		{name: "empty version bits", params: []string{"w", "j", "00", "00000000", "00000000", ""}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSubmit(tc.params)
			if tc.wantErr {
				if !errors.Is(err, ErrMalformed) || Code(err) != 20 {
					t.Fatalf("err = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

// FuzzParseSubmit checks that any params parse or fail with ErrMalformed,
// never panic, and that what parses re-encodes to the same fields.
func FuzzParseSubmit(f *testing.F) {
	f.Add("slush.miner1", "bf", "00000001", "504e86ed", "b2957c02", "", false)
	f.Add("w1", "6a1f", "61fabe6d6db43c2e", "6155a491", "41dad6e3", "1fffe000", true)
	f.Add("", "", "", "", "", "", true)
	f.Add("w", "j", "zz", "0000000g", "ffffffff", "FFFFFFFF", true)
	f.Fuzz(func(t *testing.T, worker, job, en2, ntime, nonce, vbits string, six bool) {
		params := []string{worker, job, en2, ntime, nonce}
		if six {
			params = append(params, vbits)
		}
		s, err := ParseSubmit(params)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if s.Worker != worker || s.JobID != job || s.HasVersionBits != six {
			t.Fatalf("fields changed: %+v", s)
		}
		if !strings.EqualFold(hexString(s.Extranonce2Bytes()), en2) {
			t.Fatalf("extranonce2 %x from %q", s.Extranonce2Bytes(), en2)
		}
		if !strings.EqualFold(hex8s(s.NTime), ntime) || !strings.EqualFold(hex8s(s.Nonce), nonce) {
			t.Fatalf("ntime/nonce %08x %08x from %q %q", s.NTime, s.Nonce, ntime, nonce)
		}
		if six && !strings.EqualFold(hex8s(s.VersionBits), vbits) {
			t.Fatalf("version bits %08x from %q", s.VersionBits, vbits)
		}
	})
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func hex8s(v uint32) string {
	return hexString([]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// TestHex8Exhaustive checks the SWAR decoder against a byte-at-a-time one
// for every byte value in every position, and for random strings.
func TestHex8Exhaustive(t *testing.T) {
	ref := func(s string) (uint32, bool) {
		var v uint32
		for i := 0; i < len(s); i++ {
			d, ok := unhex(s[i])
			if !ok {
				return 0, false
			}
			v = v<<4 | uint32(d)
		}
		return v, true
	}
	check := func(s string) {
		t.Helper()
		got, ok := hex32(s)
		want, wantOK := ref(s)
		if ok != wantOK || (ok && got != want) {
			t.Fatalf("hex32(%q) = %08x %v, want %08x %v", s, got, ok, want, wantOK)
		}
	}
	for _, base := range []string{"0123abcd", "FFFFffff", "9a0fA5e1"} {
		for pos := 0; pos < 8; pos++ {
			for c := 0; c < 256; c++ {
				b := []byte(base)
				b[pos] = byte(c)
				check(string(b))
			}
		}
	}
	rng := rand.New(rand.NewPCG(13, 14))
	const alphabet = "0123456789abcdefABCDEFgG/:@`\x00\xff "
	for i := 0; i < 200000; i++ {
		b := make([]byte, 8)
		for k := range b {
			if rng.IntN(10) == 0 {
				b[k] = byte(rng.Uint32())
			} else {
				b[k] = alphabet[rng.IntN(22)]
			}
		}
		check(string(b))
	}
	var dst [8]byte
	for _, tc := range []struct {
		in string
		ok bool
	}{{"0011223344556677", true}, {"00112233445566", true}, {"001122334455667g", false}, {"0g11223344556677", false}, {"00", true}, {"0x", false}} {
		if got := decodeHex(dst[:len(tc.in)/2], tc.in); got != tc.ok {
			t.Fatalf("decodeHex(%q) = %v", tc.in, got)
		}
		if tc.ok && hexString(dst[:len(tc.in)/2]) != tc.in {
			t.Fatalf("decodeHex(%q) = %x", tc.in, dst[:len(tc.in)/2])
		}
	}
}
