package api

import (
	"net/http"
	"strings"
	"testing"
)

// Handlers of other packages are mounted under their paths, behind the
// public rate limit (economics, alerts) or the admin token (admin alerts),
// and answer 503 naming the setting when the process has none.
func TestHandlerRoutes(t *testing.T) {
	var paths []string
	record := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.Method+" "+r.URL.Path)
		w.WriteHeader(http.StatusOK)
	})
	s, err := New(Config{Economics: record, Alerts: record, AlertsAdmin: record, AdminToken: "tok",
		RateLimit: 1e-9, RateBurst: 3})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	for _, p := range []string{"/api/v1/economics", "/api/v1/economics/workers?address=x", "/api/v1/alerts/subscriptions"} {
		if rec := get(h, p, "192.0.2.1:1"); rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", p, rec.Code, rec.Body)
		}
	}
	if rec := get(h, "/api/v1/economics/fleet", "192.0.2.1:1"); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("fourth request of a burst of 3: %d, want 429", rec.Code)
	}
	if rec := get(h, "/api/v1/economics/fleet", "192.0.2.2:1"); rec.Code != http.StatusOK {
		t.Fatalf("another client: %d", rec.Code)
	}
	if code, _ := do(t, h, http.MethodPost, "/api/v1/admin/alerts/tokens", "wrong", "{}"); code != http.StatusUnauthorized {
		t.Fatalf("admin alerts with a wrong token: %d", code)
	}
	if code, _ := do(t, h, http.MethodPost, "/api/v1/admin/alerts/tokens", "tok", "{}"); code != http.StatusOK {
		t.Fatalf("admin alerts: %d", code)
	}
	want := "GET /api/v1/economics|GET /api/v1/economics/workers|GET /api/v1/alerts/subscriptions|GET /api/v1/economics/fleet|POST /api/v1/admin/alerts/tokens"
	if got := strings.Join(paths, "|"); got != want {
		t.Fatalf("handled %s\nwant    %s", got, want)
	}

	off, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	rec := get(off.Handler(), "/api/v1/economics", "192.0.2.1:1")
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "economics.enabled") {
		t.Fatalf("without economics: %d %s", rec.Code, rec.Body)
	}
}
