package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire"
	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/payment"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// clusterStore connects a Store to the cluster the way the daemon does
// (redis.mode: cluster), waiting for min replicas when asked.
func clusterStore(t *testing.T, c *testenv.RedisCluster, minReplicas int) *Store {
	t.Helper()
	s, err := Connect(context.Background(), ConnectConfig{Mode: ModeCluster, Addrs: c.Addrs(), Prefix: "c",
		MinReplicasAcked: minReplicas, ReplicaAckTimeout: 500 * time.Millisecond, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Client().Close() })
	return s
}

// noCrossSlot fails the test on any error, naming a CROSSSLOT one as the
// schema bug it is.
func noCrossSlot(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("%s: a script or transaction spans slots on a real cluster: %v", what, err)
	}
	t.Fatalf("%s: %v", what, err)
}

// recordShares runs a real ledger over s, records n shares of difficulty 1
// spread over addrs through Record, and stops the ledger.
func recordShares(t *testing.T, s *Store, addrs []string, n int) string {
	t.Helper()
	rec, err := ledger.New(ledger.Config{Instance: "audit", SpoolPath: filepath.Join(t.TempDir(), "spool"),
		Logger: zaptest.NewLogger(t)}, s)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := addrs[i%len(addrs)]
			errs <- rec.Record(context.Background(), shares.Share{Worker: a + ".rig", Address: a, WorkerName: "rig",
				Difficulty: 1, HashDifficulty: 3, Time: time.Now()})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		noCrossSlot(t, "Record", err)
	}
	if st := rec.Stats(); st.Spooled != 0 {
		t.Fatalf("%d batches spooled on a healthy cluster: the store failed", st.Spooled)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	return rec.Instance()
}

