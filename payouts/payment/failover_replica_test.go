//go:build e2e

package payment_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire"

	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/payouts/payment"
)

// TestPayoutsExactlyOnceStaleReplicaPromoted: a payout commit reaches the
// Sentinel primary but not its replica, which lags for real (SIGSTOPped, the
// replication link filled with megabytes the primary could not send yet).
// The commit's WAIT fails, so the processor does not broadcast it; neither
// does a second run (another processor on its own connections) that finds
// the commit open on the primary, with the replica still behind. Then the
// primary is SIGKILLed and Sentinel promotes the stale replica, where the
// commit never happened: the debits, the reservation of the inputs and the
// payout record are gone. The payouts resume on the new primary: every
// address is paid exactly once on chain (read from btcd), the forgotten
// commit's transaction never reached the node, and the payout records and
// the ledger on the new primary agree with the chain.
func TestPayoutsExactlyOnceStaleReplicaPromoted(t *testing.T) {
	e, sn := newSentinelEnv(t, p2pkh)
	ctx := context.Background()
	want := e.seedRecipients(0, 6, 3_000_000, 1_000_007) // two payouts of three outputs
	primary, replica := e.lagReplica(sn)

	// Run 1: the first batch's commit stands on the primary alone.
	before := e.mempool()
	p := e.processor(e.config(payment.ModeHot))
	broadcasts := 0
	payment.SetTestHooks(p, nil, func(*payment.Payout) { broadcasts++ })
	lost := e.commitUnacknowledged(p, payment.StatePending)
	if n := e.mempool(); n != before || broadcasts != 0 {
		t.Errorf("run 1 broadcast %d payouts (mempool %d → %d) whose commit no replica had", broadcasts, before, n)
	}

	// Run 2, the next interval, the replica still behind: a processor on
	// new connections (which have written nothing, so only a write of its
	// own makes WAIT cover the commit) finds the commit open and pending,
	// unknown to the node. Broadcasting it now would pay what the stale
	// replica still holds as balances.
	p2, err := payment.New(e.config(payment.ModeHot), connectSentinel(t, sn), e.node)
	if err != nil {
		t.Fatal(err)
	}
	payment.SetTestHooks(p2, nil, func(*payment.Payout) { broadcasts++ })
	if _, err := p2.RunOnce(ctx, false); !errors.Is(err, redisstore.ErrNotReplicated) {
		t.Errorf("run 2 with the replica behind: %v, want ErrNotReplicated", err)
	}
	if n := e.mempool(); n != before || broadcasts != 0 {
		t.Errorf("run 2 broadcast %d payouts (mempool %d → %d) whose commit no replica had", broadcasts, before, n)
	}

	// The primary dies with the commit; the replica, continued at once,
	// never receives it and is promoted.
	killed := e.promoteStale(sn, primary, replica, lost.ID, want)
	t.Logf("primary %s died holding payout %d (tx %s); %s promoted without it", killed.Addr, lost.ID, lost.TxID, replica.Addr)
	// The old primary returns with its data, the commit in it. Sentinel
	// turns it into a replica of the new primary, whose full resync drops
	// the commit; on this loaded machine a Sentinel was seen to fail over
	// once more before that (it took the new primary for down 1 s after the
	// promotion) and promote the old primary, stale data and commit with it:
	// nothing acknowledged is lost that way (the new primary had no
	// replica, so it acknowledged nothing), and the commit is then paid as
	// any open payout. The checks below hold either way.
	killed.Restart()
	sn.WaitReplicas(1)
	waitReplicaCaughtUp(t, sn.Primary())
	// Meanwhile the unlocker credits a block, so the payouts rebuilt now
	// differ from the forgotten one (without it the rebuilt transaction is
	// the forgotten one byte for byte: same balances, inputs and fee rate,
	// deterministic signatures). Had the forgotten transaction left, the
	// chain would pay those addresses by a transaction the ledger does not
	// know, while the ledger still owes them. A replica has the credit
	// before anything depends on it, as a failover may follow.
	e.creditCoinbase(want, 1_000_000)
	waitReplicaCaughtUp(t, sn.Primary())

	e.settle(e.processor(e.config(payment.ModeHot)), want)
	if po, err := e.store.Payout(ctx, lost.ID); err == nil && po.TxID == lost.TxID {
		t.Logf("the old primary's data came back as primary with payout %d; paid once as an open payout", lost.ID)
	} else if st, err := e.node.TxStatus(ctx, mustHash(t, lost.TxID)); err != nil || st.Found {
		t.Fatalf("the forgotten commit's tx %s: found %v (%v); it must never have left", lost.TxID, st.Found, err)
	}
}

