package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/lode-pool/lode/internal/secret"
)

// A receiver whose URL is a credential (a Telegram bot's): the token is
// read from a secret and put where the URL says {token}; what is logged
// shows the placeholder, never the token, also when delivery fails.
func TestTokenInURL(t *testing.T) {
	const token = "123456:AAE-bot/token"
	var got atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bot"+token+"/sendMessage" {
			got.Add(1)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	core, logs := observer.New(zap.DebugLevel)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	good := New(Config{URL: srv.URL + "/bot{token}/sendMessage", Token: secret.Literal(token)}, zap.New(core))
	bad := New(Config{URL: "http://127.0.0.1:1/bot{token}/sendMessage", Token: secret.Literal(token), MaxAttempts: 2,
		InitialBackoff: time.Millisecond}, zap.New(core))
	go good.Run(ctx)
	go bad.Run(ctx)
	for _, n := range []*Notifier{good, bad} {
		n.Notify(func(string) ([]byte, error) { return []byte(`{"text":"hi"}`), nil })
	}
	deadline := time.Now().Add(10 * time.Second)
	for (good.Delivered.Load() == 0 || bad.Failed.Load() == 0) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got.Load() != 1 || bad.Failed.Load() != 1 {
		t.Fatalf("delivered %d (receiver saw %d), failed %d", good.Delivered.Load(), got.Load(), bad.Failed.Load())
	}
	for _, e := range logs.All() {
		line := e.Message
		for _, f := range e.Context {
			line += " " + f.String
			if f.Interface != nil {
				if err, ok := f.Interface.(error); ok {
					line += " " + err.Error()
				}
			}
		}
		if strings.Contains(line, "AAE") || strings.Contains(line, "123456") {
			t.Fatalf("the token reached the log: %s", line)
		}
	}
	if len(logs.All()) == 0 {
		t.Fatal("no log of the failed delivery")
	}
	if err := (Config{URL: "https://api.telegram.org/bot{token}/sendMessage"}).ValidateUnsigned(); err == nil ||
		!strings.Contains(err.Error(), "token") {
		t.Fatalf("a {token} URL without a token: %v", err)
	}
}
