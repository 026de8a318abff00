package message

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name      string
		line      string
		wantErr   bool
		method    string
		id        string
		nparams   int
		notifying bool
	}{
		{name: "int id", line: `{"id":1,"method":"mining.subscribe","params":["bitaxe/BM1370/v2.4.0"]}`, method: MethodSubscribe, id: "1", nparams: 1},
		{name: "string id", line: `{"id":"abc","method":"mining.authorize","params":["a","b"]}`, method: MethodAuthorize, id: `"abc"`, nparams: 2},
		{name: "object id", line: `{"id":{"x":[1]},"method":"m","params":[]}`, method: "m", id: `{"x":[1]}`},
		{name: "float id", line: `{"id":1.5e3,"method":"m"}`, method: "m", id: "1.5e3"},
		{name: "null id", line: `{"id":null,"method":"mining.suggest_difficulty","params":[512]}`, method: MethodSuggestDifficulty, id: "null", nparams: 1, notifying: true},
		{name: "absent id", line: `{"method":"mining.suggest_difficulty","params":[[512]]}`, method: MethodSuggestDifficulty, nparams: 1, notifying: true},
		{name: "params object ignored", line: `{"id":2,"method":"m","params":{"a":1}}`, method: "m", id: "2"},
		{name: "params null", line: `{"id":2,"method":"m","params":null}`, method: "m", id: "2"},
		{name: "not json", line: `{"id":1,"method":`, wantErr: true},
		{name: "no method", line: `{"id":7,"params":[]}`, wantErr: true, id: "7"},
		{name: "response", line: `{"id":7,"result":"cgminer/4.12","error":null}`, wantErr: true, id: "7"},
		{name: "method not string", line: `{"id":7,"method":5}`, wantErr: true},
		{name: "array", line: `[1,2]`, wantErr: true},
		{name: "bad params", line: `{"id":1,"method":"m","params":[1,}`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := Decode([]byte(tc.line))
			if tc.wantErr {
				if errors.Is(err, ErrResponse) {
					return
				}
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("err = %v, want ErrMalformed", err)
				}
				if string(req.ID) != tc.id {
					t.Fatalf("id = %q, want %q", req.ID, tc.id)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req.Method != tc.method || string(req.ID) != tc.id || len(req.Params) != tc.nparams || req.IsNotification() != tc.notifying {
				t.Fatalf("got %+v (notification %v)", req, req.IsNotification())
			}
		})
	}
}

