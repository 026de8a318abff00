package config

import (
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/chaincfg"
)

// networks is the one table of the networks lode runs on: the names the
// config's network key (and lodectl's -network) accept, and each one's
// btcd parameters and default block explorer.
var networks = []struct {
	name     string
	aliases  []string
	params   *chaincfg.Params
	explorer string // for api.explorer: auto; "" means no links
}{
	{"mainnet", nil, &chaincfg.MainNetParams, "https://mempool.space"},
	{"testnet3", []string{"testnet"}, &chaincfg.TestNet3Params, "https://mempool.space/testnet"},
	{"signet", nil, &chaincfg.SigNetParams, "https://mempool.space/signet"},
	// regtest chains are private: no explorer knows their blocks.
	{"regtest", nil, &chaincfg.RegressionNetParams, ""},
}

// NetworkNames lists the accepted network names, for messages.
func NetworkNames() string {
	names := make([]string, len(networks))
	for i, n := range networks {
		names[i] = n.name
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Network returns the btcd parameters of a network name, or an error
// naming the accepted ones.
func Network(name string) (*chaincfg.Params, error) {
	for _, n := range networks {
		if n.name == name {
			return n.params, nil
		}
		for _, a := range n.aliases {
			if a == name {
				return n.params, nil
			}
		}
	}
	return nil, fmt.Errorf("unknown network %q (want %s)", name, NetworkNames())
}

// ChainParams returns the btcd parameters of the configured network, nil
// when it is unknown (Validate reports that).
func (c Config) ChainParams() *chaincfg.Params {
	p, _ := Network(c.Network)
	return p
}

// ExplorerURL is the block explorer base URL the dashboard links to, from
// api.explorer: "" when links are off.
func (c Config) ExplorerURL() string {
	switch c.API.Explorer {
	case "off", "":
		return ""
	case "auto":
		for _, n := range networks {
			if n.params == c.ChainParams() {
				return n.explorer
			}
		}
		return ""
	}
	return strings.TrimRight(c.API.Explorer, "/")
}
