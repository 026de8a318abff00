//go:build linux

package stratum

import (
	"runtime"
	"strconv"
	"testing"
)

// TestEventLoopHoldsNoGoroutinePerConnection: under read_loop epoll, idle
// connections that subscribed, authorized and got their job hold no
// goroutine each (with read_loop goroutine each holds its reader, which
// shows the count measures them); each is still served after waiting in the
// epoll set, with every request written before any reply is read; and when
// the miners hang up every session ends and gives its slot back.
func TestEventLoopHoldsNoGoroutinePerConnection(t *testing.T) {
	const n = 300
	for _, tc := range []struct {
		mode    string
		atLeast int // goroutines added by n idle connections
		atMost  int
	}{
		{ReadLoopEpoll, 0, n / 4}, // the pool's handlers, a few
		{ReadLoopGoroutine, n, 2 * n},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			h := startServer(t, func(c *Config) { c.ReadLoop = tc.mode })
			if (h.srv.poller != nil) != (tc.mode == ReadLoopEpoll) {
				t.Fatalf("read_loop %s: event loop running: %v", tc.mode, h.srv.poller != nil)
			}
			before := runtime.NumGoroutine()
			clients := make([]*client, n)
			for i := range clients {
				c := dial(t, h.addr)
				c.handshake(testAddress(t, byte(i)))
				c.notification("mining.notify")
				clients[i] = c
			}
			if g := runtime.NumGoroutine() - before; g < tc.atLeast || g > tc.atMost {
				t.Fatalf("%d idle connections added %d goroutines, want %d..%d", n, g, tc.atLeast, tc.atMost)
			}
			for i, c := range clients {
				c.write(`{"id":` + strconv.Itoa(100+i) + `,"method":"mining.extranonce.subscribe","params":[]}` + "\n")
			}
			for i, c := range clients {
				if r := c.reply(strconv.Itoa(100 + i)); string(r.Result) != "true" {
					t.Fatalf("connection %d after waiting: %s %s", i, r.Result, r.Error)
				}
			}
			for _, c := range clients {
				c.conn.Close()
			}
			waitFor(t, "every session ended", func() bool { return h.srv.Stats().Connections.Load() == 0 })
			if p := h.srv.poller; p != nil {
				p.mu.Lock()
				used := len(p.slots) - len(p.free)
				p.mu.Unlock()
				if used != 0 {
					t.Fatalf("%d epoll slots still held after every session ended", used)
				}
			}
		})
	}
}

// fakeSlots fills a poller's slot table with n sessions, armed, every
// third with its deadline passed at now (slot 2, 5, …), and every seventh
// slot empty.
func fakeSlots(n int, now int64) (*poller, int) {
	p := &poller{}
	want := 0
	for i := range n {
		if i%7 == 6 {
			p.slots = append(p.slots, nil)
			continue
		}
		s := &Session{}
		s.evState.Store(evArmed)
		s.deadline.Store(now + 1)
		if i%3 == 2 {
			s.deadline.Store(now - 1)
			want++
		}
		p.slots = append(p.slots, s)
	}
	return p, want
}

// TestSweepFindsEveryExpiredSession: the sweeper's chunked scan finds every
// armed session past its deadline whatever the table's size around the
// chunk boundaries, and none that is not armed.
func TestSweepFindsEveryExpiredSession(t *testing.T) {
	const now = int64(1e18)
	for _, n := range []int{0, 1, sweepChunk - 1, sweepChunk, sweepChunk + 1, 3*sweepChunk + 5} {
		p, want := fakeSlots(n, now)
		if got := len(p.expired(now, nil)); got != want {
			t.Errorf("%d slots: %d expired found, want %d", n, got, want)
		}
		for _, s := range p.slots {
			if s != nil {
				s.evState.Store(evBusy)
			}
		}
		if got := len(p.expired(now, nil)); got != 0 {
			t.Errorf("%d slots, none armed: %d expired found", n, got)
		}
	}
}

// BenchmarkSweepScan is the sweeper's scan of 100,000 armed sessions (once
// a second at most): what the loop can wait for, in chunks of sweepChunk.
func BenchmarkSweepScan(b *testing.B) {
	const now = int64(1e18)
	p, _ := fakeSlots(100_000, now)
	due := make([]*Session, 0, 100_000)
	b.ReportAllocs()
	for b.Loop() {
		due = p.expired(now, due[:0])
	}
}
