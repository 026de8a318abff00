package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// banRecorder is a Banner that remembers its calls (the stratum server's
// bans are tested in package stratum; here only the HTTP contract).
type banRecorder struct {
	mu    sync.Mutex
	calls []string
	fail  error
}

func (b *banRecorder) Ban(ctx context.Context, target string, d time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, "ban "+target+" "+d.String())
	return b.fail
}

func (b *banRecorder) Unban(ctx context.Context, target string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, "unban "+target)
	return b.fail
}

func do(t *testing.T, h http.Handler, method, path, token, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestAdminBan(t *testing.T) {
	b := &banRecorder{}
	s, err := New(Config{AdminToken: "tok", Banner: b})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	tests := []struct {
		name, method, path, token, body string
		status                          int
	}{
		{"no token", "POST", "/api/v1/admin/ban", "", `{"target":"10.0.0.1"}`, 401},
		{"wrong token", "POST", "/api/v1/admin/ban", "tok2", `{"target":"10.0.0.1"}`, 401},
		{"ban", "POST", "/api/v1/admin/ban", "tok", `{"target":"10.0.0.1","duration":"2h"}`, 200},
		{"ban default duration", "POST", "/api/v1/admin/ban", "tok", `{"target":"addr.rig"}`, 200},
		{"bad duration", "POST", "/api/v1/admin/ban", "tok", `{"target":"x","duration":"soon"}`, 400},
		{"negative duration", "POST", "/api/v1/admin/ban", "tok", `{"target":"x","duration":"-1h"}`, 400},
		{"no target", "POST", "/api/v1/admin/ban", "tok", `{}`, 400},
		{"unknown field", "POST", "/api/v1/admin/ban", "tok", `{"target":"x","forever":true}`, 400},
		{"not json", "POST", "/api/v1/admin/ban", "tok", `target=x`, 400},
		{"unban", "POST", "/api/v1/admin/unban", "tok", `{"target":"10.0.0.1"}`, 200},
		{"GET is not an admin action", "GET", "/api/v1/admin/ban", "tok", ``, 404},
		{"threshold without setter", "PUT", "/api/v1/admin/miners/x/threshold", "tok", `{"threshold":1}`, 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, h, tc.method, tc.path, tc.token, tc.body)
			if code != tc.status {
				t.Fatalf("status %d, want %d: %s", code, tc.status, body)
			}
		})
	}
	want := []string{"ban 10.0.0.1 2h0m0s", "ban addr.rig 0s", "unban 10.0.0.1"}
	if strings.Join(b.calls, ";") != strings.Join(want, ";") {
		t.Errorf("banner calls %q, want %q", b.calls, want)
	}

	b.fail = errors.New("boom")
	if code, _ := do(t, h, "POST", "/api/v1/admin/ban", "tok", `{"target":"y"}`); code != 500 {
		t.Errorf("failing banner: %d", code)
	}
}

func TestAdminDisabledWithoutToken(t *testing.T) {
	s, err := New(Config{Banner: &banRecorder{}})
	if err != nil {
		t.Fatal(err)
	}
	// An empty bearer must not match an empty configured token.
	code, body := do(t, s.Handler(), "POST", "/api/v1/admin/ban", "", `{"target":"x"}`)
	if code != 403 || !strings.Contains(body, "admin API disabled") {
		t.Fatalf("status %d body %s", code, body)
	}
}

