package load

import (
	"fmt"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
)

// TestnetAddress returns a valid testnet3 P2PKH address derived from seed,
// for benchmark usernames ("<address>.w1").
func TestnetAddress(seed byte) string {
	var pkh [20]byte
	for i := range pkh {
		pkh[i] = seed + byte(i)
	}
	a, err := btcutil.NewAddressPubKeyHash(pkh[:], &chaincfg.TestNet3Params)
	if err != nil {
		// 20 bytes always make an address; keep the signature simple.
		return fmt.Sprintf("invalid-%x", pkh)
	}
	return a.EncodeAddress()
}
