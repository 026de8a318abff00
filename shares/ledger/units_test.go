package ledger

import (
	"math"
	"math/big"
	"testing"
)

func TestDiffUnits(t *testing.T) {
	tests := []struct {
		name string
		in   float64
		want string
		err  bool
	}{
		{"one", 1, "100000000", false},
		{"zero", 0, "0", false},
		{"fraction", 0.001, "100000", false},
		{"smallest unit", 1e-8, "1", false},
		{"rounds to nearest", 1.6e-8, "2", false},
		{"below half a unit", 4e-9, "0", false},
		{"mainnet share", 65536, "6553600000000", false},
		{"beyond 2^64 units", 1.5e14, "15000000000000000000000", false},
		{"vardiff fraction", 1.0 / 3, "33333333", false},
		{"NaN", math.NaN(), "", true},
		{"+Inf", math.Inf(1), "", true},
		{"negative", -1, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DiffUnits(tc.in)
			if (err != nil) != tc.err {
				t.Fatalf("DiffUnits(%v) error %v, want error %v", tc.in, err, tc.err)
			}
			if got != tc.want {
				t.Fatalf("DiffUnits(%v) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseUnits(t *testing.T) {
	for _, bad := range []string{"", "-1", "1.5", "1e9", " 1", "abc"} {
		if _, err := ParseUnits(bad); err == nil {
			t.Errorf("ParseUnits(%q) accepted", bad)
		}
	}
	v, err := ParseUnits("15000000000000000000000")
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := new(big.Int).SetString("15000000000000000000000", 10); v.Cmp(want) != 0 {
		t.Fatalf("ParseUnits = %v", v)
	}
	if d := UnitsToDifficulty(v); d != 1.5e14 {
		t.Fatalf("UnitsToDifficulty = %v, want 1.5e14", d)
	}
}

// FuzzDiffUnits checks that every finite non-negative difficulty gives a
// canonical integer string within half a unit of d × 10^8.
func FuzzDiffUnits(f *testing.F) {
	for _, d := range []float64{0, 1, 0.001, 1.0 / 3, 65536, 1.5e14, 4e-9, 123456.789} {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, d float64) {
		s, err := DiffUnits(d)
		if math.IsNaN(d) || math.IsInf(d, 0) || d < 0 {
			if err == nil {
				t.Fatalf("DiffUnits(%v) accepted", d)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		v, err := ParseUnits(s)
		if err != nil {
			t.Fatal(err)
		}
		if len(s) > 1 && s[0] == '0' {
			t.Fatalf("DiffUnits(%v) = %q has a leading zero", d, s)
		}
		exact := new(big.Float).SetPrec(2000).Mul(big.NewFloat(d).SetPrec(2000), big.NewFloat(UnitScale))
		diff := new(big.Float).Sub(exact, new(big.Float).SetInt(v))
		if diff.Abs(diff).Cmp(big.NewFloat(0.5)) > 0 {
			t.Fatalf("DiffUnits(%v) = %s, off by %v", d, s, diff)
		}
	})
}

func TestDiffToUnitsAndWindow(t *testing.T) {
	tests := []struct {
		name string
		d    float64
		want string
	}{
		{"one", 1, "100000000"},
		{"0.3 is 0.2999… in float64; rounding keeps it exact", 0.3, "30000000"},
		{"smallest unit", 0.00000001, "1"},
		{"mainnet share", 65536, "6553600000000"},
		{"beyond 2^64 units", 1.5e14, "15000000000000000000000"},
		{"zero", 0, "0"},
		{"negative", -1, "0"},
		{"NaN", math.NaN(), "0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DiffToUnits(tc.d).String(); got != tc.want {
				t.Errorf("DiffToUnits(%v) = %s, want %s", tc.d, got, tc.want)
			}
		})
	}
	windows := []struct {
		name                 string
		factor, min, netDiff float64
		want                 string
	}{
		{"factor × difficulty", 2, 0, 0.5, "100000000"},
		{"the minimum when larger", 2, 100, 0.5, "10000000000"},
		{"the product when larger", DefaultWindowFactor, 1, 1e6, "200000000000000"},
		{"regtest without a minimum rounds to 0", DefaultWindowFactor, 0, 4.656542373906925e-10, "0"},
	}
	for _, tc := range windows {
		t.Run(tc.name, func(t *testing.T) {
			if got := WindowUnits(tc.factor, tc.min, tc.netDiff).String(); got != tc.want {
				t.Errorf("WindowUnits(%v, %v, %v) = %s, want %s", tc.factor, tc.min, tc.netDiff, got, tc.want)
			}
		})
	}
}