func TestReadyz(t *testing.T) {
	var mu sync.Mutex
	nodeErr := errors.New("connection refused")
	s, err := New(Config{Checks: []Check{
		{Name: "redis", Run: func(context.Context) error { return nil }},
		{Name: "node", Run: func(context.Context) error { mu.Lock(); defer mu.Unlock(); return nodeErr }},
		{Name: "slow", Run: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
	}, ReadyTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	code, body := do(t, s.Handler(), "GET", "/readyz", "", "")
	var r struct {
		Ready  bool
		Checks []struct {
			Name  string
			OK    bool
			Error string
		}
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	if code != 503 || r.Ready || len(r.Checks) != 3 || !r.Checks[0].OK || r.Checks[1].OK ||
		r.Checks[1].Error != "connection refused" || r.Checks[2].OK {
		t.Fatalf("status %d body %s", code, body)
	}
	if code, _ := do(t, s.Handler(), "GET", "/healthz", "", ""); code != 200 {
		t.Errorf("healthz %d", code)
	}
}

// An advisory check that fails is reported (degraded) without making the
// process unready: halted payouts must not take miners off a process that
// also serves them.
func TestReadyzAdvisory(t *testing.T) {
	halted := errors.New("payout 7 refused: min relay fee not met")
	for _, tc := range []struct {
		name     string
		advisory bool
		code     int
	}{{"advisory", true, 200}, {"required", false, 503}} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Config{Checks: []Check{
				{Name: "redis", Run: func(context.Context) error { return nil }},
				{Name: "payouts", Run: func(context.Context) error { return halted }, Advisory: tc.advisory},
			}, ReadyTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			code, body := do(t, s.Handler(), "GET", "/readyz", "", "")
			var r struct {
				Ready, Degraded bool
				Checks          []struct {
					Name     string
					OK       bool
					Advisory bool
					Error    string
				}
			}
			if err := json.Unmarshal([]byte(body), &r); err != nil {
				t.Fatal(err)
			}
			if code != tc.code || r.Ready != tc.advisory || r.Degraded != tc.advisory ||
				r.Checks[1].OK || r.Checks[1].Advisory != tc.advisory || r.Checks[1].Error != halted.Error() {
				t.Fatalf("status %d body %s", code, body)
			}
		})
	}
}

func TestUnwiredReadersAnswer503(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/api/v1/pool", "/api/v1/blocks", "/api/v1/workers", "/api/v1/payments", "/api/v1/miners/x"} {
		code, body := do(t, s.Handler(), "GET", p, "", "")
		if code != 503 || !strings.Contains(body, `"error"`) {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
}

func TestMetricsExposition(t *testing.T) {
	age := 42 * time.Second
	m := NewMetrics(Sources{
		TemplateAge: func() time.Duration { return age },
		SpoolBytes:  func() int64 { return 5 },
		Stratum: func() StratumSnapshot {
			return StratumSnapshot{
				Connections: 3,
				Closes:      map[string]uint64{"idle_timeout": 1, "slow_consumer": 2},
				Fanout: HistogramSnapshot{
					Bounds: []time.Duration{time.Millisecond, 10 * time.Millisecond},
					Counts: []uint64{4, 1, 2}, Sum: 100 * time.Millisecond, Count: 7,
				},
				Submit: HistogramSnapshot{
					Bounds: []time.Duration{500 * time.Microsecond, 5 * time.Millisecond},
					Counts: []uint64{6, 3, 1}, Sum: 40 * time.Millisecond, Count: 10,
				},
				StaleBounds: []time.Duration{100 * time.Millisecond, time.Second},
				StaleCounts: []uint64{3, 0, 1},
			}
		},
	})
	m.ShareAccepted(0.5)
	m.ShareAccepted(2)
	m.ShareRejected("duplicate")
	m.ShareRejected("stale")
	m.ShareRejected("stale")
	m.RecordLatency(3 * time.Millisecond)
	m.BlockCandidate(true)
	m.BlockCandidate(false)
	m.LedgerBatch(time.Millisecond, 17)
	s, err := New(Config{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	code, body := do(t, s.Handler(), "GET", "/metrics", "", "")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{
		"lode_stratum_connections 3",
		"lode_stratum_connections_total 6",
		`lode_stratum_disconnects_total{reason="idle_timeout"} 1`,
		`lode_stratum_disconnects_total{reason="slow_consumer"} 2`,
		`lode_job_fanout_seconds_bucket{le="0.001"} 4`,
		`lode_job_fanout_seconds_bucket{le="0.01"} 5`,
		`lode_job_fanout_seconds_bucket{le="+Inf"} 7`,
		"lode_job_fanout_seconds_sum 0.1",
		`lode_submit_seconds_bucket{le="0.0005"} 6`,
		`lode_submit_seconds_bucket{le="0.005"} 9`,
		`lode_submit_seconds_bucket{le="+Inf"} 10`,
		"lode_submit_seconds_sum 0.04",
		"lode_submit_seconds_count 10",
		`lode_shares_stale_by_job_age_total{job_age_le="0.1"} 3`,
		`lode_shares_stale_by_job_age_total{job_age_le="1"} 0`,
		`lode_shares_stale_by_job_age_total{job_age_le="+Inf"} 1`,
		"lode_stratum_session_panics_total 0",
		"lode_shares_accepted_total 2",
		"lode_shares_difficulty_sum 2.5",
		`lode_shares_rejected_total{reason="duplicate"} 1`,
		`lode_shares_rejected_total{reason="stale"} 2`,
		"lode_share_record_seconds_count 1",
		`lode_share_record_seconds_bucket{le="0.005"} 1`,
		`lode_share_record_seconds_bucket{le="0.0025"} 0`,
		"lode_template_age_seconds 42",
		`lode_block_candidates_total{result="accepted"} 1`,
		`lode_block_candidates_total{result="rejected"} 1`,
		"lode_ledger_batch_seconds_count 1",
		"lode_ledger_batch_shares_sum 17",
		"lode_ledger_spool_bytes 5",
		"go_goroutines",
	} {
		if !strings.Contains(body, want+"\n") && !strings.Contains(body, want+" ") {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestDashboardServed(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/":          "<title>Lode pool</title>",
		"/app.js":    "function formatHashrate",
		"/style.css": "svg#chart",
	} {
		code, body := do(t, s.Handler(), "GET", path, "", "")
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("%s: %d, body lacks %q", path, code, want)
		}
	}
}

func TestHistoryRing(t *testing.T) {
	h := NewHistory(3)
	t0 := time.Unix(1000, 0)
	for i := range 5 {
		h.Add(HashratePoint{Time: t0.Add(time.Duration(i) * time.Minute), Hashrate: float64(i)})
	}
	pts := h.Points()
	if len(pts) != 3 || pts[0].Hashrate != 2 || pts[2].Hashrate != 4 {
		t.Fatalf("points %+v", pts)
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	res, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := New(Config{Listen: "nonsense"}); err == nil {
		t.Error("bad listen address accepted")
	}
}
