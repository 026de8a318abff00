package economics

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

var coverageSeeds = flag.Int("coverage.seeds", 1, "run the coverage test with seeds 1..N (N > 1 only by hand: it reports, per λ, how many seeds pass)")

func TestEstimateHashrateCases(t *testing.T) {
	const d = 1024.0
	full := WindowSums{SumD: 100 * d, SumD2: 100 * d * d, N: 100, Connected: time.Hour}
	e := EstimateHashrate(full, time.Hour, d)
	// 100 shares of 1024 in 3600 s: 2³²·102400/3600.
	near(t, "Ĥ", e.Hashrate, 4294967296.0*102400/3600, 1e-12)
	if e.Method != MethodNormal || e.EffShares != 100 {
		t.Fatalf("%+v", e)
	}
	near(t, "low", e.Low, e.Hashrate*(1-z95/10), 1e-12)
	near(t, "high", e.High, e.Hashrate*(1+z95/10), 1e-12)

	// The same shares in a worker connected 20 minutes: three times the rate.
	late := full
	late.Connected = 20 * time.Minute
	near(t, "late joiner", EstimateHashrate(late, time.Hour, d).Hashrate, 3*e.Hashrate, 1e-12)

	// 4 shares: exact Poisson bounds, by hand from χ² tables:
	// χ²₀.₀₂₅(8)/2 = 2.17973/2, χ²₀.₉₇₅(10)/2 = 20.4832/2.
	few := WindowSums{SumD: 4 * d, SumD2: 4 * d * d, N: 4, Connected: time.Hour}
	p := EstimateHashrate(few, time.Hour, d)
	unit := 4294967296.0 * d / 3600
	if p.Method != MethodPoisson {
		t.Fatalf("%+v", p)
	}
	near(t, "poisson low", p.Low, unit*1.089865, 1e-5)
	near(t, "poisson high", p.High, unit*10.24159, 1e-5)

	// No share: an upper bound of 2³²·d·(−ln 0.025)/T, never a bare 0.
	none := EstimateHashrate(WindowSums{Connected: time.Hour}, time.Hour, d)
	if none.Method != MethodUpperBound || none.High <= 0 || none.Low != 0 {
		t.Fatalf("%+v", none)
	}
	near(t, "upper bound", none.High, unit*3.6888794541, 1e-9)

	// Never connected: no figure at all.
	if nc := EstimateHashrate(WindowSums{}, time.Hour, d); nc.Method != MethodNoData || nc.High != 0 {
		t.Fatalf("%+v", nc)
	}

	// Mixed difficulties: n_eff = (Σd)²/Σd².
	mixed := WindowSums{SumD: 10*1 + 10*100, SumD2: 10*1 + 10*100*100, N: 20, Connected: time.Hour}
	m := EstimateHashrate(mixed, time.Hour, 100)
	near(t, "n_eff", m.EffShares, 1010.0*1010/100010, 1e-12)
}

func TestSumBuckets(t *testing.T) {
	now := time.Unix(1000*60+30, 0) // inside minute 1000: the last complete one is 999
	bs := []Bucket{
		{Minute: 939, SumD: 100, SumD2: 1, N: 1, Connected: time.Minute},                    // before the hour
		{Minute: 940, SumD: 1, SumD2: 1, N: 1, MaxD: 1, Connected: time.Minute},             // first minute in
		{Minute: 941, SumD: 2, SumD2: 4, N: 1, MaxD: 2, Connected: time.Minute},             //
		{Minute: 996, SumD: 3, SumD2: 9, N: 1, MaxD: 3, Connected: 90 * time.Second},        // capped at 60 s
		{Minute: 1000, SumD: 5, SumD2: 25, N: 1, MaxD: 5, Connected: 30 * time.Second},      // current minute: not yet
		{Minute: 990, Minutes: 10, SumD: 7, SumD2: 49, N: 1, MaxD: 7, Connected: time.Hour}, // slot 990..999, capped at 600 s
		{Minute: 1000, Minutes: 10, SumD: 11, SumD2: 121, N: 1, Connected: time.Minute},     // slot not ended
	}
	s := SumBuckets(bs, now, time.Hour)
	want := WindowSums{SumD: 1 + 2 + 3 + 7, SumD2: 1 + 4 + 9 + 49, MaxD: 7, N: 4, Connected: 3*time.Minute + 10*time.Minute}
	if s != want {
		t.Fatalf("hour: %+v, want %+v", s, want)
	}
	if s5 := SumBuckets(bs, now, 5*time.Minute); s5 != (WindowSums{SumD: 3, SumD2: 9, MaxD: 3, N: 1, Connected: time.Minute}) {
		t.Fatalf("5 min: %+v", s5)
	}
}

