package economics

import (
	"math"
	"time"
)

// Bucket is one slot of one worker's statistics, as the share ledger
// stores them (see docs/economics.md, "What the ledger stores"): one
// minute, or several (the ledger keeps 10-minute slots for 24 h).
type Bucket struct {
	// Minute is the unix minute (unix seconds / 60) the bucket starts at;
	// Minutes its width (0 or 1: one minute).
	Minute  int64
	Minutes int64
	// SumD is Σd over the accepted shares of the minute (credited target
	// difficulty), SumD2 is Σd², N the number of shares.
	SumD  float64
	SumD2 float64
	N     int64
	// MaxD is the largest share difficulty of the bucket (for the exact
	// bounds when difficulties differ).
	MaxD float64
	// Connected is the time within the bucket that the worker had a live
	// authorized session (0 to its width).
	Connected time.Duration
}

// WindowSums are the sums of the buckets of one window.
type WindowSums struct {
	SumD, SumD2, MaxD float64
	N                 int64
	Connected         time.Duration
}

// SumBuckets adds up the buckets that lie in the window of complete
// minutes ending with the minute before now's (the current minute is still
// being written: its shares and its connected time may not agree yet):
// buckets starting after now−window and ending by that minute. Connected
// time is capped at each bucket's width.
func SumBuckets(buckets []Bucket, now time.Time, window time.Duration) WindowSums {
	end := now.Unix()/60 - 1                 // last complete minute
	start := end - int64(window/time.Minute) // exclusive
	var s WindowSums
	for i := range buckets {
		b := &buckets[i]
		w := max(b.Minutes, 1)
		if b.Minute <= start || b.Minute+w-1 > end {
			continue
		}
		s.SumD += b.SumD
		s.SumD2 += b.SumD2
		s.N += b.N
		s.MaxD = max(s.MaxD, b.MaxD)
		s.Connected += min(max(b.Connected, 0), time.Duration(w)*time.Minute)
	}
	return s
}

// Estimate windows shown per worker.
var (
	Window5m  = 5 * time.Minute
	Window1h  = time.Hour
	Window24h = 24 * time.Hour
)

// MinNormalShares is the effective share count from which the normal
// approximation is used; below it the exact Poisson bounds are.
const MinNormalShares = 30

// Interval method names.
const (
	MethodNormal     = "normal"
	MethodPoisson    = "poisson_exact"
	MethodUpperBound = "upper_bound"
	MethodNoData     = "not_connected"
)

// HashrateEstimate is a worker's hashrate over one window with its 95 %
// confidence interval, all in H/s.
type HashrateEstimate struct {
	Window    time.Duration `json:"-"`
	WindowS   float64       `json:"window_seconds"`
	Connected float64       `json:"connected_seconds"` // T
	Shares    int64         `json:"shares"`            // n
	SumD      float64       `json:"sum_difficulty"`    // Σd
	EffShares float64       `json:"effective_shares"`  // n_eff = (Σd)²/Σd²
	Hashrate  float64       `json:"hashrate"`          // Ĥ = 2³²·Σd/T (0 with an upper bound only)
	Low       float64       `json:"low"`
	High      float64       `json:"high"`
	Method    string        `json:"method"`
}

// noShareUpper is χ²₀.₉₇₅(2)/2 = −ln 0.025: the upper 97.5 % bound on a
// Poisson mean when nothing was seen (the upper end of the same two-sided
// 95 % interval the other counts get).
var noShareUpper = -math.Log(0.025)

// EstimateHashrate computes the estimate of one window from its sums. T is
// the connected time, so a worker that joined 5 minutes ago is not diluted
// over the hour. lastDifficulty is the difficulty the worker's shares are
// judged at, for the upper bound when the window holds no share (≤ 0: 1).
//
// With n_eff ≥ 30: Ĥ·(1 ± 1.96/√n_eff). Below, the exact Poisson bounds
// for a sum of shares of different difficulties (Fay & Feuer's gamma
// interval for weighted Poisson sums, which is Garwood's exact interval
// when all difficulties are equal): with y = Σd, v = Σd² and w the largest
// difficulty (MaxD, or lastDifficulty if larger),
//
//	low  = 2³²/T · v/(2y) · χ²₀.₀₂₅(2y²/v)                  (2y²/v = 2·n_eff)
//	high = 2³²/T · (v+w²)/(2(y+w)) · χ²₀.₉₇₅(2(y+w)²/(v+w²))
//
// No share: [0, 2³²·d·3.689/T] with d = the larger of lastDifficulty and
// MaxD, an upper bound, never a bare 0.
func EstimateHashrate(s WindowSums, window time.Duration, lastDifficulty float64) HashrateEstimate {
	e := HashrateEstimate{Window: window, WindowS: window.Seconds(), Connected: s.Connected.Seconds(), Shares: s.N, SumD: s.SumD}
	if e.Connected <= 0 {
		e.Method = MethodNoData
		return e
	}
	T := e.Connected
	if s.N == 0 || !(s.SumD > 0) || !(s.SumD2 > 0) {
		d := max(lastDifficulty, s.MaxD)
		if !(d > 0) {
			d = 1
		}
		e.Method = MethodUpperBound
		e.High = HashesPerDifficulty * d * noShareUpper / T
		return e
	}
	e.EffShares = s.SumD * s.SumD / s.SumD2
	e.Hashrate = HashesPerDifficulty * s.SumD / T
	if e.EffShares >= MinNormalShares {
		half := z95 / math.Sqrt(e.EffShares)
		e.Method = MethodNormal
		e.Low = e.Hashrate * (1 - half)
		e.High = e.Hashrate * (1 + half)
		return e
	}
	y, v := s.SumD, s.SumD2
	w := max(s.MaxD, lastDifficulty)
	if !(w > 0) {
		w = v / y // the mean share difficulty d̄: Garwood's bound
	}
	e.Method = MethodPoisson
	e.Low = HashesPerDifficulty / T * v / (2 * y) * chiSquareQuantile(0.025, 2*y*y/v)
	e.High = HashesPerDifficulty / T * (v + w*w) / (2 * (y + w)) * chiSquareQuantile(0.975, 2*(y+w)*(y+w)/(v+w*w))
	return e
}

// Contains reports whether h (H/s) lies in the interval.
func (e HashrateEstimate) Contains(h float64) bool { return h >= e.Low && h <= e.High }

// SplitConnected splits a connected interval [from, to) across the unix
// minutes it touches, calling add(minute, time in that minute) for each:
// what the statistics writer needs to fill Bucket.Connected from a
// session's start and end (or from its last tick and now).
func SplitConnected(from, to time.Time, add func(minute int64, d time.Duration)) {
	for from.Before(to) {
		minute := from.Unix() / 60
		next := time.Unix((minute+1)*60, 0)
		end := to
		if next.Before(end) {
			end = next
		}
		add(minute, end.Sub(from))
		from = end
	}
}
