package load

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/internal/testenv"
)

func testJob(t *testing.T) *blocktemplate.Job {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "testdata/gbt/testnet3-2442185-public-pool.json"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := blocktemplate.ParseTemplate(raw)
	if err != nil {
		t.Fatal(err)
	}
	b, err := blocktemplate.NewBuilder(blocktemplate.Config{Network: &chaincfg.TestNet3Params, PayoutAddress: TestnetAddress(1), PoolTag: "/t/"})
	if err != nil {
		t.Fatal(err)
	}
	j, err := b.Job(tmpl, true)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// TestWorkerSharesMeetTarget mines shares from a notify the way a pool
// sends it and checks each against the header the job itself builds, so the
// worker's byte orders (prevhash words, merkle branch, midstate) agree with
// blocktemplate's.
func TestWorkerSharesMeetTarget(t *testing.T) {
	bj := testJob(t)
	params, err := json.Marshal(bj.Notify().Params())
	if err != nil {
		t.Fatal(err)
	}
	j, err := ParseNotify(params)
	if err != nil {
		t.Fatal(err)
	}
	if !j.Clean || j.ID != bj.ID || j.NBits != bj.Bits {
		t.Fatalf("parsed notify %+v", j)
	}
	en1 := []byte{1, 2, 3, 4}
	for _, tc := range []struct {
		name string
		mask uint32
		diff float64
	}{
		{"plain", 0, 1e-8},
		{"version rolling", 0x1fffe000, 1e-8},
		{"higher difficulty", 0, 1e-6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWorker(en1, bj.Extranonce2Size, tc.mask, 7)
			w.SetJob(j, tc.diff)
			target := blocktemplate.DifficultyToTarget(tc.diff)
			seen := map[string]bool{}
			for found := 0; found < 20; {
				s, err := w.Mine(1 << 16)
				if err != nil {
					t.Fatal(err)
				}
				if s == nil {
					continue
				}
				found++
				version := bj.Version
				if s.HasVersion {
					if s.VersionBits&^tc.mask != 0 || s.VersionBits == 0 {
						t.Fatalf("version bits %08x outside mask %08x", s.VersionBits, tc.mask)
					}
					version = bj.Version&^tc.mask | s.VersionBits
				}
				hdr, err := bj.Header(en1, s.Extranonce2, version, s.NTime, s.Nonce)
				if err != nil {
					t.Fatal(err)
				}
				h1 := sha256.Sum256(hdr[:])
				h := chainhash.Hash(sha256.Sum256(h1[:]))
				if blocktemplate.HashToBig(&h).Cmp(target) > 0 {
					t.Fatalf("share %+v does not meet difficulty %g", s, tc.diff)
				}
				key := string(s.Extranonce2) + string(rune(s.Nonce))
				if seen[key] {
					t.Fatalf("duplicate share %x/%d", s.Extranonce2, s.Nonce)
				}
				seen[key] = true
			}
		})
	}
}

func TestWorkerNoJob(t *testing.T) {
	w := NewWorker([]byte{1}, 4, 0, 0)
	if _, err := w.Mine(10); err != ErrNoJob {
		t.Fatalf("Mine without job: %v", err)
	}
}

func TestAppendSubmit(t *testing.T) {
	s := Share{Job: &Job{ID: `a"1`}, Extranonce2: []byte{0, 0xab}, NTime: 0x65000001, Nonce: 0xdeadbeef, VersionBits: 0x2000, HasVersion: true}
	line := s.AppendSubmit(nil, 123, "tb1q.w1")
	if !bytes.HasSuffix(line, []byte("\n")) {
		t.Fatal("no newline")
	}
	var req struct {
		ID     int64    `json:"id"`
		Method string   `json:"method"`
		Params []string `json:"params"`
	}
	if err := json.Unmarshal(line, &req); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	want := []string{"tb1q.w1", `a"1`, "00ab", "65000001", "deadbeef", "00002000"}
	if req.ID != 123 || req.Method != "mining.submit" || len(req.Params) != len(want) {
		t.Fatalf("decoded %+v", req)
	}
	for i := range want {
		if req.Params[i] != want[i] {
			t.Errorf("param %d = %q, want %q", i, req.Params[i], want[i])
		}
	}
}

func TestTargetFor(t *testing.T) {
	for _, d := range []float64{1e-8, 1, 65536.5, 1e12} {
		got := TargetFor(d)
		want := blocktemplate.DifficultyToTarget(d)
		if new(big.Int).SetBytes(got[:]).Cmp(want) != 0 {
			t.Errorf("TargetFor(%g) = %x, want %x", d, got, want)
		}
	}
}

func TestParseNotifyErrors(t *testing.T) {
	for _, p := range []string{`{}`, `[]`, `["1","00","","",[],"20000000","1d00ffff","65000000",true]`,
		`["1","` + string(bytes.Repeat([]byte("0"), 64)) + `","zz","",[],"20000000","1d00ffff","65000000",true]`} {
		if _, err := ParseNotify(json.RawMessage(p)); err == nil {
			t.Errorf("ParseNotify(%s) accepted", p)
		}
	}
}

func FuzzParseNotify(f *testing.F) {
	f.Add([]byte(`["1","` + string(bytes.Repeat([]byte("0"), 64)) + `","01","02",["` + string(bytes.Repeat([]byte("a"), 64)) + `"],"20000000","1d00ffff","65000000",true]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := ParseNotify(b)
		if err == nil && len(j.Branch)%32 != 0 {
			t.Fatalf("branch of %d bytes", len(j.Branch))
		}
	})
}
