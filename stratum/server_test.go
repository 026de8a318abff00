package stratum

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lode-pool/lode/bench/miner"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/stratum/message"
)

func TestMinersMineThroughPool(t *testing.T) {
	h := startServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfgs := []miner.Config{
		{Username: testAddress(t, 1) + ".rig1", Password: "x", VersionRolling: true, VersionMask: 0x1fffe000},
		{Username: testAddress(t, 2), Password: "x", Pipeline: true, VersionRolling: true},
		{Username: testAddress(t, 3) + ".cpu", Password: "x"},
	}
	var wg sync.WaitGroup
	errs := make([]error, len(cfgs))
	stats := make([]miner.Stats, len(cfgs))
	for i, c := range cfgs {
		c.Address = h.addr
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := miner.Dial(ctx, c)
			if err != nil {
				errs[i] = err
				return
			}
			defer m.Close()
			if c.VersionRolling && m.VersionMask() != 0x1fffe000 {
				errs[i] = fmt.Errorf("negotiated mask %08x", m.VersionMask())
				return
			}
			stats[i], errs[i] = m.Run(ctx, 3)
		}()
	}
	wg.Wait()
	for i := range cfgs {
		if errs[i] != nil {
			t.Fatalf("miner %d: %v", i, errs[i])
		}
		if stats[i].Accepted != 3 || stats[i].Rejected != 0 {
			t.Fatalf("miner %d: accepted %d rejected %d %v", i, stats[i].Accepted, stats[i].Rejected, stats[i].ByCode)
		}
	}
	recorded := h.rec.Shares()
	if len(recorded) != 9 {
		t.Fatalf("recorded %d shares, want 9", len(recorded))
	}
	byWorker := map[string]int{}
	for _, s := range recorded {
		byWorker[s.Worker]++
		if s.Difficulty != testDiff || s.HashDifficulty < testDiff || s.Block || s.JobHeight != h.jobs.Current().Height {
			t.Fatalf("share %+v", s)
		}
		if !strings.HasPrefix(s.Worker, s.Address) {
			t.Fatalf("worker %q address %q", s.Worker, s.Address)
		}
	}
	if byWorker[testAddress(t, 1)+".rig1"] != 3 || byWorker[testAddress(t, 3)+".cpu"] != 3 {
		t.Fatalf("by worker %v", byWorker)
	}
	if got := h.srv.Stats().Accepted.Load(); got != 9 {
		t.Fatalf("stats accepted %d", got)
	}
	if got := h.srv.Stats().AcceptedDifficulty(); math.Abs(got-9*testDiff) > 1e-15 {
		t.Fatalf("accepted difficulty %v", got)
	}
	bounds, counts, sum, n := h.srv.Stats().Submit.Snapshot()
	var inBuckets uint64
	for _, c := range counts {
		inBuckets += c
	}
	if n != 9 || inBuckets != n || len(counts) != len(bounds)+1 || sum <= 0 {
		t.Fatalf("submit latency: count %d, buckets %v (sum %d), total %v", n, counts, inBuckets, sum)
	}
}

