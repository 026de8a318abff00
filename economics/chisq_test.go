package economics

import (
	"math"
	"testing"
)

// Published chi-square quantiles (NIST/SEMATECH e-Handbook table 1.3.6.7.4
// and R's qchisq), including fractional degrees of freedom.
func TestChiSquareQuantile(t *testing.T) {
	cases := []struct {
		name string
		p, k float64
		want float64
	}{
		{"k=1 median", 0.5, 1, 0.4549364231},
		{"k=2 lower", 0.025, 2, 0.0506356160},
		{"k=2 upper", 0.975, 2, 7.3777589082},
		{"k=10 lower", 0.025, 10, 3.2469727802},
		{"k=10 upper", 0.975, 10, 20.4831773230},
		{"k=60 upper", 0.975, 60, 83.2976},
		{"k=100 lower", 0.025, 100, 74.2219},
		{"k=1 upper (z²)", 0.975, 1, 5.0238861873}, // Φ⁻¹(0.9875)²
		{"k=20000 upper", 0.975, 20000, 20393.0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := chiSquareQuantile(tc.p, tc.k)
			if math.Abs(got-tc.want) > 1e-4*math.Max(1, tc.want) {
				t.Fatalf("χ²(%v; %v) = %.10f, want %.10f", tc.p, tc.k, got, tc.want)
			}
			// And P(k/2, x/2) returns p.
			if back := regularizedGammaP(tc.k/2, got/2); math.Abs(back-tc.p) > 1e-9 {
				t.Fatalf("P(k/2, x/2) = %v, want %v", back, tc.p)
			}
		})
	}
	// Fractional degrees of freedom: the CDF at the quantile, integrated
	// independently (Simpson in u = t^a, where the integrand is smooth),
	// gives p back.
	for _, k := range []float64{0.3, 0.5, 1.7, 2.5, 7.3, 59.5} {
		for _, p := range []float64{0.025, 0.5, 0.975} {
			x := chiSquareQuantile(p, k)
			if got := simpsonGammaP(k/2, x/2); math.Abs(got-p) > 1e-6 {
				t.Errorf("k=%v p=%v: quantile %v has CDF %v by integration", k, p, x, got)
			}
		}
	}
	if got := chiSquareQuantile(0.975, 0); got != 0 {
		t.Fatalf("k=0: %v", got)
	}
}

// simpsonGammaP integrates P(a, x) = 1/Γ(a) ∫₀ˣ t^{a−1} e^{−t} dt directly
// for a ≥ 1 and, for a < 1, as 1/(aΓ(a)) ∫₀^{x^a} e^{−u^{1/a}} du (smooth
// where t^{a−1} is not).
func simpsonGammaP(a, x float64) float64 {
	const n = 200000
	if a >= 1 {
		lg, _ := math.Lgamma(a)
		f := func(t float64) float64 {
			if t == 0 {
				if a == 1 {
					return 1
				}
				return 0
			}
			return math.Exp((a-1)*math.Log(t) - t - lg)
		}
		return simpson(f, x, n)
	}
	lg, _ := math.Lgamma(a + 1)
	return simpson(func(u float64) float64 { return math.Exp(-math.Pow(u, 1/a)) }, math.Pow(x, a), n) / math.Exp(lg)
}

func simpson(f func(float64) float64, top float64, n int) float64 {
	h := top / float64(n)
	sum := f(0) + f(top)
	for i := 1; i < n; i++ {
		w := 2.0
		if i%2 == 1 {
			w = 4
		}
		sum += w * f(float64(i)*h)
	}
	return sum * h / 3
}
