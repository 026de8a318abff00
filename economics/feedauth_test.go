package economics

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/internal/secret"
)

// A feed's API key reaches a real local feed where the config puts it:
// in the URL at {token}, as a bearer token, or in a named header; the
// key never shows in the feed's errors.
func TestFeedCredentials(t *testing.T) {
	const key = "k3y/with+chars"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok := r.URL.Query().Get("key") == key || r.Header.Get("Authorization") == "Bearer "+key ||
			r.Header.Get("X-Api-Key") == key
		if !ok {
			http.Error(w, "no key", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"p": 7.5}`)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name string
		cfg  FeedConfig
		ok   bool
	}{
		{"in the url", FeedConfig{URL: srv.URL + "/p?key={token}", Token: secret.Literal(key)}, true},
		{"bearer", FeedConfig{URL: srv.URL + "/p", Token: secret.Literal(key)}, true},
		{"named header", FeedConfig{URL: srv.URL + "/p", Token: secret.Literal(key), Header: "X-Api-Key"}, true},
		{"no key", FeedConfig{URL: srv.URL + "/p"}, false},
		{"wrong key", FeedConfig{URL: srv.URL + "/p?key={token}", Token: secret.Literal("other")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Field = "p"
			f := NewFeed(tc.cfg, true, zaptest.NewLogger(t))
			err := f.Fetch(context.Background())
			if (err == nil) != tc.ok {
				t.Fatalf("fetch: %v, want ok %v", err, tc.ok)
			}
			if tc.ok && f.Value(f.now()).Value != 7.5 {
				t.Fatalf("value %+v", f.Value(f.now()))
			}
			if err != nil && strings.Contains(err.Error(), "other") {
				t.Fatalf("the key reached the error: %v", err)
			}
		})
	}
	// A feed that cannot be reached: the error names the URL with {token}.
	f := NewFeed(FeedConfig{URL: "http://127.0.0.1:1/p?key={token}", Field: "p", Token: secret.Literal(key)}, true, nil)
	err := f.Fetch(context.Background())
	if err == nil || strings.Contains(err.Error(), "k3y") || !strings.Contains(err.Error(), "{token}") {
		t.Fatalf("error %v: want one naming {token}, not the key", err)
	}
}