// simulateWindow returns the sums of one worker of true hashrate h over a
// window of 60 one-minute buckets, connected for the last `connected`
// minutes, with difficulty diff(minute) per minute: shares arrive as a
// Poisson process (exponential gaps) at h/(d·2³²) per second.
func simulateWindow(rng *rand.Rand, h float64, connected int, diff func(int) float64) WindowSums {
	var s WindowSums
	for m := 60 - connected; m < 60; m++ {
		d := diff(m)
		rate := h / (d * HashesPerDifficulty)
		var n int64
		for t := rng.ExpFloat64() / rate; t < 60; t += rng.ExpFloat64() / rate {
			n++
		}
		s.SumD += float64(n) * d
		s.SumD2 += float64(n) * d * d
		s.N += n
		if n > 0 {
			s.MaxD = max(s.MaxD, d)
		}
		s.Connected += time.Minute
	}
	return s
}

// TestHashrateIntervalCoverage: 1000 simulated windows per expected share
// count λ (0.5 to 10⁴), shares Poisson at a known rate, with one difficulty
// and with vardiff (difficulty 1–8× changing every minute, worker joined
// 20 minutes ago); the share of 95 % intervals that hold the true rate is
// checked against [93 %, 97 %].
//
// Where the expected effective share count is below 30 the interval is
// the exact one, and exact Poisson bounds cannot stay under 97 %: at
// λ = 1, any interval that covers the rate after 0 to 3 shares covers it
// with probability P(k ≤ 3) = 98.1 %, and one that drops k = 3 covers it
// 92.0 % of the time; no count-based interval lands in between. Exact
// bounds are conservative by construction, so there the test checks
// [93 %, 100 %] (and TestHashrateIntervalExactCoverage checks ≥ 95 %
// without simulation). From n_eff ≥ 30 on it checks [93 %, 97 %].
//
// The seed is fixed (1), chosen before the first run, so the test cannot
// flake; `-coverage.seeds=N` reruns it with seeds 1..N and reports how many
// pass.
func TestHashrateIntervalCoverage(t *testing.T) {
	const trials = 1000
	const d = 512.0
	constant := func(int) float64 { return d }
	vardiff := func(m int) float64 { return d * float64(int(1)<<(m%4)) } // 1×, 2×, 4×, 8× d in turn
	type scenario struct {
		name      string
		connected int
		diff      func(int) float64
	}
	scenarios := []scenario{
		{"constant difficulty, whole hour", 60, constant},
		{"vardiff 1-8x, joined 20 min ago", 20, vardiff},
	}
	lambdas := []float64{0.5, 1, 2, 5, 10, 15, 20, 30, 50, 100, 300, 1000, 3000, 10000}
	seeds := max(*coverageSeeds, 1)
	for _, sc := range scenarios {
		// Per unit of hashrate: expected shares, Σd and Σd² of the window.
		var en, ed, ed2 float64
		for m := 60 - sc.connected; m < 60; m++ {
			c := 60 / (sc.diff(m) * HashesPerDifficulty)
			en, ed, ed2 = en+c, ed+c*sc.diff(m), ed2+c*sc.diff(m)*sc.diff(m)
		}
		effPerShare := ed * ed / ed2 / en // expected n_eff per expected share
		for _, lambda := range lambdas {
			// λ is the expected number of shares in the connected time.
			h := lambda / en
			passed := 0
			var first float64
			for seed := 1; seed <= seeds; seed++ {
				rng := newRand(uint64(seed))
				covered := 0
				for range trials {
					s := simulateWindow(rng, h, sc.connected, sc.diff)
					// The difficulty in force at the end of the window, as
					// the stratum server would report it.
					e := EstimateHashrate(s, time.Hour, sc.diff(59))
					if e.Contains(h) {
						covered++
					}
				}
				c := float64(covered) / trials
				lo, hi := 0.93, 0.97
				if lambda*effPerShare < MinNormalShares {
					hi = 1 // exact bounds: conservative by construction
				}
				if c >= lo && c <= hi {
					passed++
				}
				if seed == 1 {
					first = c
					if c < lo || c > hi {
						t.Errorf("%s, λ=%v: coverage %.3f outside [%.2f, %.2f]", sc.name, lambda, c, lo, hi)
					}
				}
			}
			msg := fmt.Sprintf("%s, λ=%v: coverage %.3f (seed 1)", sc.name, lambda, first)
			if seeds > 1 {
				msg += fmt.Sprintf("; %d of %d seeds within bounds", passed, seeds)
			}
			t.Log(msg)
		}
	}
}

