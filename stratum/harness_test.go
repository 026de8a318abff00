package stratum

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/shares"
)

// testJobs is a JobSource built from a recorded testnet3 template, whose
// target is far above the share difficulties the tests use, so no share is
// a block.
type testJobs struct {
	t       testing.TB
	builder *blocktemplate.Builder
	tmpl    *blocktemplate.Template

	mu  sync.Mutex
	cur *blocktemplate.Job
}

func (j *testJobs) Current() *blocktemplate.Job {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.cur
}

// next builds a new job; clean moves to a new prevhash.
func (j *testJobs) next(clean bool) *blocktemplate.Job {
	j.t.Helper()
	j.mu.Lock()
	defer j.mu.Unlock()
	if clean {
		t := *j.tmpl
		t.PrevHash[0]++
		t.Height++
		j.tmpl = &t
	}
	job, err := j.builder.Job(j.tmpl, clean)
	if err != nil {
		j.t.Fatalf("build job: %v", err)
	}
	j.cur = job
	return job
}

func testAddress(t testing.TB, seed byte) string {
	t.Helper()
	var pkh [20]byte
	pkh[0] = seed
	a, err := btcutil.NewAddressPubKeyHash(pkh[:], &chaincfg.TestNet3Params)
	if err != nil {
		t.Fatal(err)
	}
	return a.EncodeAddress()
}

func newTestJobs(t testing.TB) *testJobs {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "testdata/gbt/testnet3-2442185-public-pool.json"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := blocktemplate.ParseTemplate(raw)
	if err != nil {
		t.Fatal(err)
	}
	b, err := blocktemplate.NewBuilder(blocktemplate.Config{Network: &chaincfg.TestNet3Params, PayoutAddress: testAddress(t, 0xee), PoolTag: "/lode-test/"})
	if err != nil {
		t.Fatal(err)
	}
	j := &testJobs{t: t, builder: b, tmpl: tmpl}
	j.next(true)
	return j
}

type harness struct {
	srv  *Server
	jobs *testJobs
	rec  *MemoryRecorder
	addr string
	obs  *rejections
}

type rejections struct {
	mu  sync.Mutex
	all []Rejection
}

func (r *rejections) ShareRejected(x Rejection) {
	r.mu.Lock()
	r.all = append(r.all, x)
	r.mu.Unlock()
}

const testDiff = 1e-5

// startServer runs a server on 127.0.0.1:0 with a testnet3 job source and an
// in-memory recorder; mut adjusts the config.
func startServer(t testing.TB, mut func(*Config)) *harness {
	t.Helper()
	jobs := newTestJobs(t)
	rec := &MemoryRecorder{}
	val, err := shares.New(shares.Config{})
	if err != nil {
		t.Fatal(err)
	}
	obs := &rejections{}
	cfg := Config{
		Ports:      []Port{{Address: "127.0.0.1:0", StartDifficulty: testDiff, MinDifficulty: 1e-8, MaxDifficulty: 1e6}},
		Network:    &chaincfg.TestNet3Params,
		InstanceID: []byte{0x7a},
		Jobs:       jobs,
		Validator:  val,
		Recorder:   rec,
		Observer:   obs,
		Logger:     zaptest.NewLogger(t),
		Vardiff:    Vardiff{Disabled: true},
	}
	// make test runs this package a second time with the reader
	// goroutines of read_loop: goroutine, so both read paths pass it.
	cfg.ReadLoop = os.Getenv("LODE_TEST_READ_LOOP")
	if mut != nil {
		mut(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server run: %v", err)
		}
	})
	return &harness{srv: srv, jobs: jobs, rec: rec, addr: srv.Addrs()[0].String(), obs: obs}
}

// client is a raw Stratum client for protocol tests.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
	// notes holds notifications read while waiting for a reply.
	notes []msg
}

type msg struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

func (m msg) code() int {
	var e []json.RawMessage
	if json.Unmarshal(m.Error, &e) != nil || len(e) == 0 {
		return 0
	}
	var c int
	_ = json.Unmarshal(e[0], &c)
	return c
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (c *client) write(s string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next message (5 s bound).
func (c *client) read() (msg, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		return msg{}, err
	}
	var m msg
	if err := json.Unmarshal(line, &m); err != nil {
		c.t.Fatalf("bad line from server %q: %v", line, err)
	}
	return m, nil
}

// reply reads until the response with the given raw id, keeping
// notifications in notes.
func (c *client) reply(id string) msg {
	c.t.Helper()
	for {
		m, err := c.read()
		if err != nil {
			c.t.Fatalf("waiting for reply %s: %v", id, err)
		}
		if m.Method != "" {
			c.notes = append(c.notes, m)
			continue
		}
		if string(m.ID) == id {
			return m
		}
		// A reply to an earlier request the test did not wait for.
	}
}

// call writes one request line and returns its reply.
func (c *client) call(id, method, params string) msg {
	c.t.Helper()
	c.write(`{"id":` + id + `,"method":"` + method + `","params":` + params + "}\n")
	return c.reply(id)
}

// notification returns the next notification with method (from notes first).
func (c *client) notification(method string) msg {
	c.t.Helper()
	for i, m := range c.notes {
		if m.Method == method {
			c.notes = append(c.notes[:i], c.notes[i+1:]...)
			return m
		}
	}
	for {
		m, err := c.read()
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", method, err)
		}
		if m.Method == method {
			return m
		}
		if m.Method != "" {
			c.notes = append(c.notes, m)
		}
	}
}

// expectClosed reads until EOF (bounded).
func (c *client) expectClosed() {
	c.t.Helper()
	for {
		if _, err := c.read(); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				c.t.Fatal("connection not closed")
			}
			return
		}
	}
}

// handshake subscribes and authorizes as address.w.
func (c *client) handshake(user string) {
	c.t.Helper()
	if r := c.call("1", "mining.subscribe", `["test/1"]`); r.code() != 0 {
		c.t.Fatalf("subscribe: %s", r.Error)
	}
	if r := c.call("2", "mining.authorize", `["`+user+`","x"]`); string(r.Result) != "true" {
		c.t.Fatalf("authorize: %s %s", r.Result, r.Error)
	}
}

// waitFor waits (10 s at most) until cond holds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, what, cond)
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
