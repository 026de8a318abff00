package redisstore

import (
	"math/big"
	"testing"
)

// TestUnitsSum: the accounting's Go-side sums of diff units (acctOps) are
// exact across the 10^18 limb and refuse what the scripts refuse.
func TestUnitsSum(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want string // "" : an error
	}{
		{"small", []string{"1", "2"}, "3"},
		{"carry into the high limb", []string{"999999999999999999", "1"}, "1000000000000000000"},
		{"both limbs", []string{"123456789012345678901234567", "876543210987654321098765433"}, "1000000000000000000000000000"},
		{"zero padding of the low limb", []string{"5000000000000000000", "7"}, "5000000000000000007"},
		{"past 27 digits", []string{"1000000000000000000000000000"}, ""},
		{"not a number", []string{"12a"}, ""},
		{"empty", []string{""}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sum units
			want := new(big.Int)
			for _, s := range tc.in {
				u, err := parseUnits(s)
				if err != nil {
					if tc.want != "" {
						t.Fatalf("parseUnits(%q): %v", s, err)
					}
					return
				}
				sum.add(u)
				v, _ := new(big.Int).SetString(s, 10)
				want.Add(want, v)
			}
			if tc.want == "" {
				t.Fatal("no error")
			}
			if got := string(sum.append(nil)); got != tc.want || got != want.String() {
				t.Fatalf("sum %s, want %s", got, tc.want)
			}
		})
	}
}
