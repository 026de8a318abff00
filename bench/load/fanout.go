package load

import (
	"slices"
	"sync"
	"time"
)

// Fanout is how one new block's clean job reached the connections.
type Fanout struct {
	PrevHash string
	// Event is the block event time given to MarkBlock (zero when none was:
	// then the fan-out is measured from the first receipt).
	Event    time.Time
	First    time.Time // first connection received the job
	Last     time.Time // last connection received it
	Received int       // connections that received it
}

// Duration is Event (or First) → Last.
func (f Fanout) Duration() time.Duration {
	if !f.Event.IsZero() {
		return f.Last.Sub(f.Event)
	}
	return f.Last.Sub(f.First)
}

type fanTracker struct {
	mu      sync.Mutex
	pending time.Time
	byPrev  map[string]*Fanout
	order   []string
}

func (t *fanTracker) mark(at time.Time) {
	t.mu.Lock()
	t.pending = at
	t.mu.Unlock()
}

func (t *fanTracker) seen(prev string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byPrev == nil {
		t.byPrev = make(map[string]*Fanout)
	}
	f := t.byPrev[prev]
	if f == nil {
		f = &Fanout{PrevHash: prev, First: at, Last: at}
		if !t.pending.IsZero() && !t.pending.After(at) {
			f.Event = t.pending
			t.pending = time.Time{}
		}
		t.byPrev[prev] = f
		t.order = append(t.order, prev)
	}
	if at.Before(f.First) {
		f.First = at
	}
	if at.After(f.Last) {
		f.Last = at
	}
	f.Received++
}

// Fanouts returns every new block seen, oldest first.
func (r *Runner) Fanouts() []Fanout {
	t := &r.fan
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Fanout, 0, len(t.order))
	for _, p := range t.order {
		out = append(out, *t.byPrev[p])
	}
	return out
}

// FanoutSummary gives the p50 and max of the fan-out durations of the blocks
// that reached at least minReceived connections, and how many did.
func FanoutSummary(fs []Fanout, minReceived int) (p50, maxD time.Duration, n int) {
	var ds []time.Duration
	for _, f := range fs {
		if f.Received >= minReceived {
			ds = append(ds, f.Duration())
		}
	}
	if len(ds) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ds)
	return ds[(len(ds)-1)/2], ds[len(ds)-1], len(ds)
}
