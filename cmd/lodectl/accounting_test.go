package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// seedAccounting records shares for two addresses, two found blocks (one
// credited, one pending) through the real store.
func seedAccounting(t *testing.T) (addr string, credited, pending chainhash.Hash) {
	t.Helper()
	srv := testenv.StartRedis(t)
	ctx := context.Background()
	s, err := redisstore.Connect(ctx, redisstore.ConnectConfig{Addr: srv.Addr, Prefix: "ctl"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Client().Close()
	now := time.Now()
	entry := func(seq uint64, worker string, diff float64) ledger.Entry {
		u, _ := ledger.DiffUnits(diff)
		a, w, _ := strings.Cut(worker, ".")
		return ledger.Entry{Seq: seq, Units: u, Share: shares.Share{Worker: worker, Address: a, WorkerName: w,
			Difficulty: diff, HashDifficulty: diff * 3, Time: now}}
	}
	b := &ledger.Batch{Instance: "ctl", Seq: 10, Shares: []ledger.Entry{
		entry(1, "bcrt1qa.rig1", 3), entry(2, "bcrt1qa.rig2", 1), entry(3, "bcrt1qb", 4),
	}}
	if err := s.ApplyBatch(ctx, b, "0"); err != nil {
		t.Fatal(err)
	}
	credited = chainhash.DoubleHashH([]byte("credited"))
	pending = chainhash.DoubleHashH([]byte("pending"))
	found := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for i, h := range []chainhash.Hash{credited, pending} {
		fb := payouts.FoundBlock{Hash: h, Height: int64(100 + i), Finder: "bcrt1qa.rig1", CoinbaseValue: 312_500_000,
			CoinbaseOutpoint: wire.OutPoint{Hash: h, Index: 0}, Time: found}
		if _, err := s.SnapshotBlock(ctx, fb, nil); err != nil {
			t.Fatal(err)
		}
	}
	contrib, _ := s.Contributions(ctx, credited)
	alloc, err := payouts.Split(312_500_000, 200, contrib)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := s.CreditBlock(ctx, payouts.BlockCredit{Hash: credited, Allocation: alloc, Confirmations: 100, Time: now})
	if err != nil || !ok {
		t.Fatalf("credit: %v %v", ok, err)
	}
	t.Setenv("LODECTL_TEST_REDIS", srv.Addr)
	return "bcrt1qa", credited, pending
}

func runCtl(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

func redisFlags(t *testing.T) []string {
	return []string{"-redis", testenvRedis(t), "-prefix", "ctl"}
}

func testenvRedis(t *testing.T) string {
	t.Helper()
	return os.Getenv("LODECTL_TEST_REDIS")
}

func TestBalances(t *testing.T) {
	seedAccounting(t)
	out, errs, code := runCtl(t, append([]string{"balances"}, redisFlags(t)...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	// 312500000 sat, 2% fee = 6250000; 306250000 split 4:4 between a and b.
	want := []string{
		"ADDRESS SATOSHIS BTC",
		"bcrt1qa 153125000 1.53125000",
		"bcrt1qb 153125000 1.53125000",
		"(pool fee account) 6250000 0.06250000",
		"(total, 2 addresses) 312500000 3.12500000",
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("output:\n%s", out)
	}
	for i, l := range lines {
		if got := strings.Join(strings.Fields(l), " "); got != want[i] {
			t.Errorf("line %d = %q, want %q", i, got, want[i])
		}
	}
}

func TestBlocks(t *testing.T) {
	_, credited, pending := seedAccounting(t)
	out, errs, code := runCtl(t, append([]string{"blocks"}, redisFlags(t)...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("output:\n%s", out)
	}
	for i, want := range [][]string{
		{"101", pending.String(), "pending", "0", "-", "-", "2", "bcrt1qa.rig1", "2026-11-25T12:00:00Z"},
		{"100", credited.String(), "credited", "100", "3.12500000", "0.06250000", "2", "bcrt1qa.rig1", "2026-11-25T12:00:00Z"},
	} {
		if got := strings.Fields(lines[i+1]); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("line %d = %q, want %q", i+1, got, want)
		}
	}
	out, _, _ = runCtl(t, append([]string{"blocks", "-n", "1"}, redisFlags(t)...)...)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.Contains(lines[1], pending.String()) {
		t.Errorf("blocks -n 1:\n%s", out)
	}
}

func TestMiner(t *testing.T) {
	addr, credited, _ := seedAccounting(t)
	out, errs, code := runCtl(t, append(append([]string{"miner"}, redisFlags(t)...), addr)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"address:   bcrt1qa\n",
		"balance:   153125000 sat (1.53125000 BTC)\n",
		"workers (2):",
		// 4 difficulty in the current minute: 4×2^32/600 s = 28.63 MH/s.
		"hashrate:  28.63 MH/s (10m)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	var rig1, credit bool
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 7 && f[0] == "rig1" && f[2] == "1" && f[3] == "0" && f[5]+" "+f[6] == "3.58 MH/s" {
			rig1 = true
		}
		if len(f) == 4 && f[0] == "100" && f[1] == credited.String() && f[3] == "153125000" {
			credit = true
		}
	}
	if !rig1 || !credit {
		t.Errorf("worker row %v, credit row %v in:\n%s", rig1, credit, out)
	}
	if strings.Count(out, "bcrt1q") != 1 || !strings.Contains(out, "rig2") {
		t.Errorf("unexpected rows:\n%s", out)
	}
}

func TestAccountingUsage(t *testing.T) {
	if _, _, code := runCtl(t, "miner"); code != 2 {
		t.Errorf("miner without address: exit %d, want 2", code)
	}
	if _, errs, code := runCtl(t, "balances", "-redis", "127.0.0.1:1", "-timeout", "2s"); code != 1 || !strings.Contains(errs, "lodectl balances:") {
		t.Errorf("unreachable redis: exit %d, %q", code, errs)
	}
}
