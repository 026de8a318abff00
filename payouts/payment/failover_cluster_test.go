//go:build e2e

package payment_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/payouts/payment"
)

// TestClusterPayoutsExactlyOnceThroughFailovers runs payouts on a Redis
// Cluster (three masters with one replica each; the store waits for one
// replica) through two failovers of the master holding {acct}. There the
// script, the fence and WAIT of a commit or of Store.EnsureCommitted go down
// the connection of the node client for that master, and WAIT counts its
// replicas.
//
// First TestPayoutsExactlyOnceStaleReplicaPromoted's case: the replica lags
// for real (SIGSTOPped, its link full), so a payout commit stands on the
// master alone: its WAIT fails and it is not broadcast; EnsureCommitted on a
// store with connections of its own (which have written nothing, so by
// WAIT's documented contract only the fence makes it cover the commit; see
// docs/redis.md) fails, and so does a run of a processor on that store,
// which finds the commit open: nothing is broadcast. The master is
// SIGKILLed and the cluster promotes the stale replica, which never had the
// commit. A run then commits a payout but cannot have it acknowledged (the
// new master has no replica): not broadcast either. Once the old master is
// back as the new master's replica and caught up, EnsureCommitted succeeds,
// and the next runs broadcast that payout's transaction (the same) and pay
// the rest; the forgotten commit's transaction never reached the node.
//
// Then TestPayoutsExactlyOnceKilledAfterReplicatedCommit's (below). After
// each, every address is paid exactly once on chain and the ledger agrees
// with the chain to the satoshi (settle).
func TestClusterPayoutsExactlyOnceThroughFailovers(t *testing.T) {
	e, c := newClusterEnv(t, p2pkh)
	ctx := context.Background()
	acct := e.store.BalancesKey()
	want := e.seedRecipients(50, 6, 3_500_000, 1_000_019) // two payouts of three outputs
	primary := c.MasterFor(acct)
	replicas := c.ReplicasOf(primary)
	if len(replicas) != 1 {
		t.Fatalf("the {acct} master %s has %d replicas, want 1", primary.Addr, len(replicas))
	}
	replica := replicas[0]
	// Another store, connected now: a cluster client connecting while a
	// node is SIGSTOPped may wait for it past its dial timeout.
	other := connectCluster(t, c)
	e.lag(primary, replica)

	// Run 1: the first batch's commit stands on the master alone.
	before := e.mempool()
	broadcasts := 0
	count := func(*payment.Payout) { broadcasts++ }
	p := e.processor(e.config(payment.ModeHot))
	payment.SetTestHooks(p, nil, count)
	lost := e.commitUnacknowledged(p, payment.StatePending)

	// The other store, whose connections to the master have written
	// nothing: EnsureCommitted, then a run that finds the commit open,
	// pending and unknown to the node.
	if err := other.EnsureCommitted(ctx, lost); !errors.Is(err, redisstore.ErrNotReplicated) {
		t.Errorf("EnsureCommitted of payout %d with the replica behind: %v, want ErrNotReplicated", lost.ID, err)
	}
	p2, err := payment.New(e.config(payment.ModeHot), other, e.node)
	if err != nil {
		t.Fatal(err)
	}
	payment.SetTestHooks(p2, nil, count)
	if _, err := p2.RunOnce(ctx, false); !errors.Is(err, redisstore.ErrNotReplicated) {
		t.Errorf("run 2 with the replica behind: %v, want ErrNotReplicated", err)
	}
	if n := e.mempool(); n != before || broadcasts != 0 {
		t.Fatalf("%d payouts broadcast (mempool %d → %d) whose commit no replica had", broadcasts, before, n)
	}

	// The master dies with the commit; its replica, continued at once,
	// never receives it and is promoted.
	primary.Stop()
	replica.Resume()
	if promoted := c.WaitPromotion(acct, primary); promoted != replica {
		t.Fatalf("promoted %s, want the replica %s", promoted.Addr, replica.Addr)
	}
	e.followCluster()
	e.checkForgotten(lost.ID, want)
	t.Logf("master %s died holding payout %d (tx %s); %s promoted without it", primary.Addr, lost.ID, lost.TxID, replica.Addr)

	// A block is credited meanwhile, so the payouts built now differ from
	// the forgotten one (see TestPayoutsExactlyOnceStaleReplicaPromoted).
	// The new master has no replica: a run commits a payout it cannot have
	// acknowledged, and broadcasts nothing.
	e.creditCoinbase(want, 1_000_000)
	p = e.processor(e.config(payment.ModeHot))
	payment.SetTestHooks(p, nil, count)
	held := e.commitUnacknowledged(p, payment.StatePending)
	if n := e.mempool(); n != before || broadcasts != 0 {
		t.Fatalf("a run without a replica broadcast %d payouts (mempool %d → %d)", broadcasts, before, n)
	}

	// The old master returns as the new master's replica. With the replica
	// in sync, EnsureCommitted succeeds, and the runs broadcast the held
	// payout's transaction and pay the rest.
	primary.Restart()
	c.WaitHealthy()
	if r := c.ReplicasOf(replica); len(r) != 1 || r[0] != primary {
		t.Fatalf("replicas of the new master %s: %v, want the old master %s", replica.Addr, r, primary.Addr)
	}
	waitReplicaCaughtUp(t, replica)
	if err := connectCluster(t, c).EnsureCommitted(ctx, held); err != nil {
		t.Fatalf("EnsureCommitted of payout %d with the replica in sync: %v", held.ID, err)
	}
	e.settle(p, want)
	if po, err := e.store.Payout(ctx, held.ID); err != nil || po.TxID != held.TxID {
		t.Fatalf("payout %d: %+v (%v), want the held tx %s", held.ID, po, err, held.TxID)
	}
	if st, err := e.node.TxStatus(ctx, mustHash(t, lost.TxID)); err != nil || st.Found {
		t.Fatalf("the forgotten commit's tx %s: found %v (%v); it must never have left", lost.TxID, st.Found, err)
	}

	// Then TestPayoutsExactlyOnceKilledAfterReplicatedCommit on the same
	// cluster: a payout process (a child, with the daemon's store settings)
	// commits a payout, the replica acknowledges it, and the process is
	// SIGKILLed before the broadcast; then the {acct} master is SIGKILLed
	// and its replica promoted with the payout pending, which is broadcast
	// once a replica is back, not before (failoverWithPendingPayout). Six
	// new recipients are credited from the fee account; want keeps what the
	// first six were paid, which settle finds on chain again.
	for i := range 6 {
		a, v := recipient(t, 60+i, e.params), 4_500_000+int64(i)*1_000_021
		e.credit(a, v)
		want[a] = v
	}
	e.runChild("commit", "LODE_TEST_CLUSTER="+strings.Join(c.Addrs(), ","))
	e.failoverWithPendingPayout(clusterFailover{c: c, key: acct, t: t}, want, nil)
}

