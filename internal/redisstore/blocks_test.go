package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/redis/go-redis/v9"

	"github.com/lode-pool/lode/blocks"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/payment"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

func blocksTestStore(t *testing.T) (*Store, *redis.Client) {
	t.Helper()
	srv := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	return New(rdb, Config{Prefix: "t"}), rdb
}

// pushWindow adds window entries (newest first) on top of the window, one
// sealed slice each, the way the share ledger keeps them.
func pushWindow(t *testing.T, s *Store, rdb *redis.Client, window []payouts.WindowShare) {
	t.Helper()
	units := make([]string, len(window))
	for i, w := range window {
		units[i] = w.Units.String()
	}
	pushSlices(t, s, rdb, window, units)
}

// pushSlices is pushWindow with the units as stored (malformed ones too).
func pushSlices(t *testing.T, s *Store, rdb *redis.Client, window []payouts.WindowShare, units []string) {
	t.Helper()
	ctx := context.Background()
	id, oldest := int64(1), ""
	if cur, err := rdb.Get(ctx, s.win.cur).Result(); err == nil {
		p := strings.Split(cur, "|")
		id, _ = strconv.ParseInt(p[0], 10, 64)
		oldest = p[2]
	}
	total := new(big.Int)
	if v, err := rdb.Get(ctx, s.win.total).Result(); err == nil {
		total.SetString(v, 10)
	}
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := len(window) - 1; i >= 0; i-- {
			p.RPush(ctx, s.sliceOrderKey(id), window[i].Address)
			p.HSet(ctx, s.sliceKey(id), window[i].Address, fmt.Sprintf("inst-%d|inst-%d|%s", i, i, units[i]))
			p.LPush(ctx, s.win.slices, fmt.Sprintf("%d|%s|", id, units[i]))
			if oldest == "" {
				oldest = units[i]
			}
			if window[i].Units != nil {
				total.Add(total, window[i].Units)
			}
			id++
		}
		p.Set(ctx, s.win.cur, fmt.Sprintf("%d|0|%s", id, oldest), 0)
		p.Set(ctx, s.win.total, total.String(), 0)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// clearWindow deletes the window's keys.
func clearWindow(t *testing.T, s *Store, rdb *redis.Client) {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, s.prefix+":{acct}:pplns:*").Result()
	if err == nil && len(keys) > 0 {
		err = rdb.Del(ctx, keys...).Err()
	}
	if err != nil {
		t.Fatal(err)
	}
}

func testHash(i int) chainhash.Hash { return chainhash.DoubleHashH([]byte{byte(i), byte(i >> 8)}) }

// TestSnapshotMatchesSumWindow checks the Lua big-number summing against
// payouts.SumWindow on random windows, with units around 10^22 (mainnet
// sized) and limits that cut a share in the middle.
func TestSnapshotMatchesSumWindow(t *testing.T) {
	s, rdb := blocksTestStore(t)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 20; round++ {
		clearWindow(t, s, rdb)
		n := r.IntN(1200) // slices of one entry each, read a chunk at a time
		window := make([]payouts.WindowShare, n)
		total := new(big.Int)
		for i := range window {
			units := randUnits(r, 1+r.IntN(23))
			window[i] = payouts.WindowShare{Address: fmt.Sprintf("addr%d", r.IntN(7)), Units: units}
			total.Add(total, units)
		}
		pushWindow(t, s, rdb, window)
		var limit *big.Int
		switch round % 3 {
		case 1: // somewhere inside the window
			limit = new(big.Int).Mul(total, big.NewInt(int64(r.IntN(1000))))
			limit.Quo(limit, big.NewInt(1000))
		case 2: // beyond it
			limit = new(big.Int).Mul(total, big.NewInt(2))
		}
		if limit != nil && limit.Sign() == 0 {
			limit = nil
		}
		want, wantTotal, err := payouts.SumWindow(window, limit)
		if err != nil {
			t.Fatal(err)
		}
		fb := payouts.FoundBlock{Hash: testHash(round), Height: int64(round + 1)}
		created, err := s.SnapshotBlock(ctx, fb, limit)
		if err != nil || !created {
			t.Fatalf("round %d: SnapshotBlock = %v, %v", round, created, err)
		}
		got, err := s.Contributions(ctx, fb.Hash)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d (%d entries, limit %v): snapshot\n%v\nwant\n%v", round, n, limit, got, want)
		}
		blk, err := s.Block(ctx, fb.Hash)
		if err != nil {
			t.Fatal(err)
		}
		if blk.WindowUnits.Cmp(wantTotal) != 0 || blk.Contributors != int64(len(want)) {
			t.Fatalf("round %d: record units %v contributors %d, want %v %d", round, blk.WindowUnits, blk.Contributors, wantTotal, len(want))
		}
	}
}