// TestPayoutsExactlyOnceKilledAfterReplicatedCommit: the payout process
// (a child, the daemon's store settings) commits a payout, the replica
// acknowledges it (WAIT), and the process is SIGKILLed before it
// broadcasts; then the primary is SIGKILLed too and the replica promoted
// (failoverWithPendingPayout).
func TestPayoutsExactlyOnceKilledAfterReplicatedCommit(t *testing.T) {
	e, sn := newSentinelEnv(t, p2pkh)
	want := e.seedRecipients(10, 6, 4_000_000, 1_000_009) // two payouts of three outputs
	e.runChild("commit", "LODE_TEST_SENTINELS="+strings.Join(sn.SentinelAddrs(), ","))
	e.failoverWithPendingPayout(sentinelFailover{sn}, want, nil)
}

// TestPayoutsExactlyOnceLateReplicaPromoted: the replica is SIGSTOPped with
// its link intact, so a payout commit's WAIT fails and the payout is not
// broadcast, but the commit is already on its way to the replica. The
// primary is SIGKILLed, the replica continued: it applies the commit and is
// promoted, holding a payout that nobody acknowledged
// (failoverWithPendingPayout).
func TestPayoutsExactlyOnceLateReplicaPromoted(t *testing.T) {
	e, sn := newSentinelEnv(t, p2pkh)
	want := e.seedRecipients(20, 6, 5_000_000, 1_000_011) // two payouts of three outputs
	primary := sn.Primary()
	waitReplicaCaughtUp(t, primary)
	replica := otherServer(sn, primary)
	replica.Pause()
	p := e.processor(e.config(payment.ModeHot))
	if _, err := p.RunOnce(context.Background(), false); !errors.Is(err, redisstore.ErrNotReplicated) {
		t.Fatalf("run with the replica stopped: %v, want ErrNotReplicated", err)
	}
	e.failoverWithPendingPayout(sentinelFailover{sn}, want, replica)
}

// failover is the Redis topology whose primary failoverWithPendingPayout
// kills: a Sentinel setup or the {acct} master of a cluster.
type failover interface {
	// killPrimary SIGKILLs the primary and returns it.
	killPrimary() *testenv.Redis
	// waitPromotion waits until a replica replaced old and the test's
	// store reaches it, and returns it.
	waitPromotion(e *env, old *testenv.Redis) *testenv.Redis
	// waitReplica waits until the primary has a replica online that
	// acknowledged what it wrote.
	waitReplica()
}

type sentinelFailover struct{ sn *testenv.RedisSentinel }

func (f sentinelFailover) killPrimary() *testenv.Redis { return f.sn.KillPrimary() }
func (f sentinelFailover) waitPromotion(_ *env, old *testenv.Redis) *testenv.Redis {
	return f.sn.WaitPromotion(old)
}
func (f sentinelFailover) waitReplica() { f.sn.WaitReplicas(1) }

// failoverWithPendingPayout starts from a primary holding one open payout,
// pending and unknown to the node, which its replica has or will have once
// paused (if not nil) is continued. It SIGKILLs the primary (continuing
// paused), waits for the promotion and checks: the new primary has that
// payout pending; a run without a replica does not broadcast it (its record
// is on one copy only, a second failover could still forget it) and commits
// nothing new; once the old primary is back as a replica, the same
// transaction is broadcast and every address is paid exactly once on chain
// (settle).
func (e *env) failoverWithPendingPayout(f failover, want map[string]int64, paused *testenv.Redis) {
	t := e.t
	t.Helper()
	ctx := context.Background()
	open, err := e.store.OpenPayouts(ctx)
	if err != nil || len(open) != 1 || open[0].State != payment.StatePending {
		t.Fatalf("before the failover: open %+v (%v), want one pending payout", open, err)
	}
	committed := open[0]
	if n := e.mempool(); n != 0 {
		t.Fatalf("payout %d was not broadcast, the mempool holds %d transactions", committed.ID, n)
	}

	killed := f.killPrimary()
	if paused != nil {
		paused.Resume()
	}
	promoted := f.waitPromotion(e, killed)
	t.Logf("primary moved from %s to %s with payout %d committed, not broadcast", killed.Addr, promoted.Addr, committed.ID)
	open, err = e.store.OpenPayouts(ctx)
	if err != nil || len(open) != 1 || open[0].TxID != committed.TxID || open[0].State != payment.StatePending {
		t.Fatalf("on the promoted replica: open %+v (%v), want payout %d pending (tx %s)", open, err, committed.ID, committed.TxID)
	}

	p := e.processor(e.config(payment.ModeHot))
	if _, err := p.RunOnce(ctx, false); !errors.Is(err, redisstore.ErrNotReplicated) {
		t.Errorf("run without a replica: %v, want ErrNotReplicated", err)
	}
	if n := e.mempool(); n != 0 {
		t.Errorf("a run without a replica broadcast %d transactions", n)
	}
	killed.Restart()
	f.waitReplica()

	e.settle(p, want)
	po, err := e.store.Payout(ctx, committed.ID)
	if err != nil || po.TxID != committed.TxID {
		t.Fatalf("payout %d: %+v (%v), want the committed tx %s", committed.ID, po, err, committed.TxID)
	}
}

