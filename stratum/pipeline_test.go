package stratum

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/lode-pool/lode/bench/miner"
	"github.com/lode-pool/lode/stratum/message"
)

// replyOrder records reply ids in arrival order.
type replyOrder struct {
	mu  sync.Mutex
	ids []int64
}

func (o *replyOrder) add(id int64) {
	o.mu.Lock()
	o.ids = append(o.ids, id)
	o.mu.Unlock()
}

func (o *replyOrder) get() []int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]int64(nil), o.ids...)
}

func awaitReply(t *testing.T, ch <-chan miner.Reply) miner.Reply {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("no reply")
		return miner.Reply{}
	}
}

func badSubmit(user string) []string {
	return []string{user, "nojob", "0000000000000000", "504e86ed", "00000000"}
}

// TestRepliesInRequestOrder: while a share waits for the recorder, the
// connection's later requests are read and handled, but their replies (an
// error, a true to another method) do not overtake the share's pending true.
func TestRepliesInRequestOrder(t *testing.T) {
	h := startServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	order := &replyOrder{}
	m, sh := mined(t, ctx, h, miner.Config{OnReply: order.add})
	user := testAddress(t, 20)
	start := len(order.get())

	h.rec.Hold()
	share, err := m.Send(message.MethodSubmit, sh.Params(user))
	if err != nil {
		t.Fatal(err)
	}
	bad1, _ := m.Send(message.MethodSubmit, badSubmit(user))
	other, _ := m.Send(message.MethodExtranonceSubscribe, []string{})
	bad2, _ := m.Send(message.MethodSubmit, badSubmit(user))
	// Both bad submits are judged (so every request was read and handled:
	// one reader, in order) while the share still waits.
	waitFor(t, "later requests handled", func() bool { return h.srv.Stats().Rejected[1].Load() == 2 })
	if n := h.rec.Held(); n != 1 {
		t.Fatalf("%d shares held, want 1", n)
	}
	h.rec.Release(nil)
	if r := awaitReply(t, share); !r.OK() {
		t.Fatalf("share: %s", r.Error)
	}
	for _, ch := range []<-chan miner.Reply{bad1, bad2} {
		if r := awaitReply(t, ch); r.Code() != message.CodeJobNotFound {
			t.Fatalf("bad submit answered %d %s", r.Code(), r.Error)
		}
	}
	if r := awaitReply(t, other); string(r.Result) != "true" {
		t.Fatalf("extranonce.subscribe: %s %s", r.Result, r.Error)
	}
	got := order.get()[start:]
	if len(got) != 4 || got[0] >= got[1] || got[1] >= got[2] || got[2] >= got[3] {
		t.Fatalf("replies arrived in id order %v, want the request order", got)
	}
	if h.rec.Len() != 1 || h.srv.Stats().Accepted.Load() != 1 {
		t.Fatalf("recorded %d, accepted %d", h.rec.Len(), h.srv.Stats().Accepted.Load())
	}
}

// TestPipelineBackpressure: with maxPipelined replies waiting behind a share
// that is not durable, the reader stops reading that connection (no
// unbounded memory); once the share is answered, everything is read and
// answered in order.
func TestPipelineBackpressure(t *testing.T) {
	h := startServer(t, func(c *Config) { c.Ban.Disabled = true })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	order := &replyOrder{}
	m, sh := mined(t, ctx, h, miner.Config{OnReply: order.add})
	user := testAddress(t, 20)
	start := len(order.get())

	h.rec.Hold()
	share, err := m.Send(message.MethodSubmit, sh.Params(user))
	if err != nil {
		t.Fatal(err)
	}
	const extra = maxPipelined + 50
	var chans []<-chan miner.Reply
	for range extra {
		ch, err := m.Send(message.MethodSubmit, badSubmit(user))
		if err != nil {
			t.Fatal(err)
		}
		chans = append(chans, ch)
	}
	st := h.srv.Stats()
	waitFor(t, "reader stalled", func() bool { return st.PipelineStalls.Load() >= 1 })
	// The share and maxPipelined-1 replies fill the queue: not one line more
	// was read.
	if n := st.Rejected[1].Load(); n != maxPipelined-1 {
		t.Fatalf("%d bad submits judged while stalled, want %d", n, maxPipelined-1)
	}
	if n := len(order.get()) - start; n != 0 {
		t.Fatalf("%d replies overtook the held share", n)
	}
	h.rec.Release(nil)
	if r := awaitReply(t, share); !r.OK() {
		t.Fatalf("share: %s", r.Error)
	}
	for i, ch := range chans {
		if r := awaitReply(t, ch); r.Code() != message.CodeJobNotFound {
			t.Fatalf("bad submit %d answered %d %s", i, r.Code(), r.Error)
		}
	}
	got := order.get()[start:]
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("reply %d (id %d) after id %d", i, got[i], got[i-1])
		}
	}
	if len(got) != extra+1 {
		t.Fatalf("%d replies, want %d", len(got), extra+1)
	}
}