// randUnits returns a random positive number of up to digits decimal digits.
func randUnits(r *rand.Rand, digits int) *big.Int {
	b := make([]byte, digits)
	for i := range b {
		b[i] = byte('0' + r.IntN(10))
	}
	v, _ := new(big.Int).SetString(string(b), 10)
	return v.Add(v, big.NewInt(1))
}

func TestSnapshotRecordAndIdempotence(t *testing.T) {
	s, rdb := blocksTestStore(t)
	ctx := context.Background()
	pushWindow(t, s, rdb, []payouts.WindowShare{
		{Address: "A", Units: big.NewInt(300)}, {Address: "B", Units: big.NewInt(200)}, {Address: "A", Units: big.NewInt(100)},
	})
	if err := rdb.HSet(ctx, s.roundKey(), "shares", 3, "units", 600).Err(); err != nil {
		t.Fatal(err)
	}
	fb := payouts.FoundBlock{
		Hash: testHash(1), Height: 7, Finder: "A.rig1", CoinbaseValue: 5_000_012_345,
		CoinbaseOutpoint:  wire.OutPoint{Hash: testHash(2), Index: 0},
		NetworkDifficulty: 0.5, Time: time.UnixMilli(1_700_000_000_123),
	}
	created, err := s.SnapshotBlock(ctx, fb, big.NewInt(450))
	if err != nil || !created {
		t.Fatalf("SnapshotBlock = %v, %v", created, err)
	}
	blk, err := s.Block(ctx, fb.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(blk.FoundBlock, fb) {
		t.Errorf("found block = %+v\nwant %+v", blk.FoundBlock, fb)
	}
	// Newest first: A 300, then B 200 crosses the limit of 450 and counts
	// 150; the oldest share (A 100) is outside the window.
	if blk.Status != payouts.StatusPending || blk.WindowUnits.Int64() != 450 || blk.WindowLimit.Int64() != 450 ||
		blk.WindowShares != 2 || blk.Contributors != 2 {
		t.Errorf("record = %+v", blk)
	}
	contrib, _ := s.Contributions(ctx, fb.Hash)
	want := []payouts.Contribution{{Address: "A", Units: big.NewInt(300)}, {Address: "B", Units: big.NewInt(150)}}
	if !reflect.DeepEqual(contrib, want) {
		t.Errorf("contributions = %v, want %v", contrib, want)
	}
	// The round was closed: totals moved to the block.
	if n, _ := rdb.Exists(ctx, s.roundKey()).Result(); n != 0 {
		t.Error("round totals not reset")
	}
	if v, _ := rdb.HGet(ctx, s.blockRoundKey(fb.Hash.String()), "shares").Result(); v != "3" {
		t.Errorf("archived round shares = %q", v)
	}
	// Same block again, with a changed window: nothing changes.
	pushWindow(t, s, rdb, []payouts.WindowShare{{Address: "C", Units: big.NewInt(1000)}})
	created, err = s.SnapshotBlock(ctx, fb, nil)
	if err != nil || created {
		t.Fatalf("second SnapshotBlock = %v, %v", created, err)
	}
	contrib, _ = s.Contributions(ctx, fb.Hash)
	if !reflect.DeepEqual(contrib, want) {
		t.Errorf("contributions after repeat = %v", contrib)
	}
	list, err := s.UnconfirmedBlocks(ctx)
	if err != nil || len(list) != 1 || list[0].Hash != fb.Hash {
		t.Errorf("UnconfirmedBlocks = %v, %v", list, err)
	}
}

func TestSnapshotRejectsMalformedWindow(t *testing.T) {
	s, rdb := blocksTestStore(t)
	ctx := context.Background()
	one := []payouts.WindowShare{{Address: "A"}}
	pushSlices(t, s, rdb, one, []string{"12x"})
	_, err := s.SnapshotBlock(ctx, payouts.FoundBlock{Hash: testHash(1), Height: 1}, nil)
	if err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("err = %v", err)
	}
	if _, err := s.Block(ctx, testHash(1)); !errors.Is(err, payouts.ErrBlockNotFound) {
		t.Fatalf("a failed snapshot left a record: %v", err)
	}
	// Beyond the exact range (~9e27 units): refused, not rounded.
	clearWindow(t, s, rdb)
	pushSlices(t, s, rdb, one, []string{"1" + strings.Repeat("0", 27)})
	if _, err := s.SnapshotBlock(ctx, payouts.FoundBlock{Hash: testHash(1), Height: 1}, nil); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("err = %v", err)
	}
	clearWindow(t, s, rdb)
	for range 11 { // 11 × ~1e27
		pushSlices(t, s, rdb, one, []string{strings.Repeat("9", 27)})
	}
	if _, err := s.SnapshotBlock(ctx, payouts.FoundBlock{Hash: testHash(1), Height: 1}, nil); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("err = %v", err)
	}
}