// lagReplica makes the Sentinel primary's replica stale for real (lag).
// It returns the primary and the replica.
func (e *env) lagReplica(sn *testenv.RedisSentinel) (primary, replica *testenv.Redis) {
	e.t.Helper()
	primary = sn.Primary()
	replica = otherServer(sn, primary)
	e.lag(primary, replica)
	return primary, replica
}

// lag makes primary's only replica stale for real: once it caught up, it
// is SIGSTOPped and its replication link filled (fillReplicaLink), so what
// the primary writes next stays in the primary's memory.
func (e *env) lag(primary, replica *testenv.Redis) {
	e.t.Helper()
	waitReplicaCaughtUp(e.t, primary)
	replica.Pause()
	fillReplicaLink(e.t, e, primary)
}

// commitUnacknowledged runs p once with the replica behind (lagReplica):
// the first batch's commit stands on the primary alone and its WAIT times
// out (ErrNotReplicated); the second batch finds its inputs reserved by the
// first. It returns that commit, the one open payout, which must be in
// state st.
func (e *env) commitUnacknowledged(p *payment.Processor, st payment.State) *payment.Payout {
	t := e.t
	t.Helper()
	ctx := context.Background()
	if _, err := p.RunOnce(ctx, false); !errors.Is(err, redisstore.ErrNotReplicated) {
		t.Fatalf("run with the replica behind: %v, want ErrNotReplicated", err)
	}
	open, err := e.store.OpenPayouts(ctx)
	if err != nil || len(open) != 1 || open[0].State != st {
		t.Fatalf("after the run the primary has open payouts %+v (%v), want the one unacknowledged commit, %s", open, err, st)
	}
	return open[0]
}

// promoteStale SIGKILLs the primary and continues the stale replica (from
// lagReplica) at once, so it never receives what the primary held back;
// it checks that Sentinel promotes the replica and that it forgot payout
// id whole (checkForgotten). It returns the killed server.
func (e *env) promoteStale(sn *testenv.RedisSentinel, primary, replica *testenv.Redis, id int64, want map[string]int64) *testenv.Redis {
	t := e.t
	t.Helper()
	killed := sn.KillPrimary()
	replica.Resume()
	if killed != primary {
		t.Fatalf("killed %s, the primary was %s", killed.Addr, primary.Addr)
	}
	if promoted := sn.WaitPromotion(killed); promoted != replica {
		t.Fatalf("promoted %s, want the replica %s", promoted.Addr, replica.Addr)
	}
	e.checkForgotten(id, want)
	return killed
}

// checkForgotten checks the store after a promotion of a replica that never
// had payout id's commit: the payout is unknown, the balances are want
// (none debited), and the ledger adds up.
func (e *env) checkForgotten(id int64, want map[string]int64) {
	t := e.t
	t.Helper()
	ctx := context.Background()
	if po, err := e.store.Payout(ctx, id); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("the promoted replica holds payout %d (%+v, %v): the test did not keep the commit from it", id, po, err)
	}
	bal, err := e.store.Balances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(bal, want) {
		t.Fatalf("balances on the promoted replica %v, want the seeded %v", bal, want)
	}
	e.checkLedger()
}

// otherServer is the data node of sn that is not primary.
func otherServer(sn *testenv.RedisSentinel, primary *testenv.Redis) *testenv.Redis {
	for _, r := range sn.Servers {
		if r != primary {
			return r
		}
	}
	return nil
}

