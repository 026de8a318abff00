//go:build e2e

package payment_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil/psbt"

	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/payouts/payment"
)

// TestColdPayoutsExactlyOnceStaleReplicaPromoted: cold mode (PSBTs signed
// offline) through a Sentinel failover to a stale replica. The replica lags
// for real (SIGSTOPped, its replication link full, as in
// TestPayoutsExactlyOnceStaleReplicaPromoted), so a cold payout's commit
// stands on the primary alone and its WAIT fails. Its PSBT is exported from
// the record (lodectl payouts show -psbt-out), signed with the pool's key as
// an offline signer would, and handed in: it is recorded signed but not
// broadcast while no replica holds the commit, nor when handed in again.
// Then the primary is SIGKILLed and the stale replica promoted, where the
// commit never happened: the signed PSBT is now an orphan and is refused
// (no open payout has its unsigned transaction, its inputs are reserved for
// nothing), before and after the old primary is back as a replica, and
// nothing is debited or broadcast. The next run builds new PSBTs for the
// same balances (at a higher fee rate, so they differ from the forgotten
// one); signed and handed in, they are broadcast, and the orphan is refused
// still, its inputs now reserved by them; every address is paid exactly once
// on chain (read from btcd) and the ledger on the new primary agrees with
// the chain to the satoshi (settle).
//
// It runs for a pool address of each kind the PSBT path signs: P2PKH
// (inputs carry the whole previous transaction), P2WPKH and P2TR (witness
// UTXOs; a key-path Schnorr signature for P2TR). The three run at the same
// time, each with its own Redis and node: most of a run is spent waiting
// for Sentinel (the failover, the old primary's conversion into a replica).
// They are started from goroutines rather than with t.Parallel, which -parallel
// (GOMAXPROCS, 2 on CI) would limit to two at a time.
func TestColdPayoutsExactlyOnceStaleReplicaPromoted(t *testing.T) {
	var wg sync.WaitGroup
	for i, kind := range []poolKind{p2pkh, p2wpkh, p2tr} {
		wg.Go(func() {
			t.Run(string(kind), func(t *testing.T) { testColdPayoutsStaleReplicaPromoted(t, kind, 30+6*i) })
		})
	}
	wg.Wait()
}

