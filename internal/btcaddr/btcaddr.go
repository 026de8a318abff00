// Package btcaddr gives every payout address one spelling. A Bitcoin address
// can be written several ways that decode to the same script (bech32 is
// case-insensitive: "BC1Q…" and "bc1q…" are one address), but the pool keys
// statistics, balances and thresholds by the address text, so every entry
// point (stratum authorize, the API, lodectl) stores and looks up the form
// btcutil encodes: lowercase bech32, base58 as is.
package btcaddr

import (
	"fmt"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
)

// MaxLen bounds the text of an address before it is decoded (the longest
// bech32 string is 90 characters).
const MaxLen = 100

// Canonical decodes s as an address of params' network and returns the
// spelling btcutil encodes for it.
func Canonical(s string, params *chaincfg.Params) (string, error) {
	if s == "" || len(s) > MaxLen {
		return "", fmt.Errorf("not a %s address: want 1 to %d characters", params.Name, MaxLen)
	}
	a, err := btcutil.DecodeAddress(s, params)
	if err != nil || !a.IsForNet(params) {
		// The decoder's message is not wrapped: it can echo the input.
		return "", fmt.Errorf("not a %s address", params.Name)
	}
	return a.EncodeAddress(), nil
}

// Networks are the networks a tool without a configured network tries, in
// order (testnet3 and signet share their encodings, as do testnet3's and
// regtest's base58 forms, so the canonical text does not depend on which
// one matched).
var Networks = []*chaincfg.Params{
	&chaincfg.MainNetParams, &chaincfg.TestNet3Params, &chaincfg.SigNetParams, &chaincfg.RegressionNetParams,
}

// CanonicalAny is Canonical for the first of Networks that s decodes for;
// for tools such as lodectl that read the store without knowing the pool's
// network.
func CanonicalAny(s string) (string, error) {
	if s == "" || len(s) > MaxLen {
		return "", fmt.Errorf("not an address: want 1 to %d characters", MaxLen)
	}
	for _, p := range Networks {
		if c, err := Canonical(s, p); err == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("%q is not a Bitcoin address", s)
}
