package economics

import "math"

// The exact Poisson bounds need chi-square quantiles with fractional
// degrees of freedom (n_eff is not an integer when share difficulties
// differ). χ²_p(k) = 2·P⁻¹(k/2, p), where P(a, x) is the regularized lower
// incomplete gamma function. This is the textbook series / continued
// fraction for P and a safeguarded Newton inversion: a few dozen lines
// instead of a new module while go.mod is being changed by others; the
// table test checks it against published quantiles.

// regularizedGammaP returns P(a, x) for a > 0, x ≥ 0.
func regularizedGammaP(a, x float64) float64 {
	if x <= 0 {
		return 0
	}
	lg, _ := math.Lgamma(a)
	prefix := math.Exp(-x + a*math.Log(x) - lg)
	if x < a+1 {
		// Series: P = e^{−x} x^a / Γ(a) · Σ xⁿ / (a(a+1)…(a+n)).
		term := 1 / a
		sum := term
		for n := 1; n < 1000; n++ {
			term *= x / (a + float64(n))
			sum += term
			if term < sum*1e-15 {
				break
			}
		}
		return math.Min(sum*prefix, 1)
	}
	// Continued fraction for Q = 1 − P (modified Lentz).
	const tiny = 1e-300
	b := x + 1 - a
	c := 1 / tiny
	d := 1 / b
	h := d
	for i := 1; i < 1000; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		delta := d * c
		h *= delta
		if math.Abs(delta-1) < 1e-15 {
			break
		}
	}
	return math.Max(1-prefix*h, 0)
}

// chiSquareQuantile is the p-quantile (0 < p < 1) of the chi-square
// distribution with k > 0 degrees of freedom.
func chiSquareQuantile(p, k float64) float64 {
	if !(k > 0) || !(p > 0) {
		return 0
	}
	if p >= 1 {
		return math.Inf(1)
	}
	a := k / 2
	lg, _ := math.Lgamma(a)
	// Wilson–Hilferty start, then Newton on P(a, x) = p kept inside a
	// bracket [lo, hi] that bisection shrinks when a step leaves it.
	z := math.Sqrt2 * math.Erfinv(2*p-1)
	h := 2 / (9 * k)
	x := k * math.Pow(1-h+z*math.Sqrt(h), 3) / 2
	if !(x > 0) || math.IsInf(x, 0) {
		x = a
	}
	lo, hi := 0.0, math.Max(2*x, a+10)
	for regularizedGammaP(a, hi) < p {
		lo, hi = hi, hi*2
	}
	for range 200 {
		f := regularizedGammaP(a, x) - p
		if f < 0 {
			lo = max(lo, x)
		} else {
			hi = min(hi, x)
		}
		pdf := math.Exp((a-1)*math.Log(x) - x - lg)
		next := x - f/pdf
		if !(next > lo && next < hi) || pdf == 0 {
			next = (lo + hi) / 2
		}
		if math.Abs(next-x) <= 1e-12*x || hi-lo <= 1e-12*hi {
			x = next
			break
		}
		x = next
	}
	return 2 * x
}
