package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeMiners answers every address with one worker and remembers the page
// it was asked for.
type fakeMiners struct {
	mu    sync.Mutex
	addrs []string
	pages []WorkerPage
}

func (f *fakeMiners) Miner(_ context.Context, addr string, p WorkerPage) (Miner, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addrs = append(f.addrs, addr)
	f.pages = append(f.pages, p)
	return Miner{Address: addr, WorkersTotal: 1, WorkersOffset: p.Offset, Workers: []Worker{{Name: "w"}}}, nil
}

type fakeThresholds struct {
	mu  sync.Mutex
	set []string
}

func (f *fakeThresholds) SetPayoutThreshold(_ context.Context, addr string, sats int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set = append(f.set, addr+"="+strconv.FormatInt(sats, 10))
	return nil
}

// lowercase is a stand-in canonicalizer: bech32-like text is lowercased.
func lowercase(s string) (string, error) { return strings.ToLower(s), nil }

func get(h http.Handler, path, remote string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.RemoteAddr = remote
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// The public API is rate limited per client IP with a token bucket (issue
// 10 item 9): the burst passes, the next request is 429 with Retry-After,
// another client is unaffected, and probes, metrics and admin calls are
// not counted.
func TestRateLimitPerClient(t *testing.T) {
	srv, err := New(Config{RateLimit: 0.001, RateBurst: 3, Miners: &fakeMiners{}, AdminToken: "tok",
		Thresholds: &fakeThresholds{}, TrustForwardedFor: true})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	const a, b = "192.0.2.1:1111", "192.0.2.2:2222"
	for i := range 3 {
		if rec := get(h, "/api/v1/miners/x", a); rec.Code != 200 {
			t.Fatalf("request %d within the burst: %d %s", i, rec.Code, rec.Body)
		}
	}
	rec := get(h, "/api/v1/miners/x", a)
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("over the burst: %d, want 429", rec.Code)
	}
	if ra, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", rec.Header().Get("Retry-After"))
	}
	if !strings.Contains(rec.Body.String(), "rate limit") || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("429 body %s", rec.Body)
	}
	if rec := get(h, "/api/v1/nope", a); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("unknown endpoint counts too: %d", rec.Code)
	}
	if rec := get(h, "/api/v1/miners/x", b); rec.Code != 200 {
		t.Fatalf("another client: %d", rec.Code)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/"} {
		if rec := get(h, p, a); rec.Code == http.StatusTooManyRequests {
			t.Fatalf("%s is rate limited", p)
		}
	}
	req := httptest.NewRequest(http.MethodPut, "/api/v1/admin/miners/x/threshold", strings.NewReader(`{"threshold":0}`))
	req.RemoteAddr = a
	req.Header.Set("Authorization", "Bearer tok")
	adm := httptest.NewRecorder()
	h.ServeHTTP(adm, req)
	if adm.Code != 200 {
		t.Fatalf("admin call of a limited client: %d %s", adm.Code, adm.Body)
	}
	// Behind a proxy on this host the forwarded client counts, not the proxy;
	// a forwarded header from anywhere else is ignored.
	for i := range 3 {
		if rec := get(h, "/api/v1/pool/history", "127.0.0.1:5000", "X-Forwarded-For", "203.0.113.9, 198.51.100."+strconv.Itoa(i)); rec.Code != 200 {
			t.Fatalf("forwarded client %d: %d", i, rec.Code)
		}
	}
	if rec := get(h, "/api/v1/pool/history", "192.0.2.2:2222", "X-Forwarded-For", "198.51.100.77"); rec.Code != 200 {
		t.Fatalf("b's second request: %d", rec.Code)
	}
	if rec := get(h, "/api/v1/pool/history", "192.0.2.2:2222", "X-Forwarded-For", "198.51.100.78"); rec.Code != 200 {
		t.Fatalf("b's third request: %d", rec.Code)
	}
	if rec := get(h, "/api/v1/pool/history", "192.0.2.2:2222", "X-Forwarded-For", "198.51.100.79"); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("a non-proxy peer escaped its limit with X-Forwarded-For: %d", rec.Code)
	}

	off, err := New(Config{RateLimit: -1, Miners: &fakeMiners{}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if rec := get(off.Handler(), "/api/v1/miners/x", a); rec.Code != 200 {
			t.Fatalf("limit off, request %d: %d", i, rec.Code)
		}
	}
	if _, err := New(Config{RateBurst: -1}); err == nil {
		t.Fatal("negative burst accepted")
	}
}

