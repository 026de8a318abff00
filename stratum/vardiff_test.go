package stratum

import (
	"context"
	"testing"
	"time"

	"github.com/lode-pool/lode/bench/miner"
	"github.com/lode-pool/lode/stratum/message"
)

func TestVardiffRaisesBeforeNextJob(t *testing.T) {
	h := startServer(t, func(c *Config) { c.Vardiff = Vardiff{RetargetShares: 4, RetargetTime: time.Hour} })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m, err := miner.Dial(ctx, miner.Config{Address: h.addr, Username: testAddress(t, 90), Password: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if st, err := m.Run(ctx, 4); err != nil || st.Accepted != 4 {
		t.Fatalf("first shares: %v %+v", err, st)
	}
	// A share mined on the old job at the old difficulty, submitted after
	// the change: still credited at the old job's difficulty.
	var old *miner.Share
	for en2 := uint64(500); old == nil; en2++ {
		if old, err = m.Mine(ctx, en2); err != nil {
			t.Fatal(err)
		}
	}
	if d := m.Difficulty(); d != testDiff {
		t.Fatalf("difficulty changed before the next job: %v", d)
	}
	oldJob := m.CurrentJob().ID
	h.srv.Publish(h.jobs.next(false))
	waitFor(t, "next job", func() bool { return m.CurrentJob().ID != oldJob })
	// Shares arrive far faster than one per 10 s: the step is capped at ×4,
	// and set_difficulty came before the notify.
	if d := m.Difficulty(); d != 4*testDiff {
		t.Fatalf("difficulty after retarget %v, want %v", d, 4*testDiff)
	}
	if r, _ := m.Submit(ctx, old); !r.OK() {
		t.Fatalf("old-job share after change: %s", r.Error)
	}
	recorded := h.rec.Shares()
	if last := recorded[len(recorded)-1]; last.Difficulty != testDiff {
		t.Fatalf("old-job share credited at %v", last.Difficulty)
	}
	if st, err := m.Run(ctx, 6); err != nil || st.Accepted != 6 {
		t.Fatalf("after retarget: %v %+v", err, st)
	}
	recorded = h.rec.Shares()
	if last := recorded[len(recorded)-1]; last.Difficulty != 4*testDiff {
		t.Fatalf("new-job share credited at %v", last.Difficulty)
	}
}

func TestVardiffLowersIdleMinerWithinBounds(t *testing.T) {
	h := startServer(t, func(c *Config) {
		c.Vardiff = Vardiff{RetargetTime: 50 * time.Millisecond}
		c.Ports[0].MinDifficulty = testDiff / 8
	})
	c := dial(t, h.addr)
	c.handshake(testAddress(t, 91))
	c.notification(message.MethodNotify)            // the first job, after the start difficulty
	want := []string{"[0.0000025]", "[0.00000125]"} // ÷4, then the port minimum
	for _, w := range want {
		time.Sleep(60 * time.Millisecond)
		h.srv.Publish(h.jobs.next(false))
		c.notes = nil
		for {
			m, err := c.read()
			if err != nil {
				t.Fatal(err)
			}
			if m.Method == message.MethodSetDifficulty {
				if string(m.Params) != w {
					t.Fatalf("set_difficulty %s, want %s", m.Params, w)
				}
				break
			}
		}
	}
	// At the floor nothing more is sent: the next notify comes alone.
	time.Sleep(60 * time.Millisecond)
	h.srv.Publish(h.jobs.next(false))
	for {
		m, err := c.read()
		if err != nil {
			t.Fatal(err)
		}
		if m.Method == message.MethodSetDifficulty {
			t.Fatalf("difficulty below the floor: %s", m.Params)
		}
		if m.Method == message.MethodNotify {
			// Skip the notifies of the earlier publishes.
			if h.jobs.Current().ID == jobIDOf(m) {
				break
			}
		}
	}
}

func jobIDOf(m msg) string {
	var p []any
	if err := jsonUnmarshal(m.Params, &p); err != nil || len(p) == 0 {
		return ""
	}
	s, _ := p[0].(string)
	return s
}
