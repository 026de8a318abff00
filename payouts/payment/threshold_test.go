package payment

import "testing"

func TestCheckThreshold(t *testing.T) {
	for _, tc := range []struct {
		sats int64
		ok   bool
	}{{0, true}, {MinThreshold, true}, {DefaultThreshold, true}, {21_000_000 * 100_000_000, true},
		{-1, false}, {5, false}, {MinThreshold - 1, false}, {21_000_000*100_000_000 + 1, false}} {
		if err := CheckThreshold(tc.sats); (err == nil) != tc.ok {
			t.Errorf("CheckThreshold(%d) = %v, want ok=%v", tc.sats, err, tc.ok)
		}
	}
}