// TestShutdownFlushesPendingReplies: a server shutting down while a share
// waits for the recorder answers it once it is durable, then tells the miner
// to reconnect, then closes.
func TestShutdownFlushesPendingReplies(t *testing.T) {
	h := startServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m, sh := mined(t, ctx, h, miner.Config{})
	user := testAddress(t, 20)
	h.rec.Hold()
	share, err := m.Send(message.MethodSubmit, sh.Params(user))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "share held", func() bool { return h.rec.Held() == 1 })
	done := shutdownInBackground(h)
	// The session waits for its share; nothing is written before it.
	h.rec.Release(nil)
	if r := awaitReply(t, share); !r.OK() {
		t.Fatalf("share in flight at shutdown: %s", r.Error)
	}
	shutdownClosed(t, done, m)
	if h.rec.Len() != 1 {
		t.Fatalf("recorded %d shares", h.rec.Len())
	}
}

// TestShareFailureIsAnErrorInOrder: a share the recorder cannot make durable
// is answered with an error, in its place in the reply order.
func TestShareFailureIsAnErrorInOrder(t *testing.T) {
	h := startServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	order := &replyOrder{}
	m, sh := mined(t, ctx, h, miner.Config{OnReply: order.add})
	user := testAddress(t, 20)
	start := len(order.get())
	h.rec.Hold()
	share, _ := m.Send(message.MethodSubmit, sh.Params(user))
	bad, _ := m.Send(message.MethodSubmit, badSubmit(user))
	waitFor(t, "bad submit handled", func() bool { return h.srv.Stats().Rejected[1].Load() == 1 })
	h.rec.Release(errNotDurableForTest)
	if r := awaitReply(t, share); r.Code() != message.CodeOther {
		t.Fatalf("failed share answered %s %s", r.Result, r.Error)
	}
	awaitReply(t, bad)
	if got := order.get()[start:]; len(got) != 2 || got[0] > got[1] {
		t.Fatalf("reply order %v", got)
	}
	if h.srv.Stats().Accepted.Load() != 0 {
		t.Fatal("a share that is not durable was counted accepted")
	}
}

var errNotDurableForTest = &testError{"ledger: share not durable"}

type testError struct{ s string }

func (e *testError) Error() string { return e.s }

// TestClientGoneWithSharesInFlight: a miner that disconnects while its
// shares wait for the recorder costs nothing: the shares are still recorded
// and their completion on the closed session is harmless.
func TestClientGoneWithSharesInFlight(t *testing.T) {
	h := startServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m, sh := mined(t, ctx, h, miner.Config{})
	user := testAddress(t, 20)
	h.rec.Hold()
	if _, err := m.Send(message.MethodSubmit, sh.Params(user)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "share held", func() bool { return h.rec.Held() == 1 })
	m.Close()
	waitFor(t, "session gone", func() bool { return h.srv.Stats().Connections.Load() == 0 })
	h.rec.Release(nil)
	if h.rec.Len() != 1 {
		t.Fatalf("recorded %d shares", h.rec.Len())
	}
}

// TestShutdownWhileStalled: a connection stopped at maxPipelined replies
// (its reader, or under the event loop the parked session, waits for a
// slot) when shutdown begins still gets every reply it is owed once the
// recorder answers, then the server closes it and Shutdown returns; the
// lines it never read get no reply.
func TestShutdownWhileStalled(t *testing.T) {
	h := startServer(t, func(c *Config) { c.Ban.Disabled = true })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m, sh := mined(t, ctx, h, miner.Config{})
	user := testAddress(t, 20)
	h.rec.Hold()
	share, err := m.Send(message.MethodSubmit, sh.Params(user))
	if err != nil {
		t.Fatal(err)
	}
	var chans []<-chan miner.Reply
	for range maxPipelined + 50 {
		ch, err := m.Send(message.MethodSubmit, badSubmit(user))
		if err != nil {
			t.Fatal(err)
		}
		chans = append(chans, ch)
	}
	waitFor(t, "reader stalled", func() bool { return h.srv.Stats().PipelineStalls.Load() >= 1 })
	done := shutdownInBackground(h)
	h.rec.Release(nil)
	if r := awaitReply(t, share); !r.OK() {
		t.Fatalf("share: %s", r.Error)
	}
	for i, ch := range chans[:maxPipelined-1] {
		if r := awaitReply(t, ch); r.Code() != message.CodeJobNotFound {
			t.Fatalf("bad submit %d answered %d %s", i, r.Code(), r.Error)
		}
	}
	shutdownClosed(t, done, m)
	if n := h.srv.Stats().ClosedBy(CloseShutdown); n != 1 {
		t.Fatalf("%d connections closed by shutdown, want 1", n)
	}
}

// shutdownInBackground starts the server's graceful shutdown (30 s bound)
// and returns where its result arrives.
func shutdownInBackground(h *harness) <-chan error {
	done := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done <- h.srv.Shutdown(sctx)
	}()
	return done
}

// shutdownClosed waits for a clean shutdown and for the miner's connection
// to be closed by it.
func shutdownClosed(t *testing.T, done <-chan error, m *miner.Miner) {
	t.Helper()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	select {
	case <-m.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("connection not closed after shutdown")
	}
}
