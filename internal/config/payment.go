package config

import (
	"github.com/lode-pool/lode/payouts/payment"
)

// PaymentConfig is the payout processor's configuration from the file, the
// one both the daemon's payouts role and `lodectl payouts` use, so a dry run
// computes what the daemon would pay. With hot signing the key is loaded
// through getenv and readFile; cold (or forceCold, for dry runs and
// broadcasts of signed PSBTs) needs no key.
func (c Config) PaymentConfig(forceCold bool, getenv func(string) string, readFile func(string) ([]byte, error)) (payment.Config, error) {
	pc := payment.Config{
		Params: c.ChainParams(), PoolAddress: c.Pool.PayoutAddress, Mode: payment.Mode(c.Payouts.Signing),
		Interval: c.Payouts.Interval, Threshold: c.Payouts.Threshold, MaxOutputs: c.Payouts.MaxOutputs,
		ConfTarget:   c.Payouts.ConfTarget,
		FeeRateFloor: c.Payouts.FeeRateFloor * 1000, FeeRateCap: c.Payouts.FeeRateCap * 1000,
		FeePayer: payment.FeePayer(c.Payouts.FeePayer), StuckAfter: c.Payouts.UnconfirmedAlert,
	}
	if forceCold {
		pc.Mode = payment.ModeCold
	}
	if pc.Mode == payment.ModeHot {
		key, err := payment.LoadKey(payment.KeySource{Env: c.Payouts.Key.Env, File: c.Payouts.Key.File},
			pc.Params, getenv, readFile)
		if err != nil {
			return payment.Config{}, &Error{Key: "payouts.key", Problem: err.Error()}
		}
		pc.Key = key
	}
	return pc, nil
}
