package blocks

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
)

func newTestSubmitter(path string) *Submitter {
	return &Submitter{log: zap.NewNop(), journal: &journal{path: path, log: zap.NewNop()}}
}

// TestJournalTornLine simulates a crash in mid-write: the torn record is
// skipped, and records appended afterwards are still read.
func TestJournalTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blocks.journal")
	s := newTestSubmitter(path)
	if err := s.journal.append(journalLine{Hash: "aa", Height: 1, Hex: "00", Time: time.Unix(1, 0)}); err != nil {
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
	if err := s.journal.append(journalLine{Hash: "cc", Height: 3, Hex: "00", Time: time.Unix(3, 0)}); err != nil {
		t.Fatal(err)
	}
	if err := s.journal.append(journalLine{Hash: "aa", Height: 1, Done: doneConfirmed}); err != nil {
		t.Fatal(err)
	}
	// A confirmed block leaves the journal only once it is recorded too.
	if err := s.journal.append(journalLine{Hash: "aa", Height: 1, Done: doneRecorded}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Pending()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "cc" {
		t.Fatalf("pending %v, want [cc]", got)
	}
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Pending(); len(got) != 1 || got[0] != "cc" {
		t.Fatalf("after compact: pending %v", got)
	}
	if err := s.journal.append(journalLine{Hash: "cc", Height: 3, Done: doneStale}); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("empty journal not removed: %v", err)
	}
}

// TestJournalStates folds journal lines into each block's state, with its
// finder and finding share's sequence, before and after compaction.
func TestJournalStates(t *testing.T) {
	at := time.Unix(10, 0).UTC()
	tests := []struct {
		name       string
		lines      []journalLine
		want       State
		finder     string
		seq        string
		keptByComp bool // compaction keeps it
	}{
		{name: "journaled", lines: []journalLine{{Hex: "00", Finder: "a.rig"}},
			want: StateJournaled, finder: "a.rig", keptByComp: true},
		{name: "accepted, finding share noted", lines: []journalLine{
			{Hex: "00", Finder: "a.rig"}, {Finder: "a.rig", Seq: "i1:42"}, {Done: doneConfirmed}},
			want: StateAccepted, finder: "a.rig", seq: "i1:42", keptByComp: true},
		{name: "finding share noted after acceptance", lines: []journalLine{
			{Hex: "00"}, {Done: doneConfirmed}, {Seq: "i2:7"}},
			want: StateAccepted, seq: "i2:7", keptByComp: true},
		{name: "recorded", lines: []journalLine{
			{Hex: "00"}, {Done: doneConfirmed}, {Seq: "i1:1"}, {Done: doneRecorded}},
			want: StateRecorded, seq: "i1:1"},
		{name: "stale", lines: []journalLine{{Hex: "00"}, {Done: doneStale}}, want: StateStale},
		{name: "journaled again after stale", lines: []journalLine{{Hex: "00"}, {Done: doneStale}, {Hex: "00"}},
			want: StateJournaled, keptByComp: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestSubmitter(filepath.Join(t.TempDir(), "blocks.journal"))
			for _, l := range tc.lines {
				l.Hash, l.Height, l.Time = "ab", 5, at
				if err := s.journal.append(l); err != nil {
					t.Fatal(err)
				}
			}
			check := func(when string, wantListed bool) {
				t.Helper()
				blocks, err := s.journal.read()
				if err != nil {
					t.Fatal(err)
				}
				if !wantListed {
					if len(blocks) != 0 {
						t.Fatalf("%s: %d blocks listed, want none", when, len(blocks))
					}
					return
				}
				if len(blocks) != 1 {
					t.Fatalf("%s: %d blocks, want 1", when, len(blocks))
				}
				b := blocks[0]
				if b.state() != tc.want || b.finder != tc.finder || b.seq != tc.seq || b.line.Height != 5 {
					t.Fatalf("%s: state %v finder %q seq %q height %d, want %v %q %q 5",
						when, b.state(), b.finder, b.seq, b.line.Height, tc.want, tc.finder, tc.seq)
				}
			}
			check("before compaction", true)
			states, err := s.States()
			if err != nil || states["ab"] != tc.want {
				t.Fatalf("States() = %v, %v", states, err)
			}
			if err := s.Compact(); err != nil {
				t.Fatal(err)
			}
			check("after compaction", tc.keptByComp)
		})
	}
}