// TestClusterScriptsStayOnOneSlot runs every script of the schema (share
// ledger with statistics, PPLNS snapshot and window root, unlocker
// transitions, payouts, leases) and the readers against a real 3-master
// Redis Cluster with replicas, with WAIT for one replica. Any CROSSSLOT (or
// other) error fails: the hash tags must keep each script on one slot.
func TestClusterScriptsStayOnOneSlot(t *testing.T) {
	c := testenv.StartRedisCluster(t, 3, 1)
	s := clusterStore(t, c, 1)
	ctx := context.Background()
	addrs := []string{"addrA", "addrB", "addrC"}
	recordShares(t, s, addrs, 90)

	w, err := s.Window(ctx)
	noCrossSlot(t, "Window", err)
	if w.Total != "9000000000" {
		t.Fatalf("window total %s after 90 shares of difficulty 1", w.Total)
	}
	total, err := s.RoundTotal(ctx)
	noCrossSlot(t, "RoundTotal", err)
	if round := windowByAddress(t, s); total != "9000000000" || round["addrA"].String() != "3000000000" {
		t.Fatalf("window %v round total %s", round, total)
	}
	now := time.Now()
	ws, err := s.WorkerStats(ctx, "addrA.rig", now)
	noCrossSlot(t, "WorkerStats", err)
	if ws.Accepted != 30 {
		t.Fatalf("worker accepted %d, want 30", ws.Accepted)
	}
	_, err = s.MinerStats(ctx, "addrB", now)
	noCrossSlot(t, "MinerStats", err)
	ps, err := s.PoolStats(ctx, now)
	noCrossSlot(t, "PoolStats", err)
	if ps.Accepted != 90 {
		t.Fatalf("pool accepted %d, want 90", ps.Accepted)
	}
	active, err := s.ActiveWorkers(ctx, now.Add(-time.Hour))
	noCrossSlot(t, "ActiveWorkers", err)
	if len(active) != 3 {
		t.Fatalf("ActiveWorkers found %d workers over the cluster's masters, want 3", len(active))
	}

	// Payouts' snapshot, window root and retention.
	h1, h2 := testHash(1), testHash(2)
	pr, err := payouts.NewRecorder(payouts.RecorderConfig{Ledger: s, MinWindow: 10, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	blk, err := pr.BlockFound(ctx, payouts.FoundBlock{Hash: h1, Height: 10, NetworkDifficulty: 1e-12, Time: now})
	noCrossSlot(t, "BlockFound", err)
	if blk.WindowRoot == nil || blk.WindowUnits.Cmp(big.NewInt(1_000_000_000)) != 0 {
		t.Fatalf("block record %+v", blk)
	}
	_, err = pr.BlockFound(ctx, payouts.FoundBlock{Hash: h2, Height: 11, NetworkDifficulty: 1e-12, Time: now})
	noCrossSlot(t, "BlockFound (second)", err)
	_, err = s.PendingCommitments(ctx)
	noCrossSlot(t, "PendingCommitments", err)
	_, err = s.CommitmentScript(ctx)
	noCrossSlot(t, "CommitmentScript", err)
	_, err = s.PruneWindowArchives(ctx, 1, 0, now.Add(time.Hour))
	noCrossSlot(t, "PruneWindowArchives", err)

	// Unlocker transitions.
	_, err = s.MarkImmature(ctx, h1, 5, now)
	noCrossSlot(t, "MarkImmature", err)
	credit := payouts.BlockCredit{Hash: h1, Confirmations: 100, Time: now,
		Allocation: payouts.Allocation{Reward: 10_000, Fee: 100,
			Credits: []payouts.Credit{{Address: "addrA", Amount: 5000}, {Address: "addrB", Amount: 4900}}},
		UTXOs: []payment.UTXO{{OutPoint: wire.OutPoint{Hash: testHash(9), Index: 0}, Value: 10_000}}}
	ok, err := s.CreditBlock(ctx, credit)
	noCrossSlot(t, "CreditBlock", err)
	if !ok {
		t.Fatal("credit refused")
	}
	ok, err = s.OrphanBlock(ctx, h2, now)
	noCrossSlot(t, "OrphanBlock", err)
	if !ok {
		t.Fatal("orphan refused")
	}
	_, err = s.Blocks(ctx, 10)
	noCrossSlot(t, "Blocks", err)
	_, err = s.UnconfirmedBlocks(ctx)
	noCrossSlot(t, "UnconfirmedBlocks", err)

	// Payouts: commit, broadcast, confirm; a second one abandoned.
	id, err := s.NextPayoutID(ctx)
	noCrossSlot(t, "NextPayoutID", err)
	in := testHash(9).String() + ":0"
	p := &payment.Payout{ID: id, State: payment.StatePending, Created: now.UTC(), TxID: testHash(20).String(),
		Fee: 50, FeePayer: payment.FeePayerPool, FeeAccountDebit: 50,
		Outputs:    []payment.Output{{Address: "addrA", Debit: 5000, Amount: 5000}},
		Inputs:     []payment.Input{{OutPoint: in, Value: 10_000}},
		ChangeVout: 1, ChangeValue: 4950}
	noCrossSlot(t, "CommitPayout", s.CommitPayout(ctx, p))
	// Before a broadcast of a payout committed by another call: the fence
	// and WAIT on the master holding the payout, from a store whose
	// connections have written nothing.
	noCrossSlot(t, "EnsureCommitted", clusterStore(t, c, 1).EnsureCommitted(ctx, p))
	p.State = payment.StateBroadcast
	noCrossSlot(t, "UpdatePayout", s.UpdatePayout(ctx, p, payment.StatePending))
	p.State = payment.StateConfirmed
	noCrossSlot(t, "ConfirmPayout", s.ConfirmPayout(ctx, p, payment.StateBroadcast))
	id2, err := s.NextPayoutID(ctx)
	noCrossSlot(t, "NextPayoutID", err)
	change, _ := p.Change()
	p2 := &payment.Payout{ID: id2, State: payment.StatePending, Created: now.UTC(), TxID: testHash(21).String(),
		Fee: 50, FeePayer: payment.FeePayerPool, FeeAccountDebit: 50,
		Outputs: []payment.Output{{Address: "addrB", Debit: 4900, Amount: 4900}},
		Inputs:  []payment.Input{{OutPoint: change.Key(), Value: 4950}}, ChangeVout: -1}
	noCrossSlot(t, "CommitPayout (second)", s.CommitPayout(ctx, p2))
	p2.State = payment.StateAbandoned
	noCrossSlot(t, "AbandonPayout", s.AbandonPayout(ctx, p2, []payment.UTXO{change}, payment.StatePending))
	// The replica of the master holding the payout stopped: WAIT cannot be
	// satisfied, so EnsureCommitted refuses (the processor does not
	// broadcast; payouts/payment's TestClusterPayoutsExactlyOnceThroughFailovers).
	reps := c.ReplicasOf(c.MasterFor(s.payoutKey(p2.ID)))
	if len(reps) != 1 {
		t.Fatalf("the payout's master has %d replicas, want 1", len(reps))
	}
	fresh := clusterStore(t, c, 1) // connected first: a client connecting to a cluster with a stopped node can time out
	reps[0].Pause()
	err = fresh.EnsureCommitted(ctx, p2)
	reps[0].Resume()
	if !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("EnsureCommitted with the payout master's replica stopped: %v, want ErrNotReplicated", err)
	}
	noCrossSlot(t, "SetThreshold", s.SetThreshold(ctx, "addrA", 200_000))
	bal, err := s.Balances(ctx)
	noCrossSlot(t, "Balances", err)
	fee, err := s.FeeBalance(ctx)
	noCrossSlot(t, "FeeBalance", err)
	tot, err := s.Totals(ctx)
	noCrossSlot(t, "Totals", err)
	// Σ balances + fees + paid + network fees = rewards credited.
	var sum int64
	for _, v := range bal {
		sum += v
	}
	if sum+fee+tot.Paid+tot.Fees != 10_000 {
		t.Fatalf("money: balances %v fee %d totals %+v do not add up to the 10000 credited", bal, fee, tot)
	}

	// Leases.
	l, err := s.Lease("unlocker", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.Acquire(ctx)
	noCrossSlot(t, "Lease.Acquire", err)
	if !got {
		t.Fatal("lease not acquired")
	}
	_, err = l.Renew(ctx)
	noCrossSlot(t, "Lease.Renew", err)
	noCrossSlot(t, "Lease.Release", l.Release(ctx))
}

// loadResult is what a ledger load saw.
type loadResult struct {
	acked  map[string]int64 // address → shares whose Record returned nil
	failed int64
}

// ledgerLoad records shares of difficulty 1 from `workers` goroutines (one
// address each) until the returned function stops them and counts what was
// acknowledged (also at the test's end, before the recorder stops).
func ledgerLoad(t *testing.T, rec *ledger.Recorder, workers int) func() loadResult {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	acked := make([]atomic.Int64, workers)
	var failed atomic.Int64
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := fmt.Sprintf("load%d", i)
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := rec.Record(context.Background(), shares.Share{Worker: a, Address: a,
					Difficulty: 1, HashDifficulty: 1, Time: time.Now()})
				if err != nil {
					failed.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				acked[i].Add(1)
				// A steady load, not a CPU race on a shared machine.
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	var once sync.Once
	finish := func() loadResult {
		once.Do(func() { close(stop) })
		wg.Wait()
		res := loadResult{acked: map[string]int64{}, failed: failed.Load()}
		for i := range acked {
			res.acked[fmt.Sprintf("load%d", i)] = acked[i].Load()
		}
		return res
	}
	t.Cleanup(func() { finish() }) // a test that fails half way
	return finish
}

// waitFor polls cond every 50 ms until it holds or limit passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitShares waits until the recorder has acknowledged n more shares than
// it had at the call: load is flowing.
func waitShares(t *testing.T, rec *ledger.Recorder, n uint64, what string) {
	t.Helper()
	from := rec.Stats().Shares
	waitFor(t, 30*time.Second, what, func() bool { return rec.Stats().Shares >= from+n })
}

// windowByAddress returns Σ units per address of the PPLNS window.
func windowByAddress(t *testing.T, s *Store) map[string]*big.Int {
	t.Helper()
	w, err := s.Window(context.Background())
	noCrossSlot(t, "Window", err)
	byAddr, _, err := w.ByAddress()
	if err != nil {
		t.Fatal(err)
	}
	return byAddr
}

// checkLedger compares the window (never trimmed here: no window limit)
// with the acknowledged shares: every acknowledged share is counted, none
// twice. A Record that failed may or may not have been applied (its batch's
// outcome was unknown), so the ledger may exceed the acknowledged count by
// at most the failures.
func checkLedger(t *testing.T, s *Store, res loadResult) {
	t.Helper()
	round := windowByAddress(t, s)
	var ackedAll int64
	for a, n := range res.acked {
		ackedAll += n
		got := round[a]
		if got == nil {
			got = new(big.Int)
		}
		want := new(big.Int).Mul(big.NewInt(n), big.NewInt(100_000_000))
		most := new(big.Int).Mul(big.NewInt(n+res.failed), big.NewInt(100_000_000))
		if got.Cmp(want) < 0 || got.Cmp(most) > 0 {
			t.Errorf("%s: ledger holds %s units, %d shares acknowledged (%d Record errors): lost or counted twice",
				a, got, n, res.failed)
		}
	}
	t.Logf("%d shares acknowledged, %d Record errors", ackedAll, res.failed)
}

// spoolReplayLimit bounds the wait for a spool to replay after an outage:
// the test nodes fsync every write (appendfsync always, testenv), so a
// replayed batch and its WAIT take several milliseconds on a loaded VM, and
// the load keeps adding batches meanwhile (thousands after a failover).
const spoolReplayLimit = 2 * time.Minute

// startRecorder runs a ledger with a spool over s.
func startRecorder(t *testing.T, s *Store) *ledger.Recorder {
	t.Helper()
	rec, err := ledger.New(ledger.Config{SpoolPath: filepath.Join(t.TempDir(), "spool"),
		RetryInterval: 100 * time.Millisecond, Logger: zaptest.NewLogger(t)}, s)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = rec.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return rec
}

// TestClusterFailoverKeepsAcknowledgedShares: shares are recorded under
// load with WAIT for one replica; the master holding the accounting slot is
// SIGKILLed, its replica is promoted, the old master comes back as the new
// one's replica; then the replica of the accounting master is SIGKILLed,
// later the master too, and the stale replica is promoted; then the whole
// cluster is SIGKILLed for a while and restarted. Shares keep being acknowledged (spool) throughout, and
// afterwards every acknowledged share is in the ledger exactly once.
func TestClusterFailoverKeepsAcknowledgedShares(t *testing.T) {
	c := testenv.StartRedisCluster(t, 3, 1)
	s := clusterStore(t, c, 1)
	rec := startRecorder(t, s)
	acctKey := s.win.total
	finish := ledgerLoad(t, rec, 4)
	waitShares(t, rec, 300, "shares before the failover")

	old := c.KillMasterFor(acctKey)
	waitShares(t, rec, 100, "shares acknowledged (spool) while the accounting master is down")
	promoted := c.WaitPromotion(acctKey, old)
	t.Logf("accounting slot moved from %s to %s", old.Addr, promoted.Addr)
	old.Restart()
	c.WaitHealthy()
	waitFor(t, spoolReplayLimit, "spool replayed after the failover", func() bool { return !rec.Stats().SpoolPending })
	waitShares(t, rec, 300, "shares after the failover")

	// A double failure: the accounting master's replica dies, the master
	// keeps taking batches alone, then dies too, and the replica comes back
	// with what it had and is promoted. Without WAIT the shares acknowledged
	// in between would exist only on the dead master.
	master := c.MasterFor(acctKey)
	reps := c.ReplicasOf(master)
	if len(reps) != 1 {
		t.Fatalf("accounting master %s has %d replicas", master.Addr, len(reps))
	}
	reps[0].Stop()
	waitShares(t, rec, 200, "shares acknowledged while the accounting master has no replica")
	master.Stop()
	reps[0].Restart()
	c.WaitPromotion(acctKey, master)
	master.Restart()
	c.WaitHealthy()
	waitFor(t, spoolReplayLimit, "spool replayed after the double failure", func() bool { return !rec.Stats().SpoolPending })
	waitShares(t, rec, 100, "shares after the double failure")

	// The whole cluster down for a while: the spool takes every share.
	for _, n := range c.Nodes {
		n.Stop()
	}
	waitShares(t, rec, 200, "shares acknowledged (spool) while the whole cluster is down")
	for _, n := range c.Nodes {
		n.Restart()
	}
	c.WaitHealthy()
	waitShares(t, rec, 100, "shares after the cluster restart")
	res := finish()
	waitFor(t, spoolReplayLimit, "spool replayed after the restart", func() bool { return !rec.Stats().SpoolPending })
	st := rec.Stats()
	if st.Spooled == 0 || st.Replayed == 0 {
		t.Fatalf("stats %+v: the outages never reached the spool", st)
	}
	checkLedger(t, s, res)
}
