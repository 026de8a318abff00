package webhook

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/lode-pool/lode/internal/secret"
)

// Events reach a real receiver in order, signed, each with its id; a
// receiver that fails twice gets the event on the third attempt.
func TestDeliveryInOrderSigned(t *testing.T) {
	var mu sync.Mutex
	var got []string
	fails := 2
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if !VerifySignature("s3cret", body, r.Header.Get(SignatureHeader)) || r.Header.Get(EventIDHeader) == "" {
			t.Errorf("unsigned or unnamed delivery %q", body)
		}
		got = append(got, string(body))
	}))
	defer srv.Close()
	n := New(Config{URL: srv.URL, Secret: secret.Literal("s3cret"), InitialBackoff: time.Millisecond}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	for _, b := range []string{`{"n":1}`, `{"n":2}`, `{"n":3}`} {
		if !n.Notify(func(string) ([]byte, error) { return []byte(b), nil }) {
			t.Fatal("not queued")
		}
	}
	if n.Notify(func(string) ([]byte, error) { return nil, errors.New("no") }) {
		t.Fatal("an event whose body fails was queued")
	}
	deadline := time.Now().Add(10 * time.Second)
	for n.Delivered.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 || got[0] != `{"n":1}` || got[2] != `{"n":3}` || n.Attempts.Load() != 5 {
		t.Fatalf("got %v after %d attempts", got, n.Attempts.Load())
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		c       Config
		key     string
		relaxed bool
	}{
		{Config{}, "", false},
		{Config{URL: "ftp://x"}, "url", false},
		{Config{URL: "https://x/y"}, "secret", false},
		{Config{URL: "https://x/y"}, "", true},
		{Config{URL: "https://x/y", Secret: secret.Literal("s"), Queue: -1}, "queue", false},
	} {
		err := tc.c.Validate()
		if tc.relaxed {
			err = tc.c.ValidateUnsigned()
		}
		var fe *FieldError
		if tc.key == "" && err != nil || tc.key != "" && (!errors.As(err, &fe) || fe.Key != tc.key) {
			t.Errorf("%+v: %v, want key %q", tc.c, err, tc.key)
		}
	}
}
