package stratum

import (
	"context"
	"testing"
	"time"

	"github.com/lode-pool/lode/bench/miner"
	"github.com/lode-pool/lode/blocktemplate"
)

// BenchmarkSubmitRoundTrip measures one connection's submit → reply round
// trip through the whole server (decode, session checks, shares.Session
// hashing, in-memory recorder, encode, write) over loopback TCP. Shares are
// mined beforehand at difficulty 1e-8 (about 40 hashes each). Time and
// allocations include the test miner's side, which runs in the same process.
func BenchmarkSubmitRoundTrip(b *testing.B) {
	h := startServer(b, func(c *Config) {
		c.Logger = nil
		c.Ports[0].StartDifficulty = 1e-8
		c.Ban.Disabled = true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	m, err := miner.Dial(ctx, miner.Config{Address: h.addr, Username: testAddress(b, 99)})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	for m.CurrentJob() == nil || m.Difficulty() != 1e-8 {
		time.Sleep(time.Millisecond)
	}
	found := make([]*miner.Share, 0, b.N)
	for en2 := uint64(1); len(found) < b.N; en2++ {
		sh, err := m.Mine(ctx, en2)
		if err != nil {
			b.Fatal(err)
		}
		if sh != nil {
			found = append(found, sh)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, sh := range found {
		if r, err := m.Submit(ctx, sh); err != nil || !r.OK() {
			b.Fatalf("submit: %v %s", err, r.Error)
		}
	}
	b.StopTimer()
	if got := h.rec.Len(); got != len(found) {
		b.Fatalf("recorded %d of %d", got, len(found))
	}
}

// BenchmarkPublish measures fanning one job out to 1000 idle sessions:
// precomputing its work and notify line once, then queueing it (with a
// set_difficulty where due) on every connection. Writes happen on the
// sessions' writer goroutines and are not waited for.
func BenchmarkPublish(b *testing.B) {
	h := startServer(b, func(c *Config) { c.Logger = nil })
	const conns = 1000
	for i := 0; i < conns; i++ {
		c := dial(b, h.addr)
		c.write(`{"id":1,"method":"mining.subscribe","params":[]}` + "\n" +
			`{"id":2,"method":"mining.authorize","params":["` + testAddress(b, 98) + `","x"]}` + "\n")
		go func() {
			buf := make([]byte, 64<<10)
			for {
				if _, err := c.conn.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	waitFor(b, "sessions", func() bool { return h.srv.Stats().Connections.Load() == conns })
	jobs := make([]*blocktemplate.Job, 0, b.N)
	for i := 0; i < b.N; i++ {
		jobs = append(jobs, h.jobs.next(i%10 == 0))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, j := range jobs {
		h.srv.Publish(j)
	}
}
