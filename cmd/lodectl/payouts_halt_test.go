package main

import (
	"context"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
)

// TestPayoutsHaltedShown: a hot payout the node refuses (its input was
// spent in the mempool outside Lode) halts new payouts; lodectl says so, and
// why, in run, list and show, until the payout is abandoned.
func TestPayoutsHaltedShown(t *testing.T) {
	srv := testenv.StartRedis(t)
	node := testenv.StartBtcd(t)
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
	node.Generate(testenv.CoinbaseMaturity)
	addr := func(i byte) string {
		seed := sha256.Sum256([]byte{'h', i})
		a, _ := btcutil.NewAddressWitnessPubKeyHash(seed[:20], node.Params)
		return a.EncodeAddress()
	}
	s.Client().HSet(ctx, s.BalancesKey(), addr(1), 20_000_000)
	s.Client().Set(ctx, s.FeeBalanceKey(), cb.TxOut[0].Value-20_000_000, 0)

	// Someone spends the pool's coinbase outside Lode; btcd's gettxout does
	// not see mempool spends, so the payout is built and then refused.
	thief := wire.NewMsgTx(2)
	thief.AddTxIn(wire.NewTxIn(&op, nil, nil))
	script, _ := txscript.PayToAddrScript(node.Address)
	thief.AddTxOut(wire.NewTxOut(cb.TxOut[0].Value-100_000, script))
	sig, err := txscript.SignatureScript(thief, 0, script, txscript.SigHashAll, node.Key, true)
	if err != nil {
		t.Fatal(err)
	}
	thief.TxIn[0].SignatureScript = sig
	if _, err := rpc.SendRawTransaction(thief, false); err != nil {
		t.Fatal(err)
	}

	wif, _ := btcutil.NewWIF(node.Key, node.Params, true)
	t.Setenv("LODE_RPC_PASSWORD", node.Pass)
	t.Setenv("LODE_TEST_HALT_WIF", wif.String())
	common := []string{"-redis", srv.Addr, "-prefix", "ctlhalt"}
	nodeArgs := append(append([]string{}, common...), "-network", "regtest", "-rpc", node.RPCURL(), "-rpc-user", node.User,
		"-pool-address", node.Address.EncodeAddress(), "-signing", "hot", "-key-env", "LODE_TEST_HALT_WIF")

	out, errs, code := runCtl(t, append([]string{"payouts", "run"}, nodeArgs...)...)
	if code != 1 || !strings.Contains(out, "payout 1 (txid ") || !strings.Contains(out, "REFUSED by the node (1 failed broadcasts)") ||
		!strings.Contains(out, "new payouts HALTED: payout(s) 1 not on the network") || !strings.Contains(errs, "new payouts halted") {
		t.Fatalf("run: %d\n%s\n%s", code, out, errs)
	}
	// More balance: still nothing new, the same payout tried again.
	s.Client().HSet(ctx, s.BalancesKey(), addr(2), 30_000_000)
	s.Client().DecrBy(ctx, s.FeeBalanceKey(), 30_000_000)
	out, errs, code = runCtl(t, append([]string{"payouts", "run"}, nodeArgs...)...)
	if code != 1 || strings.Contains(out, "payout 2") || !strings.Contains(out, "(2 failed broadcasts)") {
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
	if code != 0 || !strings.Contains(out, "NOT ON THE NETWORK: REFUSED by the node") || !strings.Contains(out, "already spent") {
		t.Fatalf("show: %d\n%s", code, out)
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
