//go:build e2e

package payment_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/txscript"
	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/payouts/payment"
)

// TestPayoutsExactlyOnceThroughFailover: the pool ledger lives in a
// Sentinel-managed Redis (a primary, one replica, three Sentinels; the
// store waits for one replica, as redis.min_replicas_acked: 1 does) next to
// a real btcd regtest node whose coinbases fund the pool. Payouts run in
// batches of three outputs while the primary is SIGKILLed right after a
// payout was committed (before its broadcast) and, after the failover,
// right after another was broadcast (before its state was written); then,
// with the replica stopped, a commit must not be acknowledged and nothing
// may be broadcast. After every run resolved and a block confirmed the
// payouts, each address received its balance exactly once on chain, no
// balance is left or negative, and Σ balances + fee account + paid +
// network fees equals the funds to the satoshi.
func TestPayoutsExactlyOnceThroughFailover(t *testing.T) {
	e, sn := newSentinelEnv(t, p2pkh)
	ctx := context.Background()
	want := e.seedRecipients(0, 12, 2_000_000, 1_000_003) // four payouts of three outputs

	// Run 1: the primary dies right after the second payout is committed.
	// The commit was acknowledged by the replica (WAIT), so the promoted
	// replica holds it; its broadcast still reaches the node, its new state
	// is not written (Redis is down).
	p := e.processor(e.config(payment.ModeHot))
	committed := 0
	var killed *testenv.Redis
	payment.SetTestHooks(p, func(po *payment.Payout) {
		if committed++; committed == 2 {
			killed = sn.KillPrimary()
		}
	}, nil)
	if _, err := p.RunOnce(ctx, false); err != nil {
		t.Logf("run 1: %v", err) // Redis went away in it; the next runs resolve
	}
	if killed == nil {
		t.Fatal("run 1 committed fewer than two payouts")
	}
	promoted := sn.WaitPromotion(killed)
	t.Logf("primary moved from %s to %s after payout 2 was committed", killed.Addr, promoted.Addr)
	killed.Restart()
	sn.WaitReplicas(1)

	// Run 2 resolves what run 1 left (payout 2 still pending: broadcast
	// again, the node knows it) and pays on; the primary dies right after
	// the first broadcast, before its state was written.
	p = e.processor(e.config(payment.ModeHot))
	killed = nil
	payment.SetTestHooks(p, nil, func(po *payment.Payout) {
		if killed == nil {
			killed = sn.KillPrimary()
		}
	})
	_, err := p.RunOnce(ctx, false)
	if killed == nil {
		t.Fatalf("run 2 broadcast nothing (%v)", err)
	}
	promoted = sn.WaitPromotion(killed)
	t.Logf("primary moved from %s to %s after a broadcast", killed.Addr, promoted.Addr)

	// Run 3 with no replica (the old primary not back yet): a commit is not
	// acknowledged, so nothing new is broadcast.
	before := e.mempool()
	p = e.processor(e.config(payment.ModeHot))
	_, err = p.RunOnce(ctx, false)
	if remaining := countBalances(t, e); remaining > 0 && !errors.Is(err, redisstore.ErrNotReplicated) {
		t.Fatalf("run 3 without a replica, %d balances to pay: %v, want ErrNotReplicated", remaining, err)
	}
	if after := e.mempool(); after > before {
		t.Fatalf("run 3 broadcast %d transactions without a replica acknowledging their commit", after-before)
	}
	killed.Restart()
	sn.WaitReplicas(1)

	// Runs until nothing is left: resolve, re-broadcast, pay the rest.
	e.settle(e.processor(e.config(payment.ModeHot)), want)
}

// newSentinelEnv is a pool ledger in a Sentinel-managed Redis (a primary,
// one replica, three Sentinels; the store waits for one replica, as
// redis.min_replicas_acked: 1 does) next to a btcd regtest node; the pool's
// address is the test key's of the given kind, and its UTXOs are four
// coinbases of 50 BTC (P2PKH) or four outputs of 10-13 BTC (P2WPKH, P2TR),
// as fund records them.
func newSentinelEnv(t *testing.T, kind poolKind) (*env, *testenv.RedisSentinel) {
	t.Helper()
	sn := testenv.StartRedisSentinel(t, 1)
	t.Cleanup(func() {
		if t.Failed() {
			logTails(t, append(sn.Servers, sn.Sentinels...))
		}
	})
	store := connectSentinel(t, sn)
	e := &env{t: t, store: store, rdb: store.Client()}
	e.chain = testenv.StartNode(t, testenv.KindBtcd)
	e.fund(kind, 4)
	return e, sn
}

// newClusterEnv is newSentinelEnv with the ledger in a Redis Cluster
// (three masters with one replica each, as testenv starts it; the store
// waits for one replica).
func newClusterEnv(t *testing.T, kind poolKind) (*env, *testenv.RedisCluster) {
	t.Helper()
	c := testenv.StartRedisCluster(t, 3, 1)
	t.Cleanup(func() {
		if t.Failed() {
			logTails(t, c.Nodes)
		}
	})
	store := connectCluster(t, c)
	e := &env{t: t, store: store, rdb: store.Client()}
	e.chain = testenv.StartNode(t, testenv.KindBtcd)
	e.fund(kind, 4)
	return e, c
}

// logTails logs the last lines of each server's log. Registered as a
// cleanup it runs before the servers stop: what they logged explains a
// failover that went otherwise than the test expected.
func logTails(t *testing.T, servers []*testenv.Redis) {
	t.Helper()
	for _, r := range servers {
		log, _ := os.ReadFile(filepath.Join(r.Dir, "redis.log"))
		lines := strings.Split(strings.TrimSpace(string(log)), "\n")
		t.Logf("%s, the last lines of its log:\n%s", r.Addr, strings.Join(lines[max(0, len(lines)-25):], "\n"))
	}
}