func TestParams(t *testing.T) {
	req, err := Decode([]byte(`{"id":1,"method":"m","params":["a\"b", 0.00000001, "2.5", [1024], [[1]], [], true, "plain"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := req.String(0); !ok || s != `a"b` {
		t.Fatalf("String(0) = %q %v", s, ok)
	}
	if s, ok := req.String(7); !ok || s != "plain" {
		t.Fatalf("String(7) = %q %v", s, ok)
	}
	if _, ok := req.String(1); ok {
		t.Fatal("number read as string")
	}
	if _, ok := req.String(99); ok {
		t.Fatal("absent param read")
	}
	numbers := []struct {
		i    int
		want float64
		ok   bool
	}{{1, 1e-8, true}, {2, 2.5, true}, {3, 1024, true}, {4, 0, false}, {5, 0, false}, {6, 0, false}, {7, 0, false}, {50, 0, false}}
	for _, n := range numbers {
		got, ok := req.Number(n.i)
		if ok != n.ok || got != n.want {
			t.Errorf("Number(%d) = %v %v, want %v %v", n.i, got, ok, n.want, n.ok)
		}
	}
}

// Numbers from miners are finite (issue 10 item 2): the NaN, infinity and
// out-of-range spellings strconv accepts are refused.
func TestParseNumberFinite(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{`0.5`, 0.5, true}, {`"0.5"`, 0.5, true}, {`[2]`, 2, true}, {`["2"]`, 2, true}, {`-1`, -1, true},
		{`"1e308"`, 1e308, true}, {`"0x1p-2"`, 0.25, true},
		{`"NaN"`, 0, false}, {`"nan"`, 0, false}, {`["NaN"]`, 0, false}, {`NaN`, 0, false},
		{`"Inf"`, 0, false}, {`"+Inf"`, 0, false}, {`"-Inf"`, 0, false}, {`"Infinity"`, 0, false}, {`"-infinity"`, 0, false},
		{`Infinity`, 0, false}, {`1e400`, 0, false}, {`"1e400"`, 0, false}, {`"-1e400"`, 0, false}, {`"0x1p2000"`, 0, false},
		{`""`, 0, false}, {`"abc"`, 0, false}, {`[]`, 0, false}, {`[[1]]`, 0, false}, {`true`, 0, false}, {``, 0, false},
	}
	for _, tc := range tests {
		got, ok := ParseNumber(json.RawMessage(tc.in))
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseNumber(%s) = %v %v, want %v %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"true int id", AppendTrue(nil, json.RawMessage("4")), `{"id":4,"result":true,"error":null}` + "\n"},
		{"true string id", AppendTrue(nil, json.RawMessage(`"x"`)), `{"id":"x","result":true,"error":null}` + "\n"},
		{"nil id", AppendTrue(nil, nil), `{"id":null,"result":true,"error":null}` + "\n"},
		{"error", AppendError(nil, json.RawMessage("10"), CodeJobNotFound, `Job "x" not found`), `{"id":10,"result":null,"error":[21,"Job \"x\" not found",null]}` + "\n"},
		{"set_difficulty tiny", AppendSetDifficulty(nil, 1e-8), `{"id":null,"method":"mining.set_difficulty","params":[0.00000001]}` + "\n"},
		{"set_difficulty big", AppendSetDifficulty(nil, 65536), `{"id":null,"method":"mining.set_difficulty","params":[65536]}` + "\n"},
		{"version mask", AppendSetVersionMask(nil, 0x1fffe000), `{"id":null,"method":"mining.set_version_mask","params":["1fffe000"]}` + "\n"},
		{"extranonce", AppendSetExtranonce(nil, "01000002", 8), `{"id":null,"method":"mining.set_extranonce","params":["01000002",8]}` + "\n"},
		{"reconnect", AppendReconnect(nil, "", 0, 0), `{"id":null,"method":"client.reconnect","params":[]}` + "\n"},
		{"reconnect host", AppendReconnect(nil, "pool", 3333, 5), `{"id":null,"method":"client.reconnect","params":["pool",3333,5]}` + "\n"},
		{"string escapes", AppendString(nil, "a\x01\n\t\\é\xff"), `"a\u0001\n\t\\é\ufffd"`},
		{"notify", AppendNotify(nil, &Notify{JobID: "bf", PrevHash: "00", Coinb1: "01", Coinb2: "02", MerkleBranch: []string{"aa", "bb"}, Version: "20000000", NBits: "1d00ffff", NTime: "504e86b9", CleanJobs: true}),
			`{"id":null,"method":"mining.notify","params":["bf","00","01","02",["aa","bb"],"20000000","1d00ffff","504e86b9",true]}` + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if string(tc.got) != tc.want {
				t.Fatalf("got  %s\nwant %s", tc.got, tc.want)
			}
			line := bytes.TrimSuffix(tc.got, []byte("\n"))
			if !json.Valid(line) {
				t.Fatalf("not valid JSON: %s", line)
			}
		})
	}
}

func TestLineReaderSplitsAndJoins(t *testing.T) {
	input := "{\"id\":1}\n{\"id\":2}\r\n\n" + strings.Repeat("x", 3000) + "\nlast\n"
	want := []string{`{"id":1}`, `{"id":2}`, "", strings.Repeat("x", 3000), "last"}
	readers := map[string]io.Reader{
		"one read":    strings.NewReader(input),
		"byte a time": iotest.OneByteReader(strings.NewReader(input)),
		"half":        iotest.HalfReader(strings.NewReader(input)),
		"data+eof":    iotest.DataErrReader(strings.NewReader(input)),
		// A ReadyReader (stratum's sockets) for the idle reads.
		"ready half":     readyReader{iotest.HalfReader(strings.NewReader(input))},
		"ready one byte": readyReader{iotest.OneByteReader(strings.NewReader(input))},
	}
	for name, r := range readers {
		t.Run(name, func(t *testing.T) {
			lr := NewLineReader(r, 4096)
			for i, w := range want {
				got, err := lr.ReadLine()
				if err != nil {
					t.Fatalf("line %d: %v", i, err)
				}
				if string(got) != w {
					t.Fatalf("line %d = %.40q, want %.40q", i, got, w)
				}
			}
			if _, err := lr.ReadLine(); err != io.EOF {
				t.Fatalf("end: %v, want EOF", err)
			}
			if lr.buf != nil || lr.bufp != nil {
				t.Fatalf("buffer of %d kept after drain", cap(lr.buf))
			}
		})
	}
}

