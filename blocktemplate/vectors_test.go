package blocktemplate

import (
	"encoding/hex"
	"testing"

	"github.com/lode-pool/lode/internal/testvectors"
)

func loadVectors(t testing.TB) *testvectors.File { return testvectors.Load(t) }

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}
