package payouts

import (
	"strings"
	"testing"

	"github.com/lode-pool/lode/internal/testenv"
)

// lode.yaml's unlocker: section is UnlockerConfig: its defaults are valid
// and every bad key is named at once.
func TestUnlockerValidateSettings(t *testing.T) {
	if err := DefaultUnlockerConfig().ValidateSettings(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	c := DefaultUnlockerConfig()
	c.Maturity, c.OrphanDepth, c.Interval = 0, -1, 0
	err := c.ValidateSettings()
	keys := testenv.ConfigKeys(t, err)
	if strings.Join(keys, " ") != "maturity orphan_depth interval" || !strings.Contains(err.Error(), "unlocker.orphan_depth: must be >= 1") {
		t.Fatalf("keys %q: %v", keys, err)
	}
}