// IPv6 clients are counted per /64: the addresses of one network share a
// bucket.
func TestRateLimitIPv6PerNetwork(t *testing.T) {
	srv, err := New(Config{RateLimit: 0.001, RateBurst: 2, Miners: &fakeMiners{}})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	for i, remote := range []string{"[2001:db8:1:2::1]:1", "[2001:db8:1:2::ffff]:2"} {
		if rec := get(h, "/api/v1/miners/x", remote); rec.Code != 200 {
			t.Fatalf("request %d: %d", i, rec.Code)
		}
	}
	if rec := get(h, "/api/v1/miners/x", "[2001:db8:1:2:aaaa::3]:3"); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("third address of the same /64: %d, want 429", rec.Code)
	}
	if rec := get(h, "/api/v1/miners/x", "[2001:db8:1:3::1]:4"); rec.Code != 200 {
		t.Fatalf("another /64: %d", rec.Code)
	}
}

// The limiter table forgets clients whose bucket refilled, so it does not
// grow with every address that ever asked.
func TestClientLimitsForgetIdleClients(t *testing.T) {
	c := newClientLimits(10, 10) // refills in 1 s
	now := testNow()
	for i := range maxClients / 2 {
		c.allow("10.0."+strconv.Itoa(i/256)+"."+strconv.Itoa(i%256), now)
	}
	c.allow("192.0.2.1", now.Add(2e9))
	if n := len(c.clients); n != 1 {
		t.Fatalf("%d clients kept after a sweep, want 1", n)
	}
}

// A miner's workers come in pages: ?limit (default 50, at most 200) and
// ?offset reach the reader; anything else is 400 (issue 10 item 9). The
// address reaches it canonical (item 7).
func TestMinerPagingAndCanonicalAddress(t *testing.T) {
	m := &fakeMiners{}
	srv, err := New(Config{RateLimit: -1, Miners: m, CanonicalAddress: lowercase})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	for _, tc := range []struct {
		query string
		code  int
		want  WorkerPage
	}{
		{"", 200, WorkerPage{0, DefaultMinerWorkers}},
		{"?limit=200&offset=400", 200, WorkerPage{400, 200}},
		{"?limit=1", 200, WorkerPage{0, 1}},
		{"?limit=0", 400, WorkerPage{}}, {"?limit=201", 400, WorkerPage{}}, {"?limit=x", 400, WorkerPage{}},
		{"?offset=-1", 400, WorkerPage{}}, {"?offset=y", 400, WorkerPage{}},
	} {
		n := len(m.pages)
		rec := get(h, "/api/v1/miners/BCRT1QABC"+tc.query, "192.0.2.1:1")
		if rec.Code != tc.code {
			t.Errorf("%q: %d %s, want %d", tc.query, rec.Code, rec.Body, tc.code)
			continue
		}
		if tc.code == 200 && (len(m.pages) != n+1 || m.pages[n] != tc.want || m.addrs[n] != "bcrt1qabc") {
			t.Errorf("%q: reader asked for %v of %v", tc.query, m.pages[n:], m.addrs[n:])
		}
	}
}

// The admin threshold applies payment.CheckThreshold, the rule lodectl and
// the store apply: 5 sat is refused (issue 10 item 10), and the address is
// stored canonical (item 7).
func TestAdminThresholdRule(t *testing.T) {
	th := &fakeThresholds{}
	srv, err := New(Config{AdminToken: "tok", Thresholds: th, CanonicalAddress: lowercase})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		body string
		code int
	}{
		{`{"threshold":5}`, 400}, {`{"threshold":9999}`, 400}, {`{"threshold":-1}`, 400},
		{`{"threshold":2100000000000001}`, 400}, {`{}`, 400},
		{`{"threshold":10000}`, 200}, {`{"threshold":0}`, 200},
	} {
		code, body := do(t, srv.Handler(), http.MethodPut, "/api/v1/admin/miners/BCRT1QABC/threshold", "tok", tc.body)
		if code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.body, code, body, tc.code)
		}
	}
	if got := strings.Join(th.set, " "); got != "bcrt1qabc=10000 bcrt1qabc=0" {
		t.Errorf("thresholds set: %s", got)
	}
}

func testNow() time.Time { return time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC) }
