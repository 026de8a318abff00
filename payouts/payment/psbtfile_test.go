package payment

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWritePSBTFiles(t *testing.T) {
	dir := t.TempDir()
	payouts := []*Payout{
		{ID: 7, State: StateUnsigned, PSBT: "cHNidP8BAA=="},
		{ID: 8, State: StateBroadcast, PSBT: "cHNidP8BAB=="}, // signed and out: nothing to sign
		{ID: 9, State: StatePending},                         // hot mode: no PSBT
		{ID: 0, State: StateUnsigned, PSBT: "cHNidP8BAC=="},  // dry run: not committed
		nil,
	}
	paths, err := WritePSBTFiles(dir, payouts)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "payout-7.psbt")
	if len(paths) != 1 || paths[0] != want {
		t.Fatalf("paths %v, want [%s]", paths, want)
	}
	b, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "cHNidP8BAA==\n" {
		t.Fatalf("file holds %q", b)
	}
	st, err := os.Stat(want)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("dir holds %d entries (temporary files left?), want 1", len(entries))
	}

	// A directory that does not exist: an error naming the payout, no panic.
	if _, err := WritePSBTFiles(filepath.Join(dir, "missing"), payouts[:1]); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
}
