package stratum

import (
	"encoding/json"
	"testing"

	"github.com/lode-pool/lode/stratum/message"
)

// subscribeEn1 subscribes and returns the extranonce1 hex of the reply.
func subscribeEn1(t *testing.T, c *client) string {
	t.Helper()
	return en1Of(t, c.call("1", message.MethodSubscribe, `[]`))
}

func en1Of(t *testing.T, r msg) string {
	t.Helper()
	var res []json.RawMessage
	var en1 string
	if err := json.Unmarshal(r.Result, &res); err != nil || len(res) != 3 || json.Unmarshal(res[1], &en1) != nil {
		t.Fatalf("subscribe result %s %s", r.Result, r.Error)
	}
	return en1
}

// The extranonce1 counter wraps (after 2^24 subscribes with a one-byte
// instance id). A value whose session was sent work must not come back
// while the jobs it worked on are live: the new session would start with
// empty duplicate filters and could resubmit the old session's credited
// shares. Such values rest until the next clean job; a value whose session
// never got work is reused at once; with every value live or resting a
// subscribe waits for the clean job. The counter is shrunk to four values
// so the wrap comes after four subscribes.
func TestExtranonce1NotReusedWhileItsJobsAreLive(t *testing.T) {
	h := startServer(t, nil)
	h.srv.mu.Lock()
	h.srv.en1Low, h.srv.counter = 3, 0
	h.srv.mu.Unlock()
	const v0, v1, v2, v3 = "7a000000", "7a000001", "7a000002", "7a000003"

	// A works (subscribed, authorized, sent the job) and leaves.
	a := dial(t, h.addr)
	if en1 := subscribeEn1(t, a); en1 != v0 {
		t.Fatalf("first extranonce1 %s, want %s", en1, v0)
	}
	if r := a.call("2", message.MethodAuthorize, `["`+testAddress(t, 1)+`","x"]`); string(r.Result) != "true" {
		t.Fatalf("authorize: %s", r.Error)
	}
	a.notification(message.MethodNotify)
	a.conn.Close()
	waitFor(t, "A unregistered", func() bool {
		h.srv.mu.Lock()
		defer h.srv.mu.Unlock()
		_, live := h.srv.inUse[0x7a000000]
		return !live
	})

	// B, C, D only subscribe (no work).
	b, c, d := dial(t, h.addr), dial(t, h.addr), dial(t, h.addr)
	for i, cl := range []*client{b, c, d} {
		if en1, want := subscribeEn1(t, cl), []string{v1, v2, v3}[i]; en1 != want {
			t.Fatalf("extranonce1 %s, want %s", en1, want)
		}
	}
	// B leaves without having worked: its value is free at once.
	b.conn.Close()
	waitFor(t, "B unregistered", func() bool {
		h.srv.mu.Lock()
		defer h.srv.mu.Unlock()
		_, live := h.srv.inUse[0x7a000001]
		return !live
	})
	// The counter has wrapped to A's value, which rests: E gets B's.
	e := dial(t, h.addr)
	if en1 := subscribeEn1(t, e); en1 != v1 {
		t.Fatalf("after the wrap got %s, want %s (A's %s rests while its job is live)", en1, v1, v0)
	}

	// Every value is live or resting: F waits for a clean job.
	f := dial(t, h.addr)
	f.write(`{"id":7,"method":"mining.subscribe","params":[]}` + "\n")
	waitFor(t, "F waiting for a clean job", func() bool {
		h.srv.mu.Lock()
		defer h.srv.mu.Unlock()
		return h.srv.en1Waiting == 1
	})
	h.srv.Publish(h.jobs.next(true))
	if en1 := en1Of(t, f.reply("7")); en1 != v0 {
		t.Fatalf("after the clean job got %s, want A's %s", en1, v0)
	}
}
