package shares_test

import (
	"testing"

	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// MinCreditDifficulty is exactly one unit of the ledger, the smallest
// credit it records.
func TestMinCreditDifficultyIsOneLedgerUnit(t *testing.T) {
	if u, err := ledger.DiffUnits(shares.MinCreditDifficulty); err != nil || u != "1" {
		t.Fatalf("DiffUnits(%v) = %q, %v; want one unit", shares.MinCreditDifficulty, u, err)
	}
}
