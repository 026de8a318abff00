package btcaddr

import (
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
)

func TestCanonical(t *testing.T) {
	var prog [20]byte
	prog[0] = 7
	seg, err := btcutil.NewAddressWitnessPubKeyHash(prog[:], &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	pkh, err := btcutil.NewAddressPubKeyHash(prog[:], &chaincfg.MainNetParams)
	if err != nil {
		t.Fatal(err)
	}
	lower := seg.EncodeAddress()
	tests := []struct {
		in, want string
		params   *chaincfg.Params
		ok       bool
	}{
		{lower, lower, &chaincfg.RegressionNetParams, true},
		{strings.ToUpper(lower), lower, &chaincfg.RegressionNetParams, true},
		{pkh.EncodeAddress(), pkh.EncodeAddress(), &chaincfg.MainNetParams, true},
		{strings.ToLower(pkh.EncodeAddress()), "", &chaincfg.MainNetParams, false},         // base58 is case-sensitive
		{lower[:4] + strings.ToUpper(lower[4:]), "", &chaincfg.RegressionNetParams, false}, // mixed case is invalid bech32
		{lower, "", &chaincfg.MainNetParams, false},                                        // wrong network
		{lower + ".", "", &chaincfg.RegressionNetParams, false},
		{"", "", &chaincfg.RegressionNetParams, false},
		{strings.Repeat("q", MaxLen+1), "", &chaincfg.RegressionNetParams, false},
	}
	for _, tc := range tests {
		got, err := Canonical(tc.in, tc.params)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Canonical(%q, %s) = %q, %v; want %q ok=%v", tc.in, tc.params.Name, got, err, tc.want, tc.ok)
		}
	}
	if got, err := CanonicalAny(strings.ToUpper(lower)); err != nil || got != lower {
		t.Errorf("CanonicalAny(upper) = %q, %v", got, err)
	}
	if _, err := CanonicalAny("notanaddress"); err == nil {
		t.Error("CanonicalAny accepted garbage")
	}
}