func TestSubscribe(t *testing.T) {
	h := startServer(t, nil)
	c := dial(t, h.addr)
	r := c.call(`"sub"`, message.MethodSubscribe, `["cpuminer/2.5.1"]`)
	var res []json.RawMessage
	if err := json.Unmarshal(r.Result, &res); err != nil || len(res) != 3 {
		t.Fatalf("subscribe result %s", r.Result)
	}
	var en1 string
	var size int
	_ = json.Unmarshal(res[1], &en1)
	_ = json.Unmarshal(res[2], &size)
	if len(en1) != 8 || !strings.HasPrefix(en1, "7a") || size != 8 {
		t.Fatalf("extranonce1 %q size %d", en1, size)
	}
	if !strings.Contains(string(res[0]), `["mining.notify","`+en1+`"]`) {
		t.Fatalf("subscriptions %s", res[0])
	}
	// A second connection gets a different extranonce1. After the first
	// leaves, a resume with its session id is answered with a fresh one:
	// the old one would come back with empty duplicate filters.
	c2 := dial(t, h.addr)
	r2 := c2.call("1", message.MethodSubscribe, `[]`)
	if strings.Contains(string(r2.Result), en1) {
		t.Fatalf("extranonce1 reused while live: %s", r2.Result)
	}
	c.conn.Close()
	waitFor(t, "first session gone", func() bool { return h.srv.Stats().Connections.Load() == 1 })
	c3 := dial(t, h.addr)
	r3 := c3.call("1", message.MethodSubscribe, `["cpuminer/2.5.1","`+en1+`"]`)
	if r3.code() != 0 || !strings.Contains(string(r3.Result), `"mining.notify"`) || strings.Contains(string(r3.Result), `"`+en1+`"`) {
		t.Fatalf("resume of %s: %s %s, want a fresh extranonce1", en1, r3.Result, r3.Error)
	}
}

func TestIDsEchoed(t *testing.T) {
	h := startServer(t, nil)
	c := dial(t, h.addr)
	for _, id := range []string{`7`, `"abc"`, `{"a":[1,2]}`, `1.5`, `[3]`} {
		r := c.call(id, message.MethodSubscribe, `[]`)
		if string(r.ID) != id {
			t.Fatalf("id %s echoed as %s", id, r.ID)
		}
	}
}

func TestAuthorize(t *testing.T) {
	h := startServer(t, nil)
	c := dial(t, h.addr)
	c.call("1", message.MethodSubscribe, `[]`)
	tests := []struct {
		name   string
		params string
		code   int
	}{
		{"mainnet address on testnet", `["1BoatSLRHtKNngkdXEeobR76b53LETtpyT","x"]`, message.CodeUnauthorized},
		{"garbage", `["slush.miner1","x"]`, message.CodeUnauthorized},
		{"no params", `[]`, message.CodeOther},
		{"valid", `["` + testAddress(t, 9) + `","x"]`, 0},
		{"valid with worker", `["` + testAddress(t, 9) + `.rig.7","x"]`, 0},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := c.call(fmt.Sprint(10+i), message.MethodAuthorize, tc.params)
			if r.code() != tc.code {
				t.Fatalf("code %d (%s), want %d", r.code(), r.Error, tc.code)
			}
			if tc.code == 0 && string(r.Result) != "true" {
				t.Fatalf("result %s", r.Result)
			}
		})
	}
}

