package payment_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/lode-pool/lode/payouts/payment"
)

func TestAbandon(t *testing.T) { forEachNode(t, testAbandon) }

func testAbandon(t *testing.T, nodeKind string) {
	e := newEnv(t, nodeKind, p2pkh, 2)
	ctx := context.Background()
	want := map[string]int64{}
	for i := 0; i < 2; i++ {
		want[recipient(t, i, e.params)] = int64(7_000_000 + i)
	}
	e.seed(want)
	balances := func() map[string]int64 {
		b, err := e.store.Balances(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	// An unsigned cold payout nobody signed: safe to give back.
	cold := e.processor(e.config(payment.ModeCold))
	res, err := cold.RunOnce(ctx, false)
	if err != nil || len(res.Payouts) != 1 {
		t.Fatalf("cold run: %v, %+v", err, res)
	}
	id := res.Payouts[0].ID
	if len(balances()) != 0 {
		t.Fatalf("balances not debited: %v", balances())
	}
	po, lost, err := cold.Abandon(ctx, id)
	if err != nil || po.State != payment.StateAbandoned || len(lost) != 0 {
		t.Fatalf("abandon unsigned: %+v, lost %v, %v", po, lost, err)
	}
	if b := balances(); len(b) != 2 || b[recipient(t, 0, e.params)] != want[recipient(t, 0, e.params)] {
		t.Fatalf("balances after abandon: %v", b)
	}
	if tot := e.checkLedger(); tot.Paid != 0 || tot.Fees != 0 {
		t.Fatalf("totals after abandon: %+v", tot)
	}
	if _, _, err := cold.Abandon(ctx, id); !errors.Is(err, payment.ErrWrongState) {
		t.Fatalf("second abandon: %v, want ErrWrongState", err)
	}
	// Signed after all and handed in: refused, naming the abandoned payout.
	signed, _ := payment.ReadPSBT(strings.NewReader(res.Payouts[0].PSBT))
	signPSBT(t, signed, e.key, p2pkh)
	if _, err := cold.BroadcastPSBT(ctx, signed); !errors.Is(err, payment.ErrPSBTMismatch) ||
		!strings.Contains(err.Error(), "is abandoned") {
		t.Fatalf("signed psbt of an abandoned payout: %v, want it refused as abandoned", err)
	}

	// A hot payout in the mempool could still confirm: refused.
	hot := e.processor(e.config(payment.ModeHot))
	res, err = hot.RunOnce(ctx, false)
	if err != nil || len(res.Payouts) != 1 || res.Payouts[0].State != payment.StateBroadcast {
		t.Fatalf("hot run: %v, %+v", err, res)
	}
	if _, _, err := hot.Abandon(ctx, res.Payouts[0].ID); !errors.Is(err, payment.ErrWrongState) {
		t.Fatalf("abandon of a broadcast payout: %v, want ErrWrongState", err)
	}
	e.chain.Generate(1)
	if res, err := hot.RunOnce(ctx, false); err != nil || res.Open != 0 {
		t.Fatalf("confirm: %v, %+v", err, res)
	}
	if got := e.received(); got[recipient(t, 0, e.params)] != want[recipient(t, 0, e.params)] {
		t.Fatalf("on chain: %v", got)
	}
	e.checkLedger()
}

// TestAbandonAfterConflict: someone spends a pool UTXO outside Lode right
// after the payout was committed; the payout can never confirm, stays
// pending with the node's refusal, and only then may be abandoned.
func TestAbandonAfterConflict(t *testing.T) { forEachNode(t, testAbandonAfterConflict) }

func testAbandonAfterConflict(t *testing.T, nodeKind string) {
	e := newEnv(t, nodeKind, p2pkh, 1)
	ctx := context.Background()
	a := recipient(t, 3, e.params)
	e.seed(map[string]int64{a: 9_000_000})
	p := e.processor(e.config(payment.ModeHot))
	var thief *wire.MsgTx
	payment.SetTestHooks(p, func(po *payment.Payout) {
		op, err := wire.NewOutPointFromString(po.Inputs[0].OutPoint)
		if err != nil {
			t.Error(err)
			return
		}
		thief = wire.NewMsgTx(2)
		thief.AddTxIn(wire.NewTxIn(op, nil, nil))
		thief.AddTxOut(wire.NewTxOut(po.Inputs[0].Value-100_000, e.script))
		sig, err := txscript.SignatureScript(thief, 0, e.script, txscript.SigHashAll, e.key, true)
		if err != nil {
			t.Error(err)
			return
		}
		thief.TxIn[0].SignatureScript = sig
		if _, err := e.rpc.SendRawTransaction(thief, true); err != nil {
			t.Errorf("conflicting spend: %v", err)
		}
	}, nil)
	res, err := p.RunOnce(ctx, false)
	if !errors.Is(err, payment.ErrHalted) || len(res.Payouts) != 1 {
		t.Fatalf("run: %v, %+v; want one payout and new payouts halted", err, res)
	}
	po := res.Payouts[0]
	if po.State != payment.StatePending || po.LastError == "" || po.Refusal == "" {
		t.Fatalf("payout after a refused broadcast: state %s, last error %q, refusal %q", po.State, po.LastError, po.Refusal)
	}
	// Still unspent on chain (the conflict is only in the mempool): refused.
	if _, _, err := p.Abandon(ctx, po.ID); !errors.Is(err, payment.ErrWrongState) {
		t.Fatalf("abandon before the conflict confirmed: %v, want ErrWrongState", err)
	}
	e.chain.Generate(1)
	got, lost, err := p.Abandon(ctx, po.ID)
	if err != nil || got.State != payment.StateAbandoned || len(lost) != 1 {
		t.Fatalf("abandon: %+v, lost %v, %v", got, lost, err)
	}
	bal, _ := e.store.Balances(ctx)
	if bal[a] != 9_000_000 {
		t.Fatalf("balance after abandon = %d, want 9000000", bal[a])
	}
	tot, _ := e.store.Totals(ctx)
	if tot.Paid != 0 || tot.Fees != 0 {
		t.Fatalf("totals after abandon: %+v", tot)
	}
	if u, _ := e.store.UTXOs(ctx); len(u) != 0 {
		t.Fatalf("the stolen input came back: %v", u)
	}
	if open, _ := e.store.OpenPayouts(ctx); len(open) != 0 {
		t.Fatalf("open after abandon: %+v", open)
	}
	// Abandoned, it no longer holds new payouts back.
	if err := p.CheckBroadcasts(ctx); err != nil {
		t.Fatalf("readiness after abandon: %v", err)
	}
	// (It cannot pay: the pool's only UTXO was stolen.)
	if res, err := p.RunOnce(ctx, false); errors.Is(err, payment.ErrHalted) || !errors.Is(err, payment.ErrInsufficientFunds) || len(res.Halted) != 0 {
		t.Fatalf("run after abandon: %v, halted %+v; want insufficient funds, not halted", err, res.Halted)
	}
	if thief == nil {
		t.Fatal("hook did not run")
	}
}

// TestRunLoop runs the daemon's loop until its first run is reported.
func TestRunLoop(t *testing.T) { forEachNode(t, testRunLoop) }

func testRunLoop(t *testing.T, nodeKind string) {
	e := newEnv(t, nodeKind, p2pkh, 1)
	a := recipient(t, 5, e.params)
	e.seed(map[string]int64{a: 2_000_000})
	c := e.config(payment.ModeCold)
	done := make(chan *payment.Result, 1)
	c.AfterRun = func(res *payment.Result, err error) {
		if err != nil {
			t.Errorf("run: %v", err)
		}
		select {
		case done <- res:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error)
	p := e.processor(c)
	go func() { stopped <- p.Run(ctx) }()
	res := <-done
	cancel()
	if err := <-stopped; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if res == nil || len(res.Payouts) != 1 || res.Payouts[0].State != payment.StateUnsigned || res.Payouts[0].PSBT == "" {
		t.Fatalf("first run: %+v", res)
	}
}
