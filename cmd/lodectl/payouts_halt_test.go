package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
)

// TestPayoutsHaltedShown: a hot payout the node refuses halts new payouts;
// lodectl says so, and why, in run, list and show, until the operator's
// remedy works. btcd: the payout's input was spent in the mempool outside
// Lode (btcd's gettxout does not see mempool spends, so the payout is
// built); it is abandoned once that spend confirms. Core: its
// -minrelaytxfee is above the payout's fee rate; prioritisetransaction gets
// the same transaction in and a higher fee floor pays the rest.
func TestPayoutsHaltedShown(t *testing.T) {
	for _, kind := range testenv.NodeKinds {
		t.Run(kind, func(t *testing.T) { testPayoutsHaltedShown(t, kind) })
	}
}

func testPayoutsHaltedShown(t *testing.T, kind string) {
	srv := testenv.StartRedis(t)
	var node testenv.Node
	if kind == testenv.KindCore {
		node = testenv.StartNode(t, kind, "-minrelaytxfee=0.0002") // 20 sat/vB
	} else {
		node = testenv.StartNode(t, kind)
	}
	ctx := context.Background()
	s, err := redisstore.Connect(ctx, redisstore.ConnectConfig{Addr: srv.Addr, Prefix: "ctlhalt"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Client().Close()
	rpc := node.Client()
	h := node.Generate(1)[0]
	blk, err := rpc.GetBlock(h)
	if err != nil {
		t.Fatal(err)
	}
	cb := blk.Transactions[0]
	op := wire.OutPoint{Hash: cb.TxHash(), Index: 0}
	s.Client().HSet(ctx, s.UTXOsKey(), op.String(), cb.TxOut[0].Value)
	funds := cb.TxOut[0].Value
	if kind == testenv.KindCore {
		// A second coinbase, for the payouts after the remedy.
		blk, err := rpc.GetBlock(node.Generate(1)[0])
		if err != nil {
			t.Fatal(err)
		}
		cb2 := blk.Transactions[0]
		s.Client().HSet(ctx, s.UTXOsKey(), wire.OutPoint{Hash: cb2.TxHash()}.String(), cb2.TxOut[0].Value)
		funds += cb2.TxOut[0].Value
	}
	node.Generate(testenv.CoinbaseMaturity)
	addr := func(i byte) string {
		seed := sha256.Sum256([]byte{'h', i})
		a, _ := btcutil.NewAddressWitnessPubKeyHash(seed[:20], node.Chain())
		return a.EncodeAddress()
	}
	s.Client().HSet(ctx, s.BalancesKey(), addr(1), 20_000_000)
	s.Client().Set(ctx, s.FeeBalanceKey(), funds-20_000_000, 0)

	script, _ := txscript.PayToAddrScript(node.MiningAddress())
	if kind == testenv.KindBtcd {
		steal(t, node, op, cb.TxOut[0].Value, script)
	}

	wif, _ := btcutil.NewWIF(node.TestKey(), node.Chain(), true)
	t.Setenv("LODE_TEST_HALT_WIF", wif.String())
	common := []string{"-redis", srv.Addr, "-prefix", "ctlhalt"}
	nodeArgs := append(append(append([]string{}, common...), "-network", "regtest"), nodeFlagsFor(t, node)...)
	nodeArgs = append(nodeArgs, "-pool-address", node.MiningAddress().EncodeAddress(), "-signing", "hot", "-key-env", "LODE_TEST_HALT_WIF")

	why := map[string]string{testenv.KindBtcd: "already spent", testenv.KindCore: "min relay fee not met"}[kind]
	out, errs, code := runCtl(t, append([]string{"payouts", "run"}, nodeArgs...)...)
	if code != 1 || !strings.Contains(out, "payout 1 (txid ") || !strings.Contains(out, "REFUSED by the node (1 failed broadcasts)") ||
		!strings.Contains(out, why) || !strings.Contains(out, "new payouts HALTED: payout(s) 1 not on the network") ||
		!strings.Contains(errs, "new payouts halted") {
		t.Fatalf("run: %d\n%s\n%s", code, out, errs)
	}
	// More balance: still nothing new, the same payout tried again.
	s.Client().HSet(ctx, s.BalancesKey(), addr(2), 30_000_000)
	s.Client().DecrBy(ctx, s.FeeBalanceKey(), 30_000_000)
	out, errs, code = runCtl(t, append([]string{"payouts", "run"}, nodeArgs...)...)
	if code != 1 || strings.Contains(out, "payout 2") || !strings.Contains(out, "(2 failed broadcasts)") || strings.Contains(out, "fee rate 0") {
		t.Fatalf("second run: %d\n%s\n%s", code, out, errs)
	}
	if bal, _ := s.Balances(ctx); bal[addr(2)] != 30_000_000 {
		t.Fatalf("balance debited while halted: %v", bal)
	}
	out, _, code = runCtl(t, append([]string{"payouts", "list"}, common...)...)
	if code != 0 || !strings.Contains(out, "REFUSED by the node (2 failed broadcasts): ") || !strings.Contains(out, "new payouts HALTED: payout(s) 1") {
		t.Fatalf("list: %d\n%s", code, out)
	}
	out, _, code = runCtl(t, append(append([]string{"payouts", "show"}, common...), "1")...)
	if code != 0 || !strings.Contains(out, "NOT ON THE NETWORK: REFUSED by the node") || !strings.Contains(out, why) {
		t.Fatalf("show: %d\n%s", code, out)
	}

	if kind == testenv.KindCore {
		// The operator pays the node more for it, and raises the floor.
		po, err := s.Payout(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		txid, _ := json.Marshal(po.TxID)
		if _, err := node.Client().RawRequest("prioritisetransaction", []json.RawMessage{txid, json.RawMessage("0"),
			json.RawMessage("100000")}); err != nil {
			t.Fatal(err)
		}
		out, errs, code = runCtl(t, append([]string{"payouts", "run", "-fee-floor", "25"}, nodeArgs...)...)
		if code != 0 || !strings.Contains(out, "earlier payout 1 is now broadcast ("+po.TxID+")") ||
			!strings.Contains(out, "payout 2 paid 0.30000000 BTC") || strings.Contains(out, "HALTED") {
			t.Fatalf("run after prioritisetransaction: %d\n%s\n%s", code, out, errs)
		}
		return
	}
	// The conflict confirms: the payout can never be mined; abandon it and
	// payouts resume (the stolen coinbase is gone, so nothing to pay from).
	node.Generate(1)
	out, errs, code = runCtl(t, append(append([]string{"payouts", "abandon"}, nodeArgs...), "1")...)
	if code != 0 || !strings.Contains(out, "payout 1 abandoned") {
		t.Fatalf("abandon: %d\n%s\n%s", code, out, errs)
	}
	out, _, code = runCtl(t, append([]string{"payouts", "list"}, common...)...)
	if code != 0 || strings.Contains(out, "HALTED") {
		t.Fatalf("list after abandon: %d\n%s", code, out)
	}
}

// steal spends the pool's coinbase outside Lode, into the mempool.
func steal(t *testing.T, node testenv.Node, op wire.OutPoint, value int64, script []byte) {
	t.Helper()
	thief := wire.NewMsgTx(2)
	thief.AddTxIn(wire.NewTxIn(&op, nil, nil))
	thief.AddTxOut(wire.NewTxOut(value-100_000, script))
	sig, err := txscript.SignatureScript(thief, 0, script, txscript.SigHashAll, node.TestKey(), true)
	if err != nil {
		t.Fatal(err)
	}
	thief.TxIn[0].SignatureScript = sig
	if _, err := node.Client().SendRawTransaction(thief, false); err != nil {
		t.Fatal(err)
	}
}