func TestConfigure(t *testing.T) {
	h := startServer(t, func(c *Config) { c.VersionMask = 0x1fffe000 })
	tests := []struct {
		name   string
		params string
		want   map[string]any
	}{
		{"bip310 example", `[["version-rolling"],{"version-rolling.mask":"18000000","version-rolling.min-bit-count":2}]`,
			map[string]any{"version-rolling": true, "version-rolling.mask": "18000000"}},
		{"esp-miner ffffffff", `[["version-rolling"],{"version-rolling.mask":"ffffffff"}]`,
			map[string]any{"version-rolling": true, "version-rolling.mask": "1fffe000"}},
		{"no mask means ffffffff", `[["version-rolling"],{}]`,
			map[string]any{"version-rolling": true, "version-rolling.mask": "1fffe000"}},
		{"min-bit-count not met", `[["version-rolling"],{"version-rolling.mask":"00006000","version-rolling.min-bit-count":16}]`,
			map[string]any{"version-rolling": false}},
		{"all extensions", `[["version-rolling","minimum-difficulty","subscribe-extranonce","info","x-unknown"],{"version-rolling.mask":"1fffe000","minimum-difficulty.value":0.001,"info.hw-version":"bm1370"}]`,
			map[string]any{"version-rolling": true, "version-rolling.mask": "1fffe000", "minimum-difficulty": true, "subscribe-extranonce": true, "info": true, "x-unknown": false}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, h.addr)
			r := c.call(fmt.Sprint(i+1), message.MethodConfigure, tc.params)
			var got map[string]any
			if err := json.Unmarshal(r.Result, &got); err != nil {
				t.Fatalf("result %s: %v", r.Result, err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	c := dial(t, h.addr)
	if r := c.call("9", message.MethodConfigure, `"bad"`); r.code() != message.CodeOther {
		t.Fatalf("malformed configure: %s", r.Error)
	}
}

// ESP-Miner pipelines configure, subscribe, authorize and suggest_difficulty
// in one write; the suggestion comes after authorize, as an array here.
func TestPipelinedHandshakeAndSuggestion(t *testing.T) {
	h := startServer(t, nil)
	c := dial(t, h.addr)
	addr := testAddress(t, 4)
	c.write(`{"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"ffffffff"}]}` + "\n" +
		`{"id":2,"method":"mining.subscribe","params":["bitaxe/BM1370/v2.4.0"]}` + "\n" +
		`{"id":3,"method":"mining.authorize","params":["` + addr + `.bitaxe","x"]}` + "\n" +
		`{"id":4,"method":"mining.suggest_difficulty","params":[[0.5]]}` + "\n")
	for _, id := range []string{"1", "2", "3", "4"} {
		if r := c.reply(id); r.code() != 0 {
			t.Fatalf("reply %s: %s", id, r.Error)
		}
	}
	// Start difficulty, first job, then the suggestion and the job again.
	first := c.notification(message.MethodSetDifficulty)
	if string(first.Params) != "[0.00001]" {
		t.Fatalf("first set_difficulty %s", first.Params)
	}
	c.notification(message.MethodNotify)
	second := c.notification(message.MethodSetDifficulty)
	if string(second.Params) != "[0.5]" {
		t.Fatalf("suggested set_difficulty %s", second.Params)
	}
	c.notification(message.MethodNotify)
}

// A suggestion before subscribe (and a d= password) sets the start
// difficulty, clamped to the port's bounds, sent before the first notify.
func TestDifficultyBeforeHandshake(t *testing.T) {
	h := startServer(t, func(c *Config) { c.Ports[0].MaxDifficulty = 1000 })
	tests := []struct {
		name, before, pass, want string
	}{
		{"suggest number", `{"id":9,"method":"mining.suggest_difficulty","params":[0.00000001]}`, "x", "[0.00000001]"},
		{"suggest clamped", `{"method":"mining.suggest_difficulty","params":[1e9]}`, "x", "[1000]"},
		{"suggest string", `{"id":9,"method":"mining.suggest_difficulty","params":["0.25"]}`, "x", "[0.25]"},
		{"password d=", ``, "x,d=0.125", "[0.125]"},
		{"minimum-difficulty floor", `{"id":9,"method":"mining.configure","params":[["minimum-difficulty"],{"minimum-difficulty.value":2}]}`, "d=0.5", "[2]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, h.addr)
			if tc.before != "" {
				c.write(tc.before + "\n")
			}
			c.call("1", message.MethodSubscribe, `[]`)
			c.call("2", message.MethodAuthorize, `["`+testAddress(t, 5)+`","`+tc.pass+`"]`)
			m, err := c.read()
			for err == nil && m.Method == "" {
				m, err = c.read()
			}
			if err != nil || m.Method != message.MethodSetDifficulty || string(m.Params) != tc.want {
				t.Fatalf("first notification %s %s (%v), want set_difficulty %s", m.Method, m.Params, err, tc.want)
			}
			if n, _ := c.read(); n.Method != message.MethodNotify {
				t.Fatalf("after set_difficulty got %q", n.Method)
			}
		})
	}
}

func TestExtranonceSubscribeAndUnknownMethod(t *testing.T) {
	h := startServer(t, nil)
	c := dial(t, h.addr)
	sub := c.call("1", message.MethodSubscribe, `[]`)
	if r := c.call("2", message.MethodExtranonceSubscribe, `[]`); string(r.Result) != "true" {
		t.Fatalf("extranonce.subscribe %s %s", r.Result, r.Error)
	}
	n := c.notification(message.MethodSetExtranonce)
	var p []json.RawMessage
	_ = json.Unmarshal(n.Params, &p)
	var res []json.RawMessage
	_ = json.Unmarshal(sub.Result, &res)
	if len(p) != 2 || string(p[0]) != string(res[1]) || string(p[1]) != "8" {
		t.Fatalf("set_extranonce %s, subscribe %s", n.Params, sub.Result)
	}
	if r := c.call("3", "mining.get_transactions", `[]`); r.code() != message.CodeOther {
		t.Fatalf("unknown method: %s", r.Error)
	}
	// The connection stays usable.
	if r := c.call("4", message.MethodSubscribe, `[]`); r.code() != 0 {
		t.Fatalf("after unknown method: %s", r.Error)
	}
}

func TestCodeTable(t *testing.T) {
	tests := []struct {
		err   error
		code  int
		known bool
	}{
		{ErrNotSubscribed, 25, true},
		{fmt.Errorf("x: %w", ErrUnauthorized), 24, true},
		{ErrBanned, 24, true},
		{ErrBadParams, 20, true},
		{ErrUnknownMethod, 20, true},
		{ErrNotRecorded, 20, true},
		{shares.ErrJobNotFound, 21, true},
		{shares.ErrDuplicateShare, 22, true},
		{shares.ErrLowDifficulty, 23, true},
		{shares.ErrBadExtranonce2, 20, true},
		{shares.ErrBadNTime, 20, true},
		{shares.ErrBadVersionBits, 20, true},
		{fmt.Errorf("ntime: %w", shares.ErrMalformed), 20, true},
		{errors.New("redis down"), 20, false},
	}
	for _, tc := range tests {
		code, known := StratumCode(tc.err)
		if code != tc.code || known != tc.known {
			t.Errorf("%v: code %d known %v, want %d %v", tc.err, code, known, tc.code, tc.known)
		}
	}
	for _, r := range CloseReasons() {
		if r.String() == "unknown" || r.String() == "" {
			t.Errorf("close reason %d has no name", r)
		}
	}
	if CloseReason(99).String() != "unknown" {
		t.Error("out of range reason")
	}
}

func TestConfigValidate(t *testing.T) {
	good := func() Config {
		return Config{Ports: []Port{{Address: ":0"}}, Jobs: &testJobs{}, Validator: &shares.Validator{}, Recorder: &MemoryRecorder{}}
	}
	tests := []struct {
		name string
		mut  func(*Config)
		ok   bool
	}{
		{"defaults", func(*Config) {}, true},
		{"no ports", func(c *Config) { c.Ports = nil }, false},
		{"min above max", func(c *Config) { c.Ports[0].MinDifficulty, c.Ports[0].MaxDifficulty = 10, 1 }, false},
		{"tls cert only", func(c *Config) { c.Ports[0].TLSCertFile = "x" }, false},
		{"long instance id", func(c *Config) { c.InstanceID = []byte{1, 2, 3} }, false},
		{"no recorder", func(c *Config) { c.Recorder = nil }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.mut(&c)
			if err := c.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestShutdownSendsReconnect(t *testing.T) {
	h := startServer(t, nil)
	c := dial(t, h.addr)
	c.handshake(testAddress(t, 6))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	c.notification(message.MethodReconnect)
	c.expectClosed()
	if _, err := net.DialTimeout("tcp", h.addr, time.Second); err == nil {
		t.Fatal("still accepting after shutdown")
	}
	if h.srv.Stats().ClosedBy(CloseShutdown) != 1 {
		t.Fatalf("closes by shutdown: %d", h.srv.Stats().ClosedBy(CloseShutdown))
	}
}
