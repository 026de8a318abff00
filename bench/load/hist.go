package load

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histSub is the number of sub-buckets per power of two: 32 keeps the
// relative error of a reported percentile under about 3 %.
const (
	histSubBits = 5
	histSub     = 1 << histSubBits
	histBuckets = 64 * histSub
)

// Histogram is a log-linear histogram of durations, safe for concurrent use.
// Many connections share one, so recording costs one atomic add instead of
// a growing per-connection slice.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
}

func histIndex(v uint64) int {
	if v < 2*histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits - 1
	return (shift+1)*histSub + int(v>>shift) - histSub
}

// histLower returns the smallest value that falls in bucket i.
func histLower(i int) uint64 {
	if i < 2*histSub {
		return uint64(i)
	}
	shift := i/histSub - 1
	sub := i%histSub + histSub
	return uint64(sub) << shift
}

// Observe records one duration (negative counts as zero).
func (h *Histogram) Observe(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[histIndex(uint64(d))].Add(1)
}

// Snapshot copies the counts.
func (h *Histogram) Snapshot() HistSnapshot {
	var s HistSnapshot
	for i := range h.counts {
		s.counts[i] = h.counts[i].Load()
	}
	return s
}

// HistSnapshot is a point-in-time copy of a Histogram.
type HistSnapshot struct {
	counts [histBuckets]uint64
}

// Sub returns the observations in s that are not in earlier.
func (s HistSnapshot) Sub(earlier HistSnapshot) HistSnapshot {
	for i := range s.counts {
		s.counts[i] -= earlier.counts[i]
	}
	return s
}

// Count returns the number of observations.
func (s *HistSnapshot) Count() uint64 {
	var n uint64
	for _, c := range s.counts {
		n += c
	}
	return n
}

// Quantile returns the q-quantile (0 ≤ q ≤ 1) as the middle of the bucket
// that holds it; 0 when empty.
func (s *HistSnapshot) Quantile(q float64) time.Duration {
	n := s.Count()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n-1)) + 1
	var seen uint64
	for i, c := range s.counts {
		seen += c
		if seen >= rank {
			lo := histLower(i)
			hi := histLower(i + 1)
			return time.Duration(lo + (hi-lo)/2)
		}
	}
	return time.Duration(histLower(histBuckets - 1))
}

// Max returns the lower bound of the highest non-empty bucket.
func (s *HistSnapshot) Max() time.Duration {
	for i := histBuckets - 1; i >= 0; i-- {
		if s.counts[i] > 0 {
			return time.Duration(histLower(i))
		}
	}
	return 0
}