func TestBlockTransitions(t *testing.T) {
	s, rdb := blocksTestStore(t)
	ctx := context.Background()
	now := time.UnixMilli(1_700_000_000_000)
	pushWindow(t, s, rdb, []payouts.WindowShare{{Address: "A", Units: big.NewInt(3)}, {Address: "B", Units: big.NewInt(1)}})
	h1, h2 := testHash(1), testHash(2)
	for i, h := range []chainhash.Hash{h1, h2} {
		if _, err := s.SnapshotBlock(ctx, payouts.FoundBlock{Hash: h, Height: int64(10 + i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := s.MarkImmature(ctx, h1, 5, now); err != nil || st != payouts.StatusPending {
		t.Fatalf("MarkImmature = %v, %v", st, err)
	}
	credit := payouts.BlockCredit{
		Hash: h1, Confirmations: 100, Time: now,
		Allocation: payouts.Allocation{Reward: 1000, Fee: 10, Credits: []payouts.Credit{{Address: "A", Amount: 743}, {Address: "B", Amount: 247}}},
		UTXOs:      []payment.UTXO{{OutPoint: wire.OutPoint{Hash: testHash(9), Index: 0}, Value: 1000}},
	}
	// Concurrent credits: exactly one wins; the others are refused by the
	// state machine (credited → credited), changing nothing.
	var wg sync.WaitGroup
	wins := make(chan bool, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.CreditBlock(ctx, credit)
			if ok != (err == nil) || err != nil && !isTransition(err, blocks.StateCredited, blocks.StateCredited) {
				t.Errorf("CreditBlock = %v, %v", ok, err)
			}
			wins <- ok
		}()
	}
	wg.Wait()
	close(wins)
	n := 0
	for w := range wins {
		if w {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d credits succeeded, want 1", n)
	}
	bal, _ := s.Balances(ctx)
	if !reflect.DeepEqual(bal, map[string]int64{"A": 743, "B": 247}) {
		t.Errorf("balances = %v", bal)
	}
	if fee, _ := s.FeeBalance(ctx); fee != 10 {
		t.Errorf("fee balance = %d", fee)
	}
	utxos, _ := s.UTXOs(ctx)
	if !reflect.DeepEqual(utxos, credit.UTXOs) {
		t.Errorf("utxos = %v", utxos)
	}
	bc, _ := s.BlockCredits(ctx, h1)
	if !reflect.DeepEqual(bc, map[string]int64{"A": 743, "B": 247}) {
		t.Errorf("block credits = %v", bc)
	}
	blk, _ := s.Block(ctx, h1)
	if blk.Status != payouts.StatusCredited || blk.Reward != 1000 || blk.Fee != 10 || blk.Confirmations != 100 {
		t.Errorf("credited record = %+v", blk)
	}
	// A credited block is never orphaned or moved back.
	if ok, err := s.OrphanBlock(ctx, h1, now); ok || !isTransition(err, blocks.StateCredited, blocks.StateOrphaned) {
		t.Errorf("OrphanBlock(credited) = %v, %v", ok, err)
	}
	if st, err := s.MarkImmature(ctx, h1, 3, now); st != payouts.StatusCredited || !isTransition(err, blocks.StateCredited, blocks.StateImmature) {
		t.Errorf("MarkImmature(credited) = %v, %v", st, err)
	}
	if blk, _ := s.Block(ctx, h1); blk.Status != payouts.StatusCredited {
		t.Errorf("status changed to %v", blk.Status)
	}
	// Orphan the second block: no credit possible afterwards.
	if ok, err := s.OrphanBlock(ctx, h2, now); err != nil || !ok {
		t.Fatalf("OrphanBlock = %v, %v", ok, err)
	}
	if ok, err := s.OrphanBlock(ctx, h2, now); ok || !isTransition(err, blocks.StateOrphaned, blocks.StateOrphaned) {
		t.Errorf("OrphanBlock(orphaned) = %v, %v", ok, err)
	}
	credit.Hash = h2
	if ok, err := s.CreditBlock(ctx, credit); ok || !isTransition(err, blocks.StateOrphaned, blocks.StateCredited) {
		t.Errorf("CreditBlock(orphaned) = %v, %v", ok, err)
	}
	if blk, _ := s.Block(ctx, h2); blk.Status != blocks.StateOrphaned {
		t.Errorf("orphan's status changed to %v", blk.Status)
	}
	if bal, _ := s.Balances(ctx); bal["A"] != 743 {
		t.Errorf("orphan credited: %v", bal)
	}
	if list, _ := s.UnconfirmedBlocks(ctx); len(list) != 0 {
		t.Errorf("unconfirmed = %v", list)
	}
	all, err := s.Blocks(ctx, 0)
	if err != nil || len(all) != 2 || all[0].Hash != h2 || all[0].Status != payouts.StatusOrphaned {
		t.Errorf("Blocks = %+v, %v", all, err)
	}
	// Unknown blocks.
	unknown := testHash(77)
	if _, err := s.OrphanBlock(ctx, unknown, now); !errors.Is(err, payouts.ErrBlockNotFound) {
		t.Errorf("OrphanBlock(unknown) err = %v", err)
	}
	credit.Hash = unknown
	if _, err := s.CreditBlock(ctx, credit); !errors.Is(err, payouts.ErrBlockNotFound) {
		t.Errorf("CreditBlock(unknown) err = %v", err)
	}
	if _, err := s.MarkImmature(ctx, unknown, 1, now); !errors.Is(err, payouts.ErrBlockNotFound) {
		t.Errorf("MarkImmature(unknown) err = %v", err)
	}
}

// isTransition reports whether err is the state machine's refusal of a
// move from from to to.
func isTransition(err error, from, to blocks.State) bool {
	var te *blocks.TransitionError
	return errors.As(err, &te) && errors.Is(err, blocks.ErrIllegalTransition) && te.From == from && te.To == to
}

func TestCreditBlockLeavesNothingHalfDone(t *testing.T) {
	s, rdb := blocksTestStore(t)
	ctx := context.Background()
	h := testHash(1)
	if _, err := s.SnapshotBlock(ctx, payouts.FoundBlock{Hash: h, Height: 1}, nil); err != nil {
		t.Fatal(err)
	}
	rdb.HSet(ctx, s.BalancesKey(), "B", "garbage")
	credit := payouts.BlockCredit{Hash: h, Allocation: payouts.Allocation{Reward: 10, Fee: 1,
		Credits: []payouts.Credit{{Address: "A", Amount: 5}, {Address: "B", Amount: 4}}}}
	if _, err := s.CreditBlock(ctx, credit); err == nil {
		t.Fatal("credit over a corrupt balance succeeded")
	}
	if v, _ := rdb.HGet(ctx, s.BalancesKey(), "A").Result(); v != "" {
		t.Errorf("A credited %q before the script failed", v)
	}
	if blk, _ := s.Block(ctx, h); blk.Status != payouts.StatusPending {
		t.Errorf("status = %v", blk.Status)
	}
}

// TestSnapshotOfRecordedShares records shares through the share ledger's own
// ApplyBatch, then snapshots: the block sees exactly those shares, the
// stored window limit applies when the caller passes none, and the round
// starts again from zero.
func TestSnapshotOfRecordedShares(t *testing.T) {
	s, _ := blocksTestStore(t)
	ctx := context.Background()
	entry := func(seq uint64, addr string, diff float64) ledger.Entry {
		u, err := ledger.DiffUnits(diff)
		if err != nil {
			t.Fatal(err)
		}
		return ledger.Entry{Seq: seq, Units: u, Share: shares.Share{Worker: addr + ".w", Address: addr, WorkerName: "w", Difficulty: diff, Time: time.Now()}}
	}
	// Oldest first: B 0.75, A 0.5, then A 1.25 and B 0.25 in a later batch.
	b1 := &ledger.Batch{Instance: "i1", Seq: 2, Shares: []ledger.Entry{entry(1, "B", 0.75)}}
	b2 := &ledger.Batch{Instance: "i1", Seq: 4, Shares: []ledger.Entry{entry(3, "A", 0.5)}}
	b3 := &ledger.Batch{Instance: "i1", Seq: 7, Shares: []ledger.Entry{entry(5, "A", 1.25), entry(6, "B", 0.25)}}
	for _, b := range []*ledger.Batch{b1, b2, b3} {
		// The ledger trims to N = 2 difficulty (200000000 units) and stores it.
		if err := s.ApplyBatch(ctx, b, "200000000"); err != nil {
			t.Fatal(err)
		}
	}
	// Window newest first: A 1.25, B 0.25 (batch 3), A 0.5, B 0.75 (maybe
	// trimmed). N = 2: A 1.25 + B 0.25 + A 0.5 = 2.0; B's 0.75 is outside.
	h := testHash(1)
	if _, err := s.SnapshotBlock(ctx, payouts.FoundBlock{Hash: h, Height: 3}, nil); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Contributions(ctx, h)
	want := []payouts.Contribution{{Address: "A", Units: big.NewInt(175_000_000)}, {Address: "B", Units: big.NewInt(25_000_000)}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("contributions = %v, want %v", got, want)
	}
	if blk, _ := s.Block(ctx, h); blk.WindowLimit.Int64() != 200_000_000 {
		t.Errorf("window limit = %v, want the ledger's 200000000", blk.WindowLimit)
	}
	total, err := s.RoundTotal(ctx)
	if err != nil || total != "0" {
		t.Errorf("round after block = %q %v, want 0", total, err)
	}
	if err := s.ApplyBatch(ctx, &ledger.Batch{Instance: "i1", Seq: 9, Shares: []ledger.Entry{entry(8, "C", 1)}}, "0"); err != nil {
		t.Fatal(err)
	}
	if total, _ = s.RoundTotal(ctx); total != "100000000" {
		t.Errorf("new round = %q", total)
	}
}
