package stratum

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lode-pool/lode/stratum/message"
)

// presenceLog is a PresenceRecorder that keeps every report; while fail
// is set it refuses them (a Redis outage).
type presenceLog struct {
	mu      sync.Mutex
	reports [][]Presence
	fail    error
	failed  int
}

func (l *presenceLog) RecordPresence(_ context.Context, p []Presence) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		l.failed++
		return l.fail
	}
	l.reports = append(l.reports, p)
	return nil
}

// worker returns every report's entry of one worker, in report order.
func (l *presenceLog) worker(name string) []Presence {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Presence
	for _, r := range l.reports {
		for _, p := range r {
			if p.Worker == name {
				out = append(out, p)
			}
		}
	}
	return out
}

// Real sessions over TCP: two machines mining under one name count once
// (the union of their sessions, not the sum), the user agent of
// mining.subscribe reaches the report, a subscribed but unauthorized
// session is not reported, reports never overlap, a refused report is
// dropped without stopping the next ones, and the shutdown's last report
// holds the sessions' last seconds.
func TestPresenceReportsConnectedTimeAndAgent(t *testing.T) {
	pl := &presenceLog{}
	h := startServer(t, func(c *Config) { c.Presence = pl; c.PresenceInterval = time.Second })
	addr := testAddress(t, 5)
	rig, other := addr+".rig", addr+".other"
	begin := time.Now().Truncate(time.Second)
	session := func(agent, user string) *client {
		c := dial(t, h.addr)
		if r := c.call("1", message.MethodSubscribe, `["`+agent+`"]`); r.code() != 0 {
			t.Fatalf("subscribe: %s", r.Error)
		}
		if user != "" {
			if r := c.call("2", message.MethodAuthorize, `["`+user+`","x"]`); string(r.Result) != "true" {
				t.Fatalf("authorize %s: %s", user, r.Error)
			}
		}
		return c
	}
	a := session("bitaxe/BM1370/v2.4.0", rig)
	b := session("bitaxe/BM1370/v2.4.1", rig)   // newer: its agent is the one reported
	session("Antminer S21/Thu Jan 11 2024", "") // never authorizes
	o := session("bmminer/2.0.0", other)
	waitFor(t, "two reports of the rig", func() bool { return len(pl.worker(rig)) >= 2 })

	pl.mu.Lock()
	pl.fail = errors.New("redis down")
	pl.mu.Unlock()
	waitFor(t, "a refused report", func() bool { pl.mu.Lock(); defer pl.mu.Unlock(); return pl.failed > 0 })
	pl.mu.Lock()
	pl.fail = nil
	pl.mu.Unlock()
	n := len(pl.worker(rig))
	waitFor(t, "a report after the outage", func() bool { return len(pl.worker(rig)) > n })

	b.conn.Close() // one machine leaves; the other keeps the name connected
	n = len(pl.worker(rig))
	waitFor(t, "a report after it left", func() bool { return len(pl.worker(rig)) > n+1 })
	a.conn.Close()
	closed := time.Now()
	if err := h.srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Run sends the last report after Shutdown returns.
	waitFor(t, "the last report", func() bool {
		rs := pl.worker(other)
		return len(rs) > 0 && !rs[len(rs)-1].Spans[len(rs[len(rs)-1].Spans)-1].To.Before(closed.Truncate(time.Second))
	})
	end := time.Now()
	_ = o

	for _, name := range []string{rig, other} {
		var total time.Duration
		var prev time.Time
		// The agent goes with the first report, then only when it
		// changes (the rig's newer session left: the older one's), never
		// twice in a row; the difficulty goes with it.
		agents := map[string][]string{rig: {"bitaxe/BM1370/v2.4.1", "bitaxe/BM1370/v2.4.0"}, other: {"bmminer/2.0.0"}}[name]
		sent := 0
		for i, p := range pl.worker(name) {
			if p.Address != addr || (i == 0 && p.UserAgent == "") {
				t.Errorf("%s report %d: agent %q address %q, want an agent in the first report, address %q", name, i, p.UserAgent, p.Address, addr)
			}
			if p.UserAgent != "" {
				if sent >= len(agents) || p.UserAgent != agents[sent] {
					t.Errorf("%s report %d: agent %q, want the agents %q in this order, each once", name, i, p.UserAgent, agents)
				}
				sent++
			}
			if wantDiff := map[bool]float64{true: testDiff}[p.UserAgent != ""]; p.Difficulty != wantDiff {
				t.Errorf("%s report %d: difficulty %v, want %v (the sessions' own, with the agent)", name, i, p.Difficulty, wantDiff)
			}
			for _, sp := range p.Spans {
				if sp.From.Before(prev) || !sp.To.After(sp.From) || sp.From.Before(begin) || sp.To.After(end) {
					t.Errorf("%s: span %v–%v overlaps an earlier one (ends %v) or lies outside the test (%v–%v)",
						name, sp.From, sp.To, prev, begin, end)
				}
				prev = sp.To
				total += sp.To.Sub(sp.From)
			}
		}
		// One name on two connections is connected once: the sum of two
		// sessions would be about twice the test's duration. The refused
		// report's second is missing, so the union is below it too.
		if elapsed := end.Sub(begin); total <= 0 || total > elapsed {
			t.Errorf("%s connected %v in a test of %v", name, total, elapsed)
		}
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for _, r := range pl.reports {
		for _, p := range r {
			if p.UserAgent == "Antminer S21/Thu Jan 11 2024" || (p.Worker != rig && p.Worker != other) {
				t.Errorf("reported %+v: only authorized workers are", p)
			}
		}
	}
}

// mergeSpans joins overlapping and touching spans, whatever their order.
func TestMergeSpans(t *testing.T) {
	at := func(s int64) time.Time { return time.Unix(s, 0) }
	tests := []struct {
		name string
		in   [][2]int64
		want [][2]int64
	}{
		{"one", [][2]int64{{1, 5}}, [][2]int64{{1, 5}}},
		{"overlap, out of order", [][2]int64{{4, 9}, {1, 5}}, [][2]int64{{1, 9}}},
		{"touching", [][2]int64{{1, 5}, {5, 7}}, [][2]int64{{1, 7}}},
		{"inside", [][2]int64{{1, 10}, {3, 4}}, [][2]int64{{1, 10}}},
		{"apart", [][2]int64{{6, 8}, {1, 5}}, [][2]int64{{1, 5}, {6, 8}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in []Span
			for _, s := range tc.in {
				in = append(in, Span{at(s[0]), at(s[1])})
			}
			got := mergeSpans(in)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v", got)
			}
			for i, w := range tc.want {
				if !got[i].From.Equal(at(w[0])) || !got[i].To.Equal(at(w[1])) {
					t.Errorf("span %d: %v–%v, want %d–%d", i, got[i].From.Unix(), got[i].To.Unix(), w[0], w[1])
				}
			}
		})
	}
}