// Exact coverage (no simulation) of the constant-difficulty interval: the
// Garwood region never covers less than 95 %.
func TestHashrateIntervalExactCoverage(t *testing.T) {
	for _, lambda := range []float64{0.1, 0.5, 1, 2, 3, 5, 8, 13, 21, 29} {
		cov := 0.0
		h := lambda * HashesPerDifficulty / 3600
		for k := 0; k <= int(lambda+20*math.Sqrt(lambda)+30); k++ {
			lg, _ := math.Lgamma(float64(k + 1))
			pk := math.Exp(-lambda + float64(k)*math.Log(lambda) - lg)
			e := EstimateHashrate(WindowSums{SumD: float64(k), SumD2: float64(k), N: int64(k), Connected: time.Hour}, time.Hour, 1)
			if e.Contains(h) {
				cov += pk
			}
		}
		if cov < 0.95-1e-9 {
			t.Errorf("λ=%v: exact coverage %.4f below 95 %%", lambda, cov)
		}
		t.Logf("λ=%v: exact coverage %.4f", lambda, cov)
	}
}

func TestSplitConnected(t *testing.T) {
	base := time.Unix(1000*60, 0)
	cases := []struct {
		name     string
		from, to time.Duration // after minute 1000's start
		want     map[int64]time.Duration
	}{
		{"inside one minute", 10 * time.Second, 40 * time.Second, map[int64]time.Duration{1000: 30 * time.Second}},
		{"across three minutes", 45 * time.Second, 150 * time.Second, map[int64]time.Duration{1000: 15 * time.Second, 1001: time.Minute, 1002: 30 * time.Second}},
		{"exact minutes", 0, 2 * time.Minute, map[int64]time.Duration{1000: time.Minute, 1001: time.Minute}},
		{"empty", 5 * time.Second, 5 * time.Second, map[int64]time.Duration{}},
		{"backwards", 50 * time.Second, 5 * time.Second, map[int64]time.Duration{}},
		{"sub-second", 59*time.Second + 500*time.Millisecond, 60*time.Second + 250*time.Millisecond, map[int64]time.Duration{1000: 500 * time.Millisecond, 1001: 250 * time.Millisecond}},
	}
	for _, tc := range cases {
		got := map[int64]time.Duration{}
		SplitConnected(base.Add(tc.from), base.Add(tc.to), func(m int64, d time.Duration) { got[m] += d })
		if len(got) != len(tc.want) {
			t.Fatalf("%s: %v, want %v", tc.name, got, tc.want)
		}
		for m, d := range tc.want {
			if got[m] != d {
				t.Fatalf("%s: %v, want %v", tc.name, got, tc.want)
			}
		}
	}
}
