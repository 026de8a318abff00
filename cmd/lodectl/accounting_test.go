package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/redis/go-redis/v9"

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
		entry(1, addrA+".rig1", 3), entry(2, addrA+".rig2", 1), entry(3, addrB, 4),
	}}
	if err := s.ApplyBatch(ctx, b, "0"); err != nil {
		t.Fatal(err)
	}
	credited = chainhash.DoubleHashH([]byte("credited"))
	pending = chainhash.DoubleHashH([]byte("pending"))
	found := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for i, h := range []chainhash.Hash{credited, pending} {
		fb := payouts.FoundBlock{Hash: h, Height: int64(100 + i), Finder: addrA + ".rig1", CoinbaseValue: 312_500_000,
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
	return addrA, credited, pending
}

// Two regtest addresses; addrA sorts before addrB (TestBalances lists equal
// balances by address).
var addrA, addrB = regtestAddress(2), regtestAddress(1)

func regtestAddress(seed byte) string {
	var prog [20]byte
	prog[0] = seed
	a, err := btcutil.NewAddressWitnessPubKeyHash(prog[:], &chaincfg.RegressionNetParams)
	if err != nil {
		panic(err)
	}
	return a.EncodeAddress()
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
		addrA + " 153125000 1.53125000",
		addrB + " 153125000 1.53125000",
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
		{"101", pending.String(), "pending", "0", "-", "-", "2", addrA + ".rig1", "2026-11-25T12:00:00Z"},
		{"100", credited.String(), "credited", "100", "3.12500000", "0.06250000", "2", addrA + ".rig1", "2026-11-25T12:00:00Z"},
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
		"address:   " + addrA + "\n",
		"balance:   153125000 sat (1.53125000 BTC)\n",
		"workers (2):",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// 4 difficulty in the last minute, the first shares of the address: over
	// the minute they cover (not 10 minutes, issue 15), 4×2^32/60 s = 286.33
	// MH/s, a little less should the minute turn between the share and the
	// read; the same for 1 h and 24 h.
	if m := regexp.MustCompile(`hashrate:  (28[0-6]\.\d\d) MH/s \(10m\)  (28[0-6]\.\d\d) MH/s \(1h\)  (28[0-6]\.\d\d) MH/s \(24h\)`).FindString(out); m == "" {
		t.Errorf("hashrate line not over the covered minute:\n%s", out)
	}
	var rig1, credit bool
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 7 && f[0] == "rig1" && f[2] == "1" && f[3] == "0" && strings.HasPrefix(f[5], "21") && f[6] == "MH/s" {
			rig1 = true
		}
		if len(f) == 5 && f[0] == "100" && f[1] == credited.String() && f[3] == "153125000" {
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

// lodectl miner takes the address in any valid spelling (uppercase bech32
// is the same address) and looks it up under the canonical one; a text that
// is no address is an error (issue 10 item 7).
func TestMinerCanonicalAddress(t *testing.T) {
	addr, _, _ := seedAccounting(t)
	out, errs, code := runCtl(t, append(append([]string{"miner"}, redisFlags(t)...), strings.ToUpper(addr))...)
	if code != 0 || !strings.Contains(out, "address:   "+addr+"\n") || !strings.Contains(out, "workers (2):") {
		t.Fatalf("miner %s: exit %d %s\n%s", strings.ToUpper(addr), code, errs, out)
	}
	if _, errs, code := runCtl(t, append(append([]string{"miner"}, redisFlags(t)...), addr+".")...); code != 1 || !strings.Contains(errs, "not a Bitcoin address") {
		t.Fatalf("miner %s.: exit %d %q, want 1 and an error", addr, code, errs)
	}
}

// Worker names stored before authorize refused them (escape sequences,
// newlines, '|') reach the terminal escaped: no control byte is printed and
// each row stays one line (issue 10 item 6).
func TestMinerEscapesWorkerNames(t *testing.T) {
	addr, _, _ := seedAccounting(t)
	rdb := redis.NewClient(&redis.Options{Addr: testenvRedis(t)})
	defer rdb.Close()
	ctx := context.Background()
	nasty := []string{"rig\x1b[31mred", "x\x1b]0;pwned\x07", "two\nlines", "tab\there", "pipe|name", "rtl\u202eeman"}
	now := time.Now().UnixMilli()
	for i, n := range nasty {
		if err := rdb.HSet(ctx, "ctl:"+redisstore.StatsShardTag(addr)+":miner:"+addr, n, now).Err(); err != nil {
			t.Fatal(err)
		}
		entry := strconv.FormatInt(now+int64(i), 10) + "|" + n + "|1|2"
		if err := rdb.LPush(ctx, "ctl:"+redisstore.StatsShardTag(addr)+":recent:"+addr, entry).Err(); err != nil {
			t.Fatal(err)
		}
	}
	out, errs, code := runCtl(t, append(append([]string{"miner"}, redisFlags(t)...), addr)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, c := range []string{"\x1b", "\x07", "\t", "\u202e", "\r"} {
		if strings.Contains(out, c) {
			t.Fatalf("output holds control character %q:\n%q", c, out)
		}
	}
	for _, n := range nasty {
		if n == "pipe|name" {
			if strings.Count(out, n) != 2 { // as is: printable; once per table
				t.Errorf("%q not listed as a worker and a recent share:\n%s", n, out)
			}
			continue
		}
		if q := strconv.Quote(n); strings.Count(out, q) != 2 {
			t.Errorf("%q not shown quoted (%s) in both tables:\n%s", n, q, out)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "lines") {
			t.Errorf("a newline in a name split a row: %q", l)
		}
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

// lodectl miner showed no credits once the latest blocks were immature (on
// a busy pool, always: credits arrive 100 blocks after a block is found).
// It now looks through the credited blocks, however many newer ones wait.
func TestMinerCreditsBehindImmatureBlocks(t *testing.T) {
	addr, credited, _ := seedAccounting(t)
	ctx := context.Background()
	s, err := redisstore.Connect(ctx, redisstore.ConnectConfig{Addr: testenvRedis(t), Prefix: "ctl"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Client().Close()
	for i := 0; i < 2*minerRecentBlocks; i++ {
		h := chainhash.DoubleHashH([]byte("newer " + strconv.Itoa(i)))
		fb := payouts.FoundBlock{Hash: h, Height: int64(200 + i), Finder: addrB, CoinbaseValue: 312_500_000,
			CoinbaseOutpoint: wire.OutPoint{Hash: h}, Time: time.Now()}
		if _, err := s.SnapshotBlock(ctx, fb, nil); err != nil {
			t.Fatal(err)
		}
	}
	out, errs, code := runCtl(t, append(append([]string{"miner"}, redisFlags(t)...), addr)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	_, credits, _ := strings.Cut(out, "credits from recent blocks")
	if !strings.Contains(credits, credited.String()) || !strings.Contains(credits, "153125000") {
		t.Fatalf("credit of block %s missing:\n%s", credited, out)
	}
}
