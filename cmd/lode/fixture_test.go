package main

import (
	"context"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/payment"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// Two regtest payout addresses of the fixture.
const (
	minerA = "miRPLXFu5L6sm7j7MVcfKffYzVuYEfRerY"
	minerB = "n4CY32EkxDYq6zQJchn18ufm1vdbRTdVqP"
)

// fixture is pool state recorded into a real Redis through the same code
// the daemon uses: shares through the ledger's group-commit Recorder, blocks
// through the unlocker's store calls, a payout through the processor's
// commit. The want* fields are what the API must report.
type fixture struct {
	redis *testenv.Redis
	store *redisstore.Store

	poolDifficulty float64 // Σ credited difficulty of the recorded shares
	minedBlock     payouts.Block
	pendingHash    chainhash.Hash
	creditA        int64 // what the matured block credited minerA
	creditB        int64
	paidA          int64
	payoutTxID     string
	now            time.Time // when the fixture's shares were recorded
	creditedA      int64     // what block 101 credited minerA
	immatureA      int64     // what the pending block 150 will credit minerA
	threshold      int64     // the pool's default payout threshold
}

// shareSpec is a group of identical shares.
type shareSpec struct {
	address, worker string
	difficulty      float64
	count           int
}

var fixtureShares = []shareSpec{
	{minerA, "rig1", 2, 30},
	{minerA, "rig2", 1, 10},
	{minerB, "", 4, 5},
}

func recordFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	srv := testenv.StartRedis(t)
	store, err := redisstore.Connect(ctx, redisstore.ConnectConfig{Addr: srv.Addr, Prefix: "lode"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Client().Close() })
	f := &fixture{redis: srv, store: store}

	rec, err := ledger.New(ledger.Config{Instance: "fixture", MinWindow: 1000}, store)
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rec.Run(rctx) }()
	now := time.Now()
	f.now = now
	for _, s := range fixtureShares {
		worker := s.address
		if s.worker != "" {
			worker += "." + s.worker
		}
		for range s.count {
			sh := shares.Share{Worker: worker, Address: s.address, WorkerName: s.worker,
				Difficulty: s.difficulty, HashDifficulty: s.difficulty * 1.5, JobHeight: 101, Time: now}
			if err := rec.Record(ctx, sh); err != nil {
				t.Fatalf("record: %v", err)
			}
			f.poolDifficulty += s.difficulty
		}
	}
	rec.RecordReject(minerA+".rig1", minerA, "low_difficulty")
	rec.RecordReject(minerA+".rig1", minerA, ledger.ReasonStale)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("recorder: %v", err)
	}

	// A block found at height 101, matured and credited by PPLNS split.
	mined := payouts.FoundBlock{
		Hash: chainhash.DoubleHashH([]byte("fixture block 101")), Height: 101, Finder: minerA + ".rig1",
		CoinbaseValue: 50_0000_0000, NetworkDifficulty: 4.6e-10, Time: now.Add(-time.Minute),
	}
	mined.CoinbaseOutpoint = wire.OutPoint{Hash: chainhash.DoubleHashH([]byte("coinbase 101")), Index: 0}
	if _, err := store.SnapshotBlock(ctx, mined, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := store.MarkImmature(ctx, mined.Hash, 1, now); err != nil {
		t.Fatal(err)
	}
	contrib, err := store.Contributions(ctx, mined.Hash)
	if err != nil {
		t.Fatal(err)
	}
	alloc, err := payouts.Split(mined.CoinbaseValue, 100, contrib) // 1 % fee
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range alloc.Credits {
		switch c.Address {
		case minerA:
			f.creditA = c.Amount
		case minerB:
			f.creditB = c.Amount
		}
	}
	if f.creditA == 0 || f.creditB == 0 {
		t.Fatalf("allocation %+v does not credit both miners", alloc)
	}
	utxo := payment.UTXO{OutPoint: mined.CoinbaseOutpoint, Value: mined.CoinbaseValue}
	if ok, err := store.CreditBlock(ctx, payouts.BlockCredit{Hash: mined.Hash, Allocation: alloc,
		UTXOs: []payment.UTXO{utxo}, Confirmations: 100, Time: now}); err != nil || !ok {
		t.Fatalf("credit block: %v %v", ok, err)
	}
	if f.minedBlock, err = store.Block(ctx, mined.Hash); err != nil {
		t.Fatal(err)
	}

	// A second block, just found (pending).
	pending := payouts.FoundBlock{
		Hash: chainhash.DoubleHashH([]byte("fixture block 150")), Height: 150, Finder: minerB,
		CoinbaseValue: 50_0001_2345, NetworkDifficulty: 4.6e-10, Time: now,
	}
	if _, err := store.SnapshotBlock(ctx, pending, nil); err != nil {
		t.Fatal(err)
	}
	f.pendingHash = pending.Hash
	pcontrib, err := store.Contributions(ctx, pending.Hash)
	if err != nil {
		t.Fatal(err)
	}
	palloc, err := payouts.Split(pending.CoinbaseValue, 100, pcontrib)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range palloc.Credits {
		if c.Address == minerA {
			f.immatureA = c.Amount
		}
	}
	f.creditedA = f.creditA
	f.threshold = 25_000_000

	// A payout of 1 BTC to minerA spending the matured coinbase.
	id, err := store.NextPayoutID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.paidA = 1_0000_0000
	f.payoutTxID = chainhash.DoubleHashH([]byte("payout tx")).String()
	p := &payment.Payout{
		ID: id, State: payment.StatePending, Created: now, Updated: now,
		TxID: f.payoutTxID, UnsignedTxID: f.payoutTxID, FeeRate: 1000, Fee: 200, FeePayer: payment.FeePayerMiners,
		Outputs:    []payment.Output{{Address: minerA, Debit: f.paidA + 200, Amount: f.paidA}},
		Inputs:     []payment.Input{{OutPoint: utxo.OutPoint.String(), Value: utxo.Value}},
		ChangeVout: 1, ChangeValue: utxo.Value - f.paidA - 200,
	}
	if err := store.CommitPayout(ctx, p); err != nil {
		t.Fatalf("commit payout: %v", err)
	}
	f.creditA -= f.paidA + 200 // the balance left
	return f
}
