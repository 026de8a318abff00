package shares

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
)

// TestJournalTornLine simulates a crash in mid-write: the torn record is
// skipped, and records appended afterwards are still read.
func TestJournalTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blocks.journal")
	s := &BlockSubmitter{cfg: SubmitterConfig{JournalPath: path}}
	s.log = nopLogger()
	if err := s.append(journalEntry{Hash: "aa", Height: 1, Hex: "00", Time: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"hash":"bb","height":2,"hex":"0`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := s.append(journalEntry{Hash: "cc", Height: 3, Hex: "00", Time: time.Unix(3, 0)}); err != nil {
		t.Fatal(err)
	}
	if err := s.append(journalEntry{Hash: "aa", Height: 1, Done: "confirmed"}); err != nil {
		t.Fatal(err)
	}
	// A confirmed block leaves the journal only once it is recorded too.
	if err := s.append(journalEntry{Hash: "aa", Height: 1, Done: doneRecorded}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Pending()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "cc" {
		t.Fatalf("pending %v, want [cc]", got)
	}
	s.mu.Lock()
	err = s.compact()
	s.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Pending(); len(got) != 1 || got[0] != "cc" {
		t.Fatalf("after compact: pending %v", got)
	}
	if err := s.append(journalEntry{Hash: "cc", Height: 3, Done: "stale"}); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	err = s.compact()
	s.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("empty journal not removed: %v", err)
	}
}

func nopLogger() *zap.Logger { return zap.NewNop() }