// readyReader is a ReadyReader over r: it takes a buffer for each read and
// gives it back when the read brought nothing.
type readyReader struct{ io.Reader }

func (r readyReader) ReadReady(take func() *[]byte, give func(*[]byte)) (*[]byte, int, error) {
	b := take()
	n, err := r.Read(*b)
	if n == 0 {
		give(b)
		return nil, 0, err
	}
	return b, n, err
}

func TestLineReaderTooLong(t *testing.T) {
	tests := []struct {
		name  string
		input string
	}{
		{"terminated", strings.Repeat("a", 101) + "\n"},
		{"unterminated", strings.Repeat("a", 5000)},
		{"after good line", "ok\n" + strings.Repeat("a", 200) + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lr := NewLineReader(iotest.HalfReader(strings.NewReader(tc.input)), 100)
			var err error
			for range 10 {
				if _, err = lr.ReadLine(); err != nil {
					break
				}
			}
			if !errors.Is(err, ErrLineTooLong) {
				t.Fatalf("err = %v, want ErrLineTooLong", err)
			}
		})
	}
	// Exactly the maximum is fine.
	lr := NewLineReader(strings.NewReader(strings.Repeat("b", 100)+"\r\n"), 100)
	if line, err := lr.ReadLine(); err != nil || len(line) != 100 {
		t.Fatalf("max line: %d %v", len(line), err)
	}
}

func BenchmarkDecodeSubmit(b *testing.B) {
	line := []byte(`{"id":7,"method":"mining.submit","params":["bc1qexampleexampleexample.w1","6a1f","61fabe6d6db43c2e","6155a491","41dad6e3","1fffe000"]}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(line); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeSubmitReusing is BenchmarkDecodeSubmit as a connection
// handler decodes: the previous request's params array reused.
func BenchmarkDecodeSubmitReusing(b *testing.B) {
	line := []byte(`{"id":7,"method":"mining.submit","params":["bc1qexampleexampleexample.w1","6a1f","61fabe6d6db43c2e","6155a491","41dad6e3","1fffe000"]}`)
	var params []json.RawMessage
	b.ReportAllocs()
	for b.Loop() {
		req, err := DecodeReusing(line, params[:0])
		if err != nil {
			b.Fatal(err)
		}
		params = req.Params
	}
}

// TestDecodeReusing: the params land in the array passed in (a submit then
// allocates nothing), a request without params does not see the previous
// request's, and a longer params list grows past the array.
func TestDecodeReusing(t *testing.T) {
	submit := []byte(`{"id":7,"method":"mining.submit","params":["w","6a1f","61fabe6d","6155a491","41dad6e3"]}`)
	params := make([]json.RawMessage, 0, 6)
	req, err := DecodeReusing(submit, params)
	if err != nil || len(req.Params) != 5 || &req.Params[0] != &params[:1][0] {
		t.Fatalf("params not in the array passed in: %v %d", err, len(req.Params))
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = DecodeReusing(submit, params) }); n != 0 {
		t.Errorf("decoding a submit into a reused array: %v allocations", n)
	}
	req, err = DecodeReusing([]byte(`{"id":8,"method":"mining.extranonce.subscribe"}`), req.Params[:0])
	if err != nil || len(req.Params) != 0 {
		t.Errorf("a request without params got %d: %v", len(req.Params), err)
	}
	long := []byte(`{"id":9,"method":"x","params":[1,2,3,4,5,6,7,8]}`)
	req, err = DecodeReusing(long, params)
	if err != nil || len(req.Params) != 8 || string(req.Params[7]) != "8" {
		t.Errorf("eight params: %v %q", err, req.Params)
	}
	// The slow path (escapes in the method) decodes the same.
	req, err = DecodeReusing([]byte(`{"id":1,"method":"mining.\u0073ubmit","params":["a","b"]}`), params)
	if err != nil || req.Method != MethodSubmit || len(req.Params) != 2 {
		t.Errorf("slow path: %v %+v", err, req)
	}
}

func BenchmarkAppendNotify(b *testing.B) {
	n := &Notify{JobID: "1a2b", PrevHash: strings.Repeat("ab", 32), Coinb1: strings.Repeat("01", 60), Coinb2: strings.Repeat("02", 80),
		MerkleBranch: []string{strings.Repeat("aa", 32), strings.Repeat("bb", 32), strings.Repeat("cc", 32)}, Version: "20000000", NBits: "1d00ffff", NTime: "504e86b9"}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendNotify(buf[:0], n)
	}
}