// countBalances is the number of addresses with an unpaid balance.
func countBalances(t *testing.T, e *env) int {
	t.Helper()
	bal, err := e.store.Balances(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(bal)
}

// seedRecipients seeds the balances of n recipients (recipient first …
// first+n−1), base + i·step satoshis each, and returns them.
func (e *env) seedRecipients(first, n int, base, step int64) map[string]int64 {
	e.t.Helper()
	want := map[string]int64{}
	for i := range n {
		want[recipient(e.t, first+i, e.params)] = base + int64(i)*step
	}
	e.seed(want)
	return want
}

// connectSentinel is a store on its own connections to the Sentinel setup's
// primary, waiting for one replica like redis.min_replicas_acked: 1.
func connectSentinel(t *testing.T, sn *testenv.RedisSentinel) *redisstore.Store {
	t.Helper()
	return connectReplicated(t, redisstore.ConnectConfig{Mode: redisstore.ModeSentinel,
		Addrs: sn.SentinelAddrs(), MasterName: testenv.SentinelMaster})
}

// connectCluster is a store on its own connections to the cluster (as
// redis.mode: cluster), waiting for one replica like
// redis.min_replicas_acked: 1.
func connectCluster(t *testing.T, c *testenv.RedisCluster) *redisstore.Store {
	t.Helper()
	return connectReplicated(t, redisstore.ConnectConfig{Mode: redisstore.ModeCluster, Addrs: c.Addrs()})
}

// connectReplicated connects cfg (mode and addresses) with the test prefix,
// waiting for one replica for up to 500 ms.
func connectReplicated(t *testing.T, cfg redisstore.ConnectConfig) *redisstore.Store {
	t.Helper()
	cfg.Prefix, cfg.MinReplicasAcked, cfg.ReplicaAckTimeout = testPrefix, 1, 500*time.Millisecond
	cfg.Logger = zaptest.NewLogger(t)
	store, err := redisstore.Connect(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Client().Close() })
	return store
}

// mempool is the number of transactions in the node's mempool.
func (e *env) mempool() int {
	e.t.Helper()
	hashes, err := e.rpc.GetRawMempool()
	if err != nil {
		e.t.Fatal(err)
	}
	return len(hashes)
}

// settle runs p until every balance is paid, confirms the payouts with a
// block, and checks against the chain: every address in want received
// exactly its balance (read from the node's blocks, so a second payment
// anywhere shows), every payout record is confirmed and pays on chain what
// it says, and the ledger adds up to the satoshi.
func (e *env) settle(p *payment.Processor, want map[string]int64) {
	t := e.t
	t.Helper()
	ctx := context.Background()
	lastErr := ""
	testenv.WaitFor(t, 60*time.Second, "every balance paid", func() bool {
		res, err := p.RunOnce(ctx, false)
		if err != nil {
			if err.Error() != lastErr { // a halt repeats every run
				t.Logf("run: %v", err)
				lastErr = err.Error()
			}
			return false
		}
		return countBalances(t, e) == 0 && len(res.Payouts) == 0
	})
	e.chain.Generate(1)
	testenv.WaitFor(t, 60*time.Second, "every payout confirmed", func() bool {
		res, err := p.RunOnce(ctx, false)
		return err == nil && res.Open == 0
	})
	got := e.received()
	var paid int64
	for a, v := range want {
		if got[a] != v {
			t.Errorf("%s received %d on chain, want %d exactly once", a, got[a], v)
		}
		paid += v
	}
	for a, v := range got {
		if _, ok := want[a]; !ok && a != e.pool.EncodeAddress() {
			t.Errorf("%s received %d on chain and had no balance", a, v)
		}
	}
	e.checkRecordsOnChain()
	tot := e.checkLedger()
	if tot.Paid != paid {
		t.Fatalf("totals paid %d, want %d", tot.Paid, paid)
	}
}

// checkRecordsOnChain checks every payout record against the node: it is
// confirmed, its transaction is in the chain, and that transaction pays each
// recorded output its amount and nothing to anyone else but the pool.
func (e *env) checkRecordsOnChain() {
	t := e.t
	t.Helper()
	ctx := context.Background()
	payouts, err := e.store.Payouts(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, po := range payouts {
		txid := mustHash(t, po.TxID)
		st, err := e.node.TxStatus(ctx, txid)
		if err != nil {
			t.Fatal(err)
		}
		if po.State != payment.StateConfirmed || !st.Found || st.Confirmations < 1 {
			t.Errorf("payout %d is %s, its tx %s found %v with %d confirmations; want confirmed in the chain",
				po.ID, po.State, po.TxID, st.Found, st.Confirmations)
			continue
		}
		tx, err := e.node.GetRawTransaction(ctx, txid)
		if err != nil {
			t.Fatal(err)
		}
		onChain := map[string]int64{}
		for _, o := range tx.TxOut {
			_, addrs, _, _ := txscript.ExtractPkScriptAddrs(o.PkScript, e.params)
			if len(addrs) == 1 && addrs[0].EncodeAddress() != e.pool.EncodeAddress() {
				onChain[addrs[0].EncodeAddress()] += o.Value
			}
		}
		recorded := map[string]int64{}
		for _, o := range po.Outputs {
			recorded[o.Address] += o.Amount
		}
		if !maps.Equal(onChain, recorded) {
			t.Errorf("payout %d (tx %s): chain pays %v, the record says %v", po.ID, po.TxID, onChain, recorded)
		}
	}
}