// testColdPayoutsStaleReplicaPromoted is TestColdPayoutsExactlyOnceStaleReplicaPromoted
// for a pool address of the given kind, paying six recipients from first
// on.
func testColdPayoutsStaleReplicaPromoted(t *testing.T, kind poolKind, first int) {
	e, sn := newSentinelEnv(t, kind)
	ctx := context.Background()
	want := e.seedRecipients(first, 6, 6_000_000, 1_000_013) // two payouts of three outputs
	primary, replica := e.lagReplica(sn)

	// Run 1: the first batch's commit (unsigned, with its PSBT) stands on
	// the primary alone.
	before := e.mempool()
	p := e.processor(e.config(payment.ModeCold))
	broadcasts := 0
	payment.SetTestHooks(p, nil, func(*payment.Payout) { broadcasts++ })
	lost := e.commitUnacknowledged(p, payment.StateUnsigned)

	// The operator exports the PSBT from the record and signs it offline.
	packet, err := payment.ReadPSBT(strings.NewReader(lost.PSBT))
	if err != nil {
		t.Fatal(err)
	}
	signPSBT(t, packet, e.key, e.kind)
	var signed bytes.Buffer
	if err := packet.Serialize(&signed); err != nil {
		t.Fatal(err)
	}
	orphan := func() *psbt.Packet { // BroadcastPSBT finalizes the packet it is given
		t.Helper()
		pk, err := payment.ReadPSBT(bytes.NewReader(signed.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		return pk
	}

	// Handed in with the replica still behind: recorded signed on the
	// primary, not broadcast; handed in again (the payout is pending now)
	// and a run that finds it pending: still not broadcast.
	po, err := p.BroadcastPSBT(ctx, orphan())
	if !errors.Is(err, redisstore.ErrNotReplicated) {
		t.Fatalf("signed psbt handed in with the replica behind: %v, want ErrNotReplicated", err)
	}
	if po == nil || po.ID != lost.ID || po.State != payment.StatePending {
		t.Fatalf("signed psbt handed in with the replica behind: payout %+v, want payout %d pending", po, lost.ID)
	}
	if _, err := p.BroadcastPSBT(ctx, orphan()); !errors.Is(err, redisstore.ErrNotReplicated) {
		t.Errorf("signed psbt handed in again with the replica behind: %v, want ErrNotReplicated", err)
	}
	if _, err := p.RunOnce(ctx, false); !errors.Is(err, redisstore.ErrNotReplicated) {
		t.Errorf("cold run with the signed payout pending and the replica behind: %v, want ErrNotReplicated", err)
	}
	if n := e.mempool(); n != before || broadcasts != 0 {
		t.Fatalf("%d payouts broadcast (mempool %d → %d) whose commit no replica had", broadcasts, before, n)
	}
	signedTxID := po.TxID

	// The primary dies with the commit; the replica, continued at once,
	// never receives it and is promoted.
	killed := e.promoteStale(sn, primary, replica, lost.ID, want)
	t.Logf("primary %s died holding payout %d signed (tx %s); %s promoted without it", killed.Addr, lost.ID, signedTxID, replica.Addr)

	// The signed PSBT of the forgotten payout is an orphan: refused, with
	// nothing debited, reserved or broadcast.
	ledger := e.ledgerSnapshot()
	refuseOrphan := func(when string) {
		t.Helper()
		po, err := p.BroadcastPSBT(ctx, orphan())
		if !errors.Is(err, payment.ErrPSBTMismatch) || po != nil {
			t.Fatalf("orphan psbt handed in %s: payout %+v, %v; want it refused (ErrPSBTMismatch)", when, po, err)
		}
		if msg := err.Error(); !strings.Contains(msg, lost.UnsignedTxID) || !strings.Contains(msg, "not reserved") {
			t.Errorf("orphan psbt handed in %s: %q does not say which transaction and that its inputs are not reserved", when, msg)
		}
		t.Logf("orphan psbt handed in %s: %v", when, err)
		if n := e.mempool(); n != before || broadcasts != 0 {
			t.Fatalf("orphan psbt handed in %s: %d broadcasts, mempool %d → %d", when, broadcasts, before, n)
		}
		if got := e.ledgerSnapshot(); got != ledger {
			t.Fatalf("orphan psbt handed in %s changed the ledger:\n%s\nwas:\n%s", when, got, ledger)
		}
	}
	refuseOrphan("on the promoted replica")

	// The old primary returns with its data, the commit in it, and becomes
	// a replica whose full resync drops the commit. (A Sentinel on the
	// loaded machine may fail over once more first and promote it, commit
	// and all: see TestPayoutsExactlyOnceStaleReplicaPromoted. Then the
	// payout is back, signed and pending, and is paid once as an open
	// payout; the checks below allow it.)
	killed.Restart()
	sn.WaitReplicas(1)
	waitReplicaCaughtUp(t, sn.Primary())
	back, err := e.store.Payout(ctx, lost.ID)
	cameBack := err == nil && back.UnsignedTxID == lost.UnsignedTxID
	if cameBack {
		t.Logf("the old primary's data came back as primary with payout %d (%s)", lost.ID, back.State)
	} else {
		refuseOrphan("with the old primary back as a replica")
	}

	// The next runs build new PSBTs for the same balances (committed, and
	// acknowledged, once the new primary has a replica); each is signed
	// and handed in, and broadcast. The operator raised the fee floor
	// above the forgotten payout's rate meanwhile: otherwise the first is
	// the forgotten transaction byte for byte (same balances, inputs and
	// fee rate), and the orphan would be a valid signature of it, so
	// nothing would tell whether it left. (Its rate is the floor on a
	// young regtest chain; after btcd mined the 432 blocks segwit needs,
	// its estimatefee answers some 30 sat/vB, above a doubled floor.)
	cfg := e.config(payment.ModeCold)
	cfg.FeeRateFloor = 2 * max(payment.DefaultFeeRateFloor, lost.FeeRate)
	cfg.FeeRateCap = max(payment.DefaultFeeRateCap, cfg.FeeRateFloor)
	p = e.processor(cfg)
	payment.SetTestHooks(p, nil, func(*payment.Payout) { broadcasts++ })
	lastErr := ""
	var rebuilt []*payment.Payout
	testenv.WaitFor(t, 60*time.Second, "every balance committed in a payout", func() bool {
		res, err := p.RunOnce(ctx, false)
		if err != nil && err.Error() != lastErr {
			t.Logf("run: %v", err)
			lastErr = err.Error()
		}
		if res != nil {
			rebuilt = append(rebuilt, res.Payouts...)
		}
		return err == nil && countBalances(t, e) == 0
	})
	debits := map[string]int64{}
	for _, po := range rebuilt {
		if po.State != payment.StateUnsigned || po.PSBT == "" {
			t.Fatalf("rebuilt payout %d is %s with a psbt of %d bytes, want unsigned with a psbt", po.ID, po.State, len(po.PSBT))
		}
		for _, o := range po.Outputs {
			debits[o.Address] += o.Debit
		}
	}
	if !cameBack && !maps.Equal(debits, want) {
		t.Fatalf("the new payouts debit %v, want the seeded balances %v", debits, want)
	}
	open, err := e.store.OpenPayouts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, po := range open {
		if po.State != payment.StateUnsigned {
			continue
		}
		pk, err := payment.ReadPSBT(strings.NewReader(po.PSBT))
		if err != nil {
			t.Fatal(err)
		}
		signPSBT(t, pk, e.key, e.kind)
		got, err := p.BroadcastPSBT(ctx, pk)
		if err != nil || got.State != payment.StateBroadcast {
			t.Fatalf("signed psbt of payout %d: %+v, %v; want it broadcast", po.ID, got, err)
		}
	}

	// The orphan handed in once more: refused, its inputs now reserved by
	// the new payouts; nothing more reaches the node.
	for _, po := range rebuilt {
		if po.UnsignedTxID == lost.UnsignedTxID {
			t.Fatalf("payout %d (fee rate %d) rebuilt the forgotten payout's transaction %s byte for byte (fee rate %d)",
				po.ID, po.FeeRate, lost.UnsignedTxID, lost.FeeRate)
		}
	}
	inMempool := e.mempool()
	po, err = p.BroadcastPSBT(ctx, orphan())
	t.Logf("orphan psbt handed in after the new payouts: %v", err)
	if !cameBack && !errors.Is(err, payment.ErrPSBTMismatch) {
		t.Errorf("orphan psbt handed in after the new payouts: payout %+v, %v; want it refused", po, err)
	}
	if n := e.mempool(); n != inMempool {
		t.Fatalf("orphan psbt handed in after the new payouts: mempool %d → %d", inMempool, n)
	}

	e.settle(p, want)
	if !cameBack {
		if st, err := e.node.TxStatus(ctx, mustHash(t, signedTxID)); err != nil || st.Found {
			t.Fatalf("the orphan's tx %s: found %v (%v); it must never have left", signedTxID, st.Found, err)
		}
	}
}
