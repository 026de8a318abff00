package payment

import (
	"fmt"

	"github.com/btcsuite/btcd/btcutil"
)

// CheckThreshold reports whether sats may be set as one address's payout
// threshold override: 0 removes the override, anything else must be at least
// MinThreshold (so every output stays far above dust) and at most the 21
// million BTC supply. The admin API, lodectl and the store apply this one
// rule.
func CheckThreshold(sats int64) error {
	if sats < 0 || sats > btcutil.MaxSatoshi {
		return fmt.Errorf("threshold %d sat: want 0 (no override) or %d..%d sat", sats, MinThreshold, int64(btcutil.MaxSatoshi))
	}
	if sats > 0 && sats < MinThreshold {
		return fmt.Errorf("threshold %d sat is below the minimum %d", sats, MinThreshold)
	}
	return nil
}