// waitReplicaCaughtUp waits until the primary's replica has acknowledged
// everything the primary wrote.
func waitReplicaCaughtUp(t *testing.T, primary *testenv.Redis) {
	t.Helper()
	testenv.WaitFor(t, 30*time.Second, "the replica to catch up", func() bool {
		master, acked := replicationOffsets(t, primary)
		return acked == master
	})
}

var replicaOffset = regexp.MustCompile(`slave0:.*offset=(\d+)`)

// replicationOffsets returns the primary's replication offset and the
// offset its first replica acknowledged.
func replicationOffsets(t *testing.T, primary *testenv.Redis) (master, acked int64) {
	t.Helper()
	v, err := testenv.RedisDo(primary.Addr, "INFO", "replication")
	if err != nil {
		t.Fatal(err)
	}
	info, _ := v.(string)
	for _, l := range strings.Split(info, "\n") {
		if s, ok := strings.CutPrefix(strings.TrimSpace(l), "master_repl_offset:"); ok {
			master, _ = strconv.ParseInt(s, 10, 64)
		}
	}
	m := replicaOffset.FindStringSubmatch(info)
	if m == nil {
		t.Fatalf("primary %s lists no replica:\n%s", primary.Addr, info)
	}
	acked, _ = strconv.ParseInt(m[1], 10, 64)
	return master, acked
}

var outputMemory = regexp.MustCompile(`omem=(\d+)`)

// fillReplicaLink makes the paused replica's link hold back what the
// primary writes next: it writes 1 MiB values (keys outside the ledger's,
// in the {acct} slot so that on a cluster they go to the master holding
// the ledger) until the primary keeps at least 3 MiB of replication stream in its own
// memory for the replica (CLIENT LIST omem; in Redis 7 that counts from the
// buffer block the replica is being sent, so at least 2 MiB are unsent).
// The kernel's socket buffers between the two are then full, and whatever
// the primary writes afterwards stays in its memory, dying with it.
func fillReplicaLink(t *testing.T, e *env, primary *testenv.Redis) {
	t.Helper()
	ctx := context.Background()
	chunk := strings.Repeat("x", 1<<20)
	for i := range 64 {
		if err := e.rdb.Set(ctx, fmt.Sprintf("%s:{acct}:lag-ballast:%d", testPrefix, i), chunk, 0).Err(); err != nil {
			t.Fatal(err)
		}
		v, err := testenv.RedisDo(primary.Addr, "CLIENT", "LIST", "TYPE", "replica")
		if err != nil {
			t.Fatal(err)
		}
		m := outputMemory.FindStringSubmatch(fmt.Sprint(v))
		if m == nil {
			t.Fatalf("primary %s lists no replica: %v", primary.Addr, v)
		}
		if omem, _ := strconv.ParseInt(m[1], 10, 64); omem >= 3<<20 {
			t.Logf("replica link full after %d MiB: the primary holds %d bytes for it", i+1, omem)
			return
		}
	}
	t.Fatal("64 MiB written and the primary still sent it all towards the paused replica")
}

// creditCoinbase does what the unlocker does when it credits a block: it
// records the matured coinbase of block 5 (paying the test key, which is the
// pool's; the four before fund the pool) and credits every address in want
// perAddress satoshis of it (want is updated), the rest to the fee account.
func (e *env) creditCoinbase(want map[string]int64, perAddress int64) {
	t := e.t
	t.Helper()
	ctx := context.Background()
	hash, err := e.rpc.GetBlockHash(5)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := e.rpc.GetBlock(hash)
	if err != nil {
		t.Fatal(err)
	}
	cb := blk.Transactions[0]
	u := payment.UTXO{OutPoint: wire.OutPoint{Hash: cb.TxHash(), Index: 0}, Value: cb.TxOut[0].Value}
	if err := e.rdb.HSet(ctx, e.store.UTXOsKey(), u.Key(), u.Value).Err(); err != nil {
		t.Fatal(err)
	}
	e.total += u.Value
	rest := u.Value
	for a := range want {
		if err := e.rdb.HIncrBy(ctx, e.store.BalancesKey(), a, perAddress).Err(); err != nil {
			t.Fatal(err)
		}
		want[a] += perAddress
		rest -= perAddress
	}
	if err := e.rdb.IncrBy(ctx, e.store.FeeBalanceKey(), rest).Err(); err != nil {
		t.Fatal(err)
	}
}
