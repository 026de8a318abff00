package load

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistIndexMonotonic(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 63, 64, 65, 127, 128, 1000, 1 << 20, 1<<20 + 1, 1 << 40, 1<<63 - 1} {
		i := histIndex(v)
		if i < prev {
			t.Fatalf("index(%d)=%d below previous %d", v, i, prev)
		}
		if i >= histBuckets {
			t.Fatalf("index(%d)=%d out of range", v, i)
		}
		if lo := histLower(i); lo > v || histLower(i+1) <= v {
			t.Fatalf("value %d in bucket %d [%d,%d)", v, i, lo, histLower(i+1))
		}
		prev = i
	}
}

func TestHistQuantiles(t *testing.T) {
	var h Histogram
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]time.Duration, 10000)
	for i := range vals {
		vals[i] = time.Duration(r.ExpFloat64() * float64(200*time.Microsecond))
		h.Observe(vals[i])
	}
	slices.Sort(vals)
	s := h.Snapshot()
	if s.Count() != uint64(len(vals)) {
		t.Fatalf("count %d", s.Count())
	}
	for _, q := range []float64{0.5, 0.9, 0.99} {
		want := vals[int(q*float64(len(vals)-1))]
		got := s.Quantile(q)
		if d := float64(got-want) / float64(want); d > 0.04 || d < -0.04 {
			t.Errorf("q%.2f = %v, exact %v", q, got, want)
		}
	}
	var empty HistSnapshot
	if empty.Quantile(0.5) != 0 || empty.Max() != 0 {
		t.Error("empty histogram not zero")
	}
	later := h.Snapshot()
	h.Observe(time.Second)
	d := h.Snapshot().Sub(later)
	if d.Count() != 1 || d.Max() > time.Second || d.Max() < 960*time.Millisecond {
		t.Errorf("diff count %d max %v", d.Count(), d.Max())
	}
}
