package payment_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/payment"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// TestUnlockerToChain runs the whole money path on real services: shares in
// the ledger, pool blocks found and snapshotted, 100 blocks later the
// unlocker credits them (balances, fee account, pool UTXOs), the processor
// pays, and each miner's address holds on chain exactly what it was
// credited; nothing is created or lost, to the satoshi.
func TestUnlockerToChain(t *testing.T) { forEachNode(t, testUnlockerToChain) }

func testUnlockerToChain(t *testing.T, nodeKind string) {
	e := newEnv(t, nodeKind, p2pkh, 0) // no seeded UTXOs: the unlocker records them
	ctx := context.Background()
	params := e.params
	a, b, c := recipient(t, 1, params), recipient(t, 2, params), recipient(t, 3, params)
	var seq uint64
	record := func(list ...any) {
		batch := &ledger.Batch{Instance: "e2e"}
		for i := 0; i < len(list); i += 2 {
			addr, diff := list[i].(string), list[i+1].(float64)
			u, err := ledger.DiffUnits(diff)
			if err != nil {
				t.Fatal(err)
			}
			seq++
			batch.Shares = append(batch.Shares, ledger.Entry{Seq: seq, Units: u, Share: shares.Share{
				Worker: addr + ".rig", Address: addr, WorkerName: "rig", Difficulty: diff, Time: time.Now()}})
		}
		seq++
		batch.Seq = seq
		if err := e.store.ApplyBatch(ctx, batch, "0"); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := payouts.NewRecorder(payouts.RecorderConfig{Ledger: e.store, MinWindow: 1e9, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var rewards int64
	found := func() {
		hash := e.chain.Generate(1)[0]
		blk, err := e.rpc.GetBlock(hash)
		if err != nil {
			t.Fatal(err)
		}
		fb, err := payouts.NewFoundBlock(blk, e.chain.Height(), a+".rig", e.script)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rec.BlockFound(ctx, fb); err != nil {
			t.Fatal(err)
		}
		rewards += blk.Transactions[0].TxOut[0].Value
	}
	record(a, 3.0, b, 1.0, c, 0.001)
	found()
	record(b, 5.0, a, 0.5)
	found()
	e.chain.Generate(payouts.DefaultMaturity)
	u, err := payouts.NewUnlocker(payouts.UnlockerConfig{Ledger: e.store, Chain: e.node, PayoutScript: e.script,
		FeeBasisPoints: 100, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := u.Step(ctx); err != nil || res.Credited != 2 {
		t.Fatalf("unlocker step: %+v, %v", res, err)
	}
	credited, err := e.store.Balances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.total = rewards
	e.checkLedger() // Σ balances + fee account = Σ UTXOs = Σ rewards
	// c waits for a threshold above its credit.
	if err := e.store.SetThreshold(ctx, c, credited[c]+1); err != nil {
		t.Fatal(err)
	}

	p := e.processor(e.config(payment.ModeHot))
	res, err := p.RunOnce(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Payouts) != 1 {
		t.Fatalf("%d payouts, want 1: %+v", len(res.Payouts), res)
	}
	e.chain.Generate(1)
	if res, err := p.RunOnce(ctx, false); err != nil || res.Open != 0 {
		t.Fatalf("after a block: %v, %+v", err, res)
	}
	got := e.received()
	for addr, v := range credited {
		want := v
		if addr == c {
			want = 0 // below its threshold: stays a balance
		}
		if got[addr] != want {
			t.Errorf("%s: credited %d, received %d on chain, want %d", addr, v, got[addr], want)
		}
	}
	if len(credited) != 3 || credited[a] < 1_000_000 || credited[b] < 1_000_000 {
		t.Fatalf("credits %v", credited)
	}
	left, _ := e.store.Balances(ctx)
	if len(left) != 1 || left[c] != credited[c] {
		t.Fatalf("balances left: %v", left)
	}
	tot := e.checkLedger()
	if tot.Paid != credited[a]+credited[b] {
		t.Fatalf("paid %d, want %d", tot.Paid, credited[a]+credited[b])
	}
}
