package economics

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	secretpkg "github.com/lode-pool/lode/internal/secret"
)

func startNotifier(t *testing.T, cfg WebhookConfig) *Notifier {
	t.Helper()
	n := NewNotifier(cfg, zaptest.NewLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return n
}

func eventSeq(ev Event) int {
	_, seq, _ := strings.Cut(ev.ID, "-")
	n, _ := strconv.Atoi(seq)
	return n
}

// A receiver that is down (connection refused), then up on the same
// address: Notify never waits, the queue keeps the newest events, and once
// the receiver is back every kept event arrives once, signed, in order.
func TestWebhookReceiverDownForAWhile(t *testing.T) {
	const secret = "s3cret"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // down: connections are refused

	n := startNotifier(t, WebhookConfig{URL: "http://" + addr + "/hook", Secret: secretpkg.Literal(secret), Queue: 8,
		InitialBackoff: 5 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, MaxAttempts: 10000, Timeout: time.Second})
	n.Notify(Event{Scope: "worker", Key: "w0", Advice: AdviceCurtail})
	waitFor(t, "failed attempts while down", 10*time.Second, func() bool { return n.Attempts.Load() >= 3 })
	for i := 1; i < 20; i++ {
		n.Notify(Event{Scope: "worker", Key: "w" + strconv.Itoa(i), Advice: AdviceCurtail})
	}
	// 20 events into a queue of 8: the oldest 12 are dropped (w0 while it
	// was being retried), none waited.
	if got := n.Dropped.Load(); got != 12 {
		t.Fatalf("dropped %d, want 12", got)
	}
	if n.Delivered.Load() != 0 {
		t.Fatal("delivered while down")
	}

	// Back up on the same address.
	recv := &webhookReceiver{secret: secret}
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("relisten %s: %v", addr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(recv.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln2) }()
	t.Cleanup(func() { _ = srv.Close() })

	waitFor(t, "deliveries after the receiver came back", 10*time.Second, func() bool { return n.Pending() == 0 && n.Delivered.Load() >= 8 })
	evs := recv.received()
	// w0 was dropped from the queue while it was being retried; an attempt
	// already under way when it was dropped may still deliver it (once,
	// first). Then come the newest 8, in order, each once.
	if len(evs) > 0 && evs[0].Key == "w0" {
		evs = evs[1:]
	}
	if len(evs) != 8 || recv.bad != 0 {
		t.Fatalf("received %d events after w0 (%d bad), want 8", len(evs), recv.bad)
	}
	for i, ev := range evs {
		if eventSeq(ev) != 13+i || ev.Key != "w"+strconv.Itoa(12+i) {
			t.Fatalf("event %d: %s %s, want the newest 8 in order", i, ev.ID, ev.Key)
		}
	}
	if n.Failed.Load() != 0 || n.Pending() != 0 {
		t.Fatalf("failed %d, pending %d", n.Failed.Load(), n.Pending())
	}
}

// A receiver that answers 503 for a while, one that hangs, and one that
// never recovers: retries with backoff, a timeout per attempt, and giving
// up after MaxAttempts without holding up the next event.
func TestWebhookRetriesAndGivesUp(t *testing.T) {
	const secret = "k"
	recv := newWebhookReceiver(t, secret)
	var failures int
	flaky := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		recv.mu.Lock()
		failures++
		f := failures
		recv.mu.Unlock()
		switch {
		case f <= 3:
			http.Error(w, "busy", http.StatusServiceUnavailable)
		case f == 4:
			// Hang until the client's attempt timeout gives up (the body is
			// read first: only then does the server notice the client left).
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		default:
			recv.serve(w, r)
		}
	})
	n := startNotifier(t, WebhookConfig{URL: flaky, Secret: secretpkg.Literal(secret), InitialBackoff: 5 * time.Millisecond, MaxAttempts: 6, Timeout: time.Second})
	n.Notify(Event{Key: "a", Advice: AdviceRun})
	waitFor(t, "delivery after 4 failures", 10*time.Second, func() bool { return n.Delivered.Load() == 1 })
	if a := n.Attempts.Load(); a != 5 {
		t.Fatalf("attempts %d, want 5 (3×503, 1 timeout, 1 ok)", a)
	}

	dead := newTestServer(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "gone", http.StatusGone) })
	n2 := startNotifier(t, WebhookConfig{URL: dead, Secret: secretpkg.Literal(secret), InitialBackoff: time.Millisecond, MaxAttempts: 3})
	n2.Notify(Event{Key: "x"})
	n2.Notify(Event{Key: "y"})
	waitFor(t, "both events given up", 10*time.Second, func() bool { return n2.Failed.Load() == 2 })
	if a := n2.Attempts.Load(); a != 6 {
		t.Fatalf("attempts %d, want 3 per event", a)
	}
}

func TestSignature(t *testing.T) {
	// HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"),
	// the RFC 2104 / Wikipedia example.
	got := Sign("key", []byte("The quick brown fox jumps over the lazy dog"))
	if got != "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8" {
		t.Fatal(got)
	}
	if VerifySignature("key", []byte("tampered"), got) {
		t.Fatal("tampered body verified")
	}
	// A disabled notifier ignores events.
	var off *Notifier
	off.Notify(Event{})
	NewNotifier(WebhookConfig{}, nil).Notify(Event{})
}
