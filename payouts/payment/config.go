package payment

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"go.uber.org/zap"
)

// Mode is how payout transactions are signed.
type Mode string

const (
	// ModeHot signs with Config.Key and broadcasts at once.
	ModeHot Mode = "hot"
	// ModeCold writes unsigned PSBTs; `lodectl payouts broadcast` takes the
	// signed ones back.
	ModeCold Mode = "cold"
)

// Defaults and limits.
const (
	DefaultInterval     = time.Hour
	DefaultThreshold    = 1_000_000 // 0.01 BTC
	MinThreshold        = 10_000    // keeps every output far above dust
	DefaultMaxOutputs   = 100
	MaxMaxOutputs       = 2000
	DefaultMaxInputs    = 200
	DefaultConfTarget   = 6
	DefaultFeeRateFloor = 1_000   // sat/kvB (1 sat/vB): the default relay minimum
	DefaultFeeRateCap   = 100_000 // sat/kvB (100 sat/vB)
	DefaultConfirmation = 1
	DefaultStuckAfter   = 6 * time.Hour
	// dustLimit is the smallest output the processor creates; below it
	// (546 sat is P2PKH dust at the default relay fee) nodes refuse to relay.
	dustLimit = 1_000
)

// Config configures a Processor. Zero values take the documented defaults.
type Config struct {
	// Params is the network (mainnet, testnet, regtest …). Required.
	Params *chaincfg.Params
	// PoolAddress receives the change and is the address every pool UTXO
	// pays (the coinbase payout address). P2PKH, P2WPKH or P2TR. Required.
	PoolAddress string
	// Mode is ModeHot (default) or ModeCold.
	Mode Mode
	// Key signs in hot mode; it must belong to PoolAddress. Load it with
	// LoadKey from a file or environment variable named in the daemon's
	// configuration, never from the configuration text.
	Key *btcec.PrivateKey

	// Interval between runs of Run (default 1h).
	Interval time.Duration
	// Threshold is the default minimum balance that gets paid (default
	// 1,000,000 sat; at least MinThreshold). Per-address overrides live in
	// the store (lodectl payouts threshold).
	Threshold int64
	// MaxOutputs per transaction, change excluded (default 100).
	MaxOutputs int
	// MaxInputs per transaction (default 200).
	MaxInputs int

	// ConfTarget is the fee estimate's confirmation target in blocks
	// (default 6).
	ConfTarget int
	// FeeRateFloor and FeeRateCap clamp the node's estimate, in sat per 1000
	// vbytes (defaults 1,000 and 100,000). When the node has no estimate the
	// floor is used.
	FeeRateFloor int64
	FeeRateCap   int64
	// FeePayer is FeePayerPool (default: the network fee is debited from
	// the pool's fee account, the pool fee credited by the unlocker) or
	// FeePayerMiners (deducted pro rata from the outputs).
	FeePayer FeePayer

	// Confirmations after which a payout is confirmed (default 1).
	Confirmations int64
	// StuckAfter flags a payout unconfirmed for this long after its first
	// broadcast (default 6h).
	StuckAfter time.Duration

	// AfterRun, if set, is called by Run after every run with its result
	// (nil if the run failed early) and error: the daemon writes new cold
	// PSBTs to its psbt_dir and updates metrics there.
	AfterRun func(*Result, error)

	Logger *zap.Logger
	// Now is the clock (default time.Now); tests replace it.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Mode == "" {
		c.Mode = ModeHot
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Threshold == 0 {
		c.Threshold = DefaultThreshold
	}
	if c.MaxOutputs == 0 {
		c.MaxOutputs = DefaultMaxOutputs
	}
	if c.MaxInputs == 0 {
		c.MaxInputs = DefaultMaxInputs
	}
	if c.ConfTarget == 0 {
		c.ConfTarget = DefaultConfTarget
	}
	if c.FeeRateFloor == 0 {
		c.FeeRateFloor = DefaultFeeRateFloor
	}
	if c.FeeRateCap == 0 {
		c.FeeRateCap = DefaultFeeRateCap
	}
	if c.FeePayer == "" {
		c.FeePayer = FeePayerPool
	}
	if c.Confirmations == 0 {
		c.Confirmations = DefaultConfirmation
	}
	if c.StuckAfter == 0 {
		c.StuckAfter = DefaultStuckAfter
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate fills defaults and checks the configuration.
func (c *Config) Validate() error {
	c.setDefaults()
	var errs []error
	if c.Params == nil {
		errs = append(errs, errors.New("params (network) is required"))
	}
	if c.PoolAddress == "" {
		errs = append(errs, errors.New("pool address is required"))
	} else if c.Params != nil {
		if _, err := poolScript(c.PoolAddress, c.Params); err != nil {
			errs = append(errs, err)
		}
	}
	switch c.Mode {
	case ModeHot:
		if c.Key == nil {
			errs = append(errs, errors.New("hot mode needs a signing key"))
		} else if c.Params != nil && c.PoolAddress != "" {
			if err := keyMatchesAddress(c.Key, c.PoolAddress, c.Params); err != nil {
				errs = append(errs, err)
			}
		}
	case ModeCold:
	default:
		errs = append(errs, fmt.Errorf("mode %q: want hot or cold", c.Mode))
	}
	switch c.FeePayer {
	case FeePayerPool, FeePayerMiners:
	default:
		errs = append(errs, fmt.Errorf("fee payer %q: want pool or miners", c.FeePayer))
	}
	if c.Threshold < MinThreshold {
		errs = append(errs, fmt.Errorf("threshold %d sat is below the minimum %d", c.Threshold, MinThreshold))
	}
	if c.MaxOutputs < 1 || c.MaxOutputs > MaxMaxOutputs {
		errs = append(errs, fmt.Errorf("max outputs %d: want 1..%d", c.MaxOutputs, MaxMaxOutputs))
	}
	if c.MaxInputs < 1 {
		errs = append(errs, fmt.Errorf("max inputs %d: want ≥ 1", c.MaxInputs))
	}
	if c.FeeRateFloor < 1 || c.FeeRateCap < c.FeeRateFloor {
		errs = append(errs, fmt.Errorf("fee rate floor %d / cap %d sat/kvB: want 1 ≤ floor ≤ cap", c.FeeRateFloor, c.FeeRateCap))
	}
	if c.Interval < 0 || c.StuckAfter < 0 || c.Confirmations < 0 || c.ConfTarget < 1 {
		errs = append(errs, errors.New("interval, stuck-after, confirmations and conf target must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("payment config: %w", err)
	}
	return nil
}

// KeySource names where the hot signing key (WIF) is read from: a file, or an
// environment variable. The configuration holds only these names.
type KeySource struct {
	File string
	Env  string
}

// LoadKey reads a WIF private key from the file or environment variable
// named by src, through the given functions (the daemon passes os.Getenv and
// os.ReadFile), and checks it is for params' network. The key material is
// never part of a returned error.
func LoadKey(src KeySource, params *chaincfg.Params, getenv func(string) string, readFile func(string) ([]byte, error)) (*btcec.PrivateKey, error) {
	var text, from string
	switch {
	case src.File != "" && src.Env != "":
		return nil, errors.New("load key: set either a key file or a key environment variable, not both")
	case src.File != "":
		b, err := readFile(src.File)
		if err != nil {
			return nil, fmt.Errorf("load key: read key file: %w", err)
		}
		text, from = string(b), "file "+src.File
	case src.Env != "":
		text, from = getenv(src.Env), "environment variable "+src.Env
		if text == "" {
			return nil, fmt.Errorf("load key: environment variable %s is empty", src.Env)
		}
	default:
		return nil, errors.New("load key: no key file or environment variable configured")
	}
	wif, err := btcutil.DecodeWIF(strings.TrimSpace(text))
	if err != nil {
		// Not wrapped: the decoder's message could echo input.
		return nil, fmt.Errorf("load key: %s does not hold a valid WIF key", from)
	}
	if !wif.IsForNet(params) {
		return nil, fmt.Errorf("load key: key in %s is not for network %s", from, params.Name)
	}
	return wif.PrivKey, nil
}
