package main

import (
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/lode-pool/lode/payouts/payment"
)

// TestPSBTWriter: in cold mode the payouts role's AfterRun writes each new
// unsigned payout's PSBT to payouts.psbt_dir and logs the path; a run that
// failed early (nil result) writes nothing; a directory gone since the start
// is logged as an error, not a panic.
func TestPSBTWriter(t *testing.T) {
	dir := t.TempDir()
	core, logs := observer.New(zap.InfoLevel)
	after := psbtWriter(dir, zap.New(core))
	after(nil, os.ErrClosed)
	after(&payment.Result{Payouts: []*payment.Payout{{ID: 3, State: payment.StateUnsigned, PSBT: "cHNidP8BAA=="}}}, nil)
	b, err := os.ReadFile(filepath.Join(dir, "payout-3.psbt"))
	if err != nil || string(b) != "cHNidP8BAA==\n" {
		t.Fatalf("payout-3.psbt: %q, %v", b, err)
	}
	if n := logs.FilterMessage("payout psbt written for the offline signer").Len(); n != 1 {
		t.Fatalf("%d written logs, want 1", n)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	after(&payment.Result{Payouts: []*payment.Payout{{ID: 4, State: payment.StateUnsigned, PSBT: "cHNidP8BAA=="}}}, nil)
	if n := logs.FilterLevelExact(zap.ErrorLevel).Len(); n != 1 {
		t.Fatalf("%d error logs after the directory went, want 1", n)
	}
}
