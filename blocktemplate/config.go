package blocktemplate

import (
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
)

// Defaults for Config fields left zero.
const (
	DefaultExtranonce1Size = 4
	DefaultExtranonce2Size = 8
	DefaultVersionMask     = 0x1fffe000 // BIP320 general-purpose bits 13–28
)

// Limits on the extranonce sizes: cpuminer refuses an extranonce2 of 0, and
// the slot must fit one direct push in the scriptSig.
const (
	MaxExtranonce1Size = 16
	MaxExtranonce2Size = 16
)

// maxScriptSigSize is the consensus limit on a coinbase scriptSig
// (bad-cb-length above it).
const maxScriptSigSize = 100

// Config says how Builder makes coinbases.
type Config struct {
	// Network selects the address encoding; required.
	Network *chaincfg.Params
	// PayoutAddress receives the whole coinbase value: P2PKH, P2SH, P2WPKH,
	// P2WSH or P2TR, for Network. Required.
	PayoutAddress string
	// PoolTag is pushed into the scriptSig after the extranonce slot, e.g.
	// "/lode/". Optional.
	PoolTag string
	// Extranonce1Size is the size in bytes of the per-connection extranonce1
	// (default 4).
	Extranonce1Size int
	// Extranonce2Size is the size in bytes the miner rolls (default 8).
	Extranonce2Size int
	// VersionMask is the pool's version-rolling mask (default 0x1fffe000).
	// Job versions are sent with these bits cleared.
	VersionMask uint32
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Extranonce1Size == 0 {
		c.Extranonce1Size = DefaultExtranonce1Size
	}
	if c.Extranonce2Size == 0 {
		c.Extranonce2Size = DefaultExtranonce2Size
	}
	if c.VersionMask == 0 {
		c.VersionMask = DefaultVersionMask
	}
	return c
}

// Validate checks c after defaults are applied. It reports a scriptSig that
// could exceed 100 bytes at the largest block height a template may carry.
func (c Config) Validate() error {
	_, err := c.WithDefaults().payoutScript()
	if err != nil {
		return err
	}
	c = c.WithDefaults()
	if c.Extranonce1Size < 1 || c.Extranonce1Size > MaxExtranonce1Size {
		return fmt.Errorf("extranonce1 size %d: want 1..%d", c.Extranonce1Size, MaxExtranonce1Size)
	}
	if c.Extranonce2Size < 1 || c.Extranonce2Size > MaxExtranonce2Size {
		return fmt.Errorf("extranonce2 size %d: want 1..%d", c.Extranonce2Size, MaxExtranonce2Size)
	}
	if n := scriptSigSize(maxHeightPushSize, 0, c.Extranonce1Size+c.Extranonce2Size, len(c.PoolTag)); n > maxScriptSigSize {
		return fmt.Errorf("coinbase scriptSig would be %d bytes (limit %d): shorten the pool tag (%d bytes) or the extranonce", n, maxScriptSigSize, len(c.PoolTag))
	}
	return nil
}

// payoutScript decodes PayoutAddress for Network into an output script.
func (c Config) payoutScript() ([]byte, error) {
	if c.Network == nil {
		return nil, errors.New("network is required")
	}
	if c.PayoutAddress == "" {
		return nil, errors.New("payout address is required")
	}
	addr, err := btcutil.DecodeAddress(c.PayoutAddress, c.Network)
	if err != nil {
		return nil, fmt.Errorf("decode payout address %q: %w", c.PayoutAddress, err)
	}
	if !addr.IsForNet(c.Network) {
		return nil, fmt.Errorf("payout address %q is not for %s", c.PayoutAddress, c.Network.Name)
	}
	switch addr.(type) {
	case *btcutil.AddressPubKeyHash, *btcutil.AddressScriptHash,
		*btcutil.AddressWitnessPubKeyHash, *btcutil.AddressWitnessScriptHash,
		*btcutil.AddressTaproot:
	default:
		return nil, fmt.Errorf("payout address %q: unsupported type %T", c.PayoutAddress, addr)
	}
	script, err := txscript.PayToAddrScript(addr)
	if err != nil {
		return nil, fmt.Errorf("payout script for %q: %w", c.PayoutAddress, err)
	}
	return script, nil
}
