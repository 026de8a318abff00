package message

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"testing"
)

// splitReader returns data in two reads split at a fixed offset, as a TCP
// stream may.
type splitReader struct {
	parts [][]byte
}

func (s *splitReader) Read(p []byte) (int, error) {
	for len(s.parts) > 0 && len(s.parts[0]) == 0 {
		s.parts = s.parts[1:]
	}
	if len(s.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.parts[0])
	s.parts[0] = s.parts[0][n:]
	return n, nil
}

// FuzzDecodeLines feeds arbitrary bytes, split in two reads at an arbitrary
// point, through the line reader and the decoder, and checks invariants:
// no panic, every line read is bounded and newline-free, the lines found equal
// those of a plain split, and every decoded request can be answered with
// valid JSON echoing its id.
func FuzzDecodeLines(f *testing.F) {
	seeds := []string{
		`{"id":1,"method":"mining.subscribe","params":["cpuminer/2.5.1"]}` + "\n",
		`{"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"ffffffff"}]}` + "\n" +
			`{"id":2,"method":"mining.subscribe","params":["bitaxe/BM1370/v2.4.0"]}` + "\n" +
			`{"id":3,"method":"mining.authorize","params":["bcrt1qxyz.w","x"]}` + "\n" +
			`{"id":4,"method":"mining.suggest_difficulty","params":[[1000]]}` + "\n",
		`{"id":"s","method":"mining.submit","params":["w","bf","00000001","504e86ed","b2957c02","1fffe000"]}` + "\r\n",
		"garbage\n{\n}\n\n",
		`{"id":{"a":1},"method":"x"}` + "\n",
		"\xff\xfe\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s), uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, data []byte, at uint16) {
		cut := int(at) % (len(data) + 1)
		lr := NewLineReader(&splitReader{parts: [][]byte{bytes.Clone(data[:cut]), bytes.Clone(data[cut:])}}, 1024)
		var got [][]byte
		for {
			line, err := lr.ReadLine()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, ErrLineTooLong) {
					t.Fatalf("unexpected error %v", err)
				}
				break
			}
			if len(line) > 1024 || bytes.IndexByte(line, '\n') >= 0 {
				t.Fatalf("bad line %q", line)
			}
			got = append(got, bytes.Clone(line))
			req, err := Decode(line)
			var reply []byte
			if err != nil {
				reply = AppendError(nil, req.ID, CodeOther, err.Error())
			} else {
				reply = AppendTrue(nil, req.ID)
				for i := range req.Params {
					req.String(i)
					if f, ok := req.Number(i); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
						t.Fatalf("Number(%d) = %v from %q: not finite", i, f, req.Params[i])
					}
				}
			}
			if !json.Valid(bytes.TrimSuffix(reply, []byte("\n"))) {
				t.Fatalf("reply not JSON: %q (line %q)", reply, line)
			}
		}
		// Lines before any too-long line must match a plain split.
		want := bytes.Split(data, []byte("\n"))
		want = want[:len(want)-1] // text after the last newline is not a line
		for i, g := range got {
			w := bytes.TrimSuffix(want[i], []byte("\r"))
			if !bytes.Equal(g, w) {
				t.Fatalf("line %d = %q, want %q", i, g, w)
			}
		}
	})
}

// FuzzDecodeFastMatchesJSON checks that whenever the hand-written fast
// path accepts a line, encoding/json decodes it to the same request.
func FuzzDecodeFastMatchesJSON(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"method":"mining.submit","params":["w","bf","00000001","504e86ed","b2957c02"]}`,
		`{"jsonrpc":"2.0","id":"a\"b","method":"mining.subscribe","params":[]}`,
		`{"params":[[1.5e-3],{"a":[true,null]}],"method":"x","id":-0.5E+2}`,
		`{"id":1,"method":"m","params":null,"Method":"y"}`,
		`{"id":01,"method":"m"}`,
		` {"method":"m"} `,
		`{"id":1,"method":"m","params":["\u00e9\n"]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		fast, ok := decodeFast(line, nil)
		if !ok {
			return
		}
		var raw rawRequest
		if err := json.Unmarshal(line, &raw); err != nil {
			t.Fatalf("fast path accepted invalid JSON %q: %v", line, err)
		}
		if raw.Method == nil || *raw.Method != fast.Method {
			t.Fatalf("method %q vs %v for %q", fast.Method, raw.Method, line)
		}
		if !bytes.Equal(raw.ID, fast.ID) {
			t.Fatalf("id %q vs %q for %q", fast.ID, raw.ID, line)
		}
		var params []json.RawMessage
		if p := bytes.TrimSpace(raw.Params); len(p) > 0 && p[0] == '[' {
			if err := json.Unmarshal(p, &params); err != nil {
				t.Fatal(err)
			}
		}
		if len(params) != len(fast.Params) {
			t.Fatalf("%d params vs %d for %q", len(fast.Params), len(params), line)
		}
		for i := range params {
			if !bytes.Equal(params[i], fast.Params[i]) {
				t.Fatalf("param %d %q vs %q for %q", i, fast.Params[i], params[i], line)
			}
		}
	})
}

// FuzzParseNumber: whatever the miner sends, a number handed out is finite.
func FuzzParseNumber(f *testing.F) {
	for _, s := range []string{`1`, `"NaN"`, `"Inf"`, `["-Infinity"]`, `1e400`, `"1e-400"`, `"0x1p-2"`, `[["1"]]`, `-0`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		if v, ok := ParseNumber(p); ok && (math.IsNaN(v) || math.IsInf(v, 0)) {
			t.Fatalf("ParseNumber(%q) = %v", p, v)
		}
	})
}
