package ledger

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/lode-pool/lode/shares"
)

func testBatch(seq uint64, n int) *Batch {
	b := &Batch{Instance: "sp", Seq: seq}
	for i := range n {
		b.Shares = append(b.Shares, Entry{Seq: seq - uint64(n-i), Units: "100000000", Share: shares.Share{
			Worker: "addr.w", Address: "addr", WorkerName: "w", Difficulty: 1, HashDifficulty: 3.5,
			JobHeight: 800000, Time: time.Unix(1700000000, int64(i)).UTC(),
		}})
	}
	b.Rejects = []Reject{{Worker: "addr.w", Address: "addr", Reason: ReasonStale, Count: 2, Time: time.Unix(1700000001, 0).UTC()}}
	return b
}

func readAll(t *testing.T, s *spool) []*Batch {
	t.Helper()
	var out []*Batch
	var off int64
	for {
		b, next, err := s.read(off)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
		off = next
	}
}

func TestSpoolRoundTripAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "shares.spool")
	s, err := openSpool(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s.pending() {
		t.Fatal("new spool is pending")
	}
	want := []*Batch{testBatch(10, 3), testBatch(20, 1), testBatch(30, 0)}
	for _, b := range want {
		if err := s.append(b); err != nil {
			t.Fatal(err)
		}
	}
	if got := readAll(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("read back %+v, want %+v", got, want)
	}
	s.close()

	s, err = openSpool(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s.records != 3 || s.lastSeq != 30 || !s.pending() {
		t.Fatalf("reopened spool: %d records, last seq %d", s.records, s.lastSeq)
	}
	if got := readAll(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("reopened spool read %+v", got)
	}
	if err := s.clear(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("spool file still there after clear: %v", err)
	}
	s.close()
}

// TestSpoolTornTail cuts the file inside the last record (a crash during
// an append that was never acknowledged) and flips a byte in another copy:
// opening keeps the intact records and truncates the rest.
func TestSpoolTornTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		harm func(data []byte, lastStart int) []byte
	}{
		{"cut in payload", func(d []byte, last int) []byte { return d[:len(d)-5] }},
		{"cut in header", func(d []byte, last int) []byte { return d[:last+3] }},
		{"corrupt byte", func(d []byte, last int) []byte { d[len(d)-2] ^= 0xff; return d }},
		{"garbage length", func(d []byte, last int) []byte { copy(d[last:], []byte{0xff, 0xff, 0xff, 0xff}); return d }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s")
			s, err := openSpool(path, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range []*Batch{testBatch(10, 2), testBatch(20, 2)} {
				if err := s.append(b); err != nil {
					t.Fatal(err)
				}
			}
			_, lastStart, _ := s.read(0)
			s.close()
			data, _ := os.ReadFile(path)
			if err := os.WriteFile(path, tc.harm(data, int(lastStart)), 0o644); err != nil {
				t.Fatal(err)
			}
			s, err = openSpool(path, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			got := readAll(t, s)
			if len(got) != 1 || got[0].Seq != 10 {
				t.Fatalf("after torn tail read %d batches", len(got))
			}
			if st, _ := os.Stat(path); st.Size() != lastStart {
				t.Fatalf("file size %d, want truncated to %d", st.Size(), lastStart)
			}
			// Appending continues after the intact records.
			if err := s.append(testBatch(30, 1)); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, s); len(got) != 2 || got[1].Seq != 30 {
				t.Fatalf("after append read %d batches", len(got))
			}
		})
	}
}

func TestSpoolLimitAndLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	s, err := openSpool(path, 600)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if err := s.append(testBatch(10, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.append(testBatch(20, 3)); err == nil {
		t.Fatal("append beyond MaxSpoolBytes succeeded")
	}
	if got := readAll(t, s); len(got) != 1 {
		t.Fatalf("spool holds %d batches after a refused append, want 1", len(got))
	}
	if _, err := openSpool(path, 0); err == nil {
		t.Fatal("second open of a locked spool succeeded")
	}
}

// FuzzSpoolOpen feeds arbitrary file contents to openSpool: it must not
// panic, must keep only whole, checksummed records, and must leave a file
// that later appends extend cleanly.
func FuzzSpoolOpen(f *testing.F) {
	dir := f.TempDir()
	seed := filepath.Join(dir, "seed")
	s, err := openSpool(seed, 0)
	if err != nil {
		f.Fatal(err)
	}
	for _, b := range []*Batch{testBatch(10, 2), testBatch(20, 1)} {
		if err := s.append(b); err != nil {
			f.Fatal(err)
		}
	}
	s.close()
	data, _ := os.ReadFile(seed)
	f.Add(data)
	f.Add(data[:len(data)-3])
	f.Add([]byte{0, 0, 0, 2, 0, 0, 0, 0, '{', '}'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "s")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := openSpool(path, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer s.close()
		got := readAll(t, s)
		if len(got) != s.records {
			t.Fatalf("open counted %d records, read %d", s.records, len(got))
		}
		if err := s.append(testBatch(99, 1)); err != nil {
			t.Fatal(err)
		}
		if again := readAll(t, s); len(again) != len(got)+1 || again[len(again)-1].Seq != 99 {
			t.Fatalf("after append read %d batches, want %d", len(again), len(got)+1)
		}
	})
}