// clusterFailover is failoverWithPendingPayout's failover of the cluster
// master holding key's slot.
type clusterFailover struct {
	c   *testenv.RedisCluster
	key string
	t   *testing.T
}

func (f clusterFailover) killPrimary() *testenv.Redis { return f.c.KillMasterFor(f.key) }
func (f clusterFailover) waitPromotion(e *env, old *testenv.Redis) *testenv.Redis {
	promoted := f.c.WaitPromotion(f.key, old)
	e.followCluster()
	return promoted
}
func (f clusterFailover) waitReplica() {
	f.c.WaitHealthy()
	waitReplicaCaughtUp(f.t, f.c.MasterFor(f.key))
}

// followCluster waits until the test's store reaches the {acct} slot's
// current master. go-redis reloads a cluster client's slot map after a
// MOVED reply or every 10 s, not when a node refuses connections; the store
// asks for a reload after a failed commit or EnsureCommitted, as here.
func (e *env) followCluster() {
	e.t.Helper()
	ctx := context.Background()
	cc := e.rdb.(*redis.ClusterClient)
	testenv.WaitFor(e.t, 30*time.Second, "the store to reach the promoted master", func() bool {
		_, err := e.store.Balances(ctx)
		if err != nil {
			cc.ReloadState(ctx)
		}
		return err == nil
	})
}
