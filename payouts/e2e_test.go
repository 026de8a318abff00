package payouts_test

import (
	"context"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// TestSharesToBalances goes from accepted shares to balances through the
// real pieces: two miners with different hashrates record shares
// concurrently through the share ledger's group-commit Recorder (A: 150
// shares at vardiff 2, B: 200 shares at vardiff 0.5, so A did 3× B's work
// with fewer shares); the pool finds a block on the node; the snapshot, 100
// more blocks and the unlocker credit each miner exactly what the snapshot
// implies.
func TestSharesToBalances(t *testing.T) { forEachNode(t, testSharesToBalances) }

func testSharesToBalances(t *testing.T, nodeKind string) {
	e := newEnv(t, nodeKind)
	ctx, cancel := context.WithCancel(context.Background())
	rec, err := ledger.New(ledger.Config{
		Instance: "e2e", SpoolPath: filepath.Join(t.TempDir(), "spool"), Logger: zaptest.NewLogger(t),
	}, e.store)
	if err != nil {
		t.Fatal(err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- rec.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-runDone; err != nil {
			t.Errorf("recorder Run: %v", err)
		}
	}()

	var wg sync.WaitGroup
	for _, m := range []struct {
		addr   string
		n      int
		diff   float64
		worker string
	}{{"A", 150, 2, "A.big"}, {"B", 200, 0.5, "B.small"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range m.n {
				err := rec.Record(ctx, shares.Share{Worker: m.worker, Address: m.addr, WorkerName: "w",
					Difficulty: m.diff, HashDifficulty: m.diff, Time: time.Now()})
				if err != nil {
					t.Errorf("record: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()

	b := e.mineFound()
	if b.WindowUnits.String() != "40000000000" || b.WindowShares == 0 || b.Contributors != 2 {
		t.Fatalf("snapshot: %+v", b)
	}
	e.chain.Generate(99)
	u := e.unlocker(0)
	if res := e.step(u); res.Credited != 1 {
		t.Fatalf("step = %+v", res)
	}
	// 50 BTC, 1% fee; 4.95e9 split 300:100.
	want := map[string]int64{"A": 3_712_500_000, "B": 1_237_500_000}
	if got := e.balances(); !reflect.DeepEqual(got, want) {
		t.Errorf("balances = %v, want %v", got, want)
	}
	blk, _ := e.store.Block(context.Background(), b.Hash)
	contrib, _ := e.store.Contributions(context.Background(), b.Hash)
	credits, _ := e.store.BlockCredits(context.Background(), b.Hash)
	if err := payouts.AuditCredit(blk, contrib, credits); err != nil {
		t.Error(err)
	}
}
