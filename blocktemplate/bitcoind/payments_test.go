package bitcoind

import (
	"errors"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/lode-pool/lode/internal/testenv"
)

// TestPaymentRPCs runs the payout processor's RPCs against btcd and Core:
// broadcast (sendrawtransaction, which on Core 28+ needs an rpcclient that
// reads getnetworkinfo's warnings array), look-ups through the mempool and
// the transaction index, re-broadcasts, a refused double spend and the fee
// estimate with its "no estimate yet" answer.
func TestPaymentRPCs(t *testing.T) {
	testenv.ForEachNode(t, testPaymentRPCs)
}

func testPaymentRPCs(t *testing.T, node testenv.Node) {
	c := newClient(t, node)
	ctx := testCtx(t)
	// A fresh regtest chain has no fee estimate. Core answers
	// estimatesmartfee with "Insufficient data or no feerate found"; btcd
	// has no estimatesmartfee, so the fallback to estimatefee is taken and
	// its refusal reported. Either way an error, never a made-up rate.
	wantNoEstimate := "estimatefee"
	if node.Kind() == testenv.KindCore {
		wantNoEstimate = "Insufficient data"
	}
	if rate, err := c.EstimateFeeRate(ctx, 6); err == nil || !strings.Contains(err.Error(), wantNoEstimate) {
		t.Fatalf("EstimateFeeRate = %d, %v; want an error containing %q", rate, err, wantNoEstimate)
	}
	script, _ := txscript.PayToAddrScript(node.MiningAddress())
	// The node makes the funding transaction (with our own key)...
	funding := node.SendTx(wire.NewTxOut(200_000_000, script))
	node.Generate(1)
	// ...and our client broadcasts the spend, as the payout processor does.
	tx := wire.NewMsgTx(wire.TxVersion)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: funding.TxHash(), Index: 0}, nil, nil))
	tx.AddTxOut(wire.NewTxOut(123_456_789, script))
	tx.AddTxOut(wire.NewTxOut(200_000_000-123_456_789-10_000, script))
	sig, err := txscript.SignatureScript(tx, 0, script, txscript.SigHashAll, node.TestKey(), true)
	if err != nil {
		t.Fatal(err)
	}
	tx.TxIn[0].SignatureScript = sig
	if err := c.SendRawTransaction(ctx, tx); err != nil {
		t.Fatalf("SendRawTransaction on %s: %v", node.Kind(), err)
	}
	txid := tx.TxHash()

	st, err := c.TxStatus(ctx, txid)
	if err != nil || !st.Found || st.Confirmations != 0 {
		t.Fatalf("mempool tx: %+v, %v", st, err)
	}
	// The node already has it: not an error (a restart re-broadcasts).
	if err := c.SendRawTransaction(ctx, tx); err != nil {
		t.Fatalf("re-broadcast from the mempool: %v", err)
	}
	// (btcd's gettxout ignores spends in its mempool, Core's does not; the
	// processor never relies on either.)
	spent := tx.TxIn[0].PreviousOutPoint
	node.Generate(1)
	if out, err := c.GetTxOut(ctx, spent, true); err != nil || out != nil {
		t.Fatalf("gettxout of an output spent on chain = %+v, %v; want nil", out, err)
	}
	st, err = c.TxStatus(ctx, txid)
	if err != nil || !st.Found || st.Confirmations != 1 || st.BlockHash == "" {
		t.Fatalf("mined tx: %+v, %v", st, err)
	}
	if err := c.SendRawTransaction(ctx, tx); err != nil {
		t.Fatalf("re-broadcast of a mined tx: %v", err)
	}
	out, err := c.GetTxOut(ctx, wire.OutPoint{Hash: txid, Index: 0}, false)
	if err != nil || out == nil || out.Value != 123_456_789 || string(out.PkScript) != string(script) || out.Coinbase || out.Confirmations != 1 {
		t.Fatalf("gettxout = %+v, %v", out, err)
	}
	full, err := c.GetRawTransaction(ctx, txid)
	if err != nil || full.TxHash() != txid {
		t.Fatalf("getrawtransaction = %v, %v", full, err)
	}
	unknown := chainhash.DoubleHashH([]byte("no such tx"))
	if st, err := c.TxStatus(ctx, unknown); err != nil || st.Found {
		t.Fatalf("unknown tx: %+v, %v; want not found, no error", st, err)
	}
	// A transaction spending a spent output is a real rejection.
	double := tx.Copy()
	double.TxOut[0].Value--
	if err := c.SendRawTransaction(ctx, double); err == nil {
		t.Fatal("double spend accepted")
	}
	// Now that a block carried a fee-paying transaction btcd estimates
	// (Core needs far more blocks and transactions than a test makes).
	if node.Kind() == testenv.KindBtcd {
		if rate, err := c.EstimateFeeRate(ctx, 6); err != nil || rate < 1000 {
			t.Fatalf("EstimateFeeRate after a mined tx = %d, %v", rate, err)
		}
	}
}

func TestAlreadyKnownAndRates(t *testing.T) {
	known := []error{
		&btcjson.RPCError{Code: btcjson.ErrRPCTxAlreadyInChain, Message: "TX rejected: transaction already exists"},
		errors.New("-26: txn-already-in-mempool"),
		&btcjson.RPCError{Code: btcjson.ErrRPCTxRejected, Message: "TX rejected: already have transaction in mempool 9a06"},
		errors.New("-27: Transaction already in block chain"),
	}
	for _, err := range known {
		if !alreadyKnown(err) {
			t.Errorf("alreadyKnown(%v) = false", err)
		}
	}
	if alreadyKnown(&btcjson.RPCError{Code: btcjson.ErrRPCTxRejected, Message: "TX rejected: orphan"}) {
		t.Error("a rejection counted as already known")
	}
	rates := []struct {
		btc  float64
		sats int64
		ok   bool
	}{{0.00001, 1000, true}, {0.00012345, 12345, true}, {0, 0, false}, {-1, 0, false}, {2, 0, false}}
	for _, r := range rates {
		got, err := btcPerKvB(r.btc)
		if (err == nil) != r.ok || got != r.sats {
			t.Errorf("btcPerKvB(%v) = %d, %v", r.btc, got, err)
		}
	}
}

// TestCheckTxIndex: the payout processor needs confirmed transactions to be
// found by txid; a node without a transaction index is refused, not
// mistaken for one on which a confirmed payout was never mined.
func TestCheckTxIndex(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr error
	}{
		{"with --txindex", nil, nil},
		{"without a transaction index", []string{testenv.NoTxIndex}, ErrNoTxIndex},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testenv.ForEachNode(t, func(t *testing.T, node testenv.Node) {
				c := newClient(t, node)
				ctx := testCtx(t)
				if err := c.CheckTxIndex(ctx); err != nil {
					t.Fatalf("before the first block: %v, want nil", err)
				}
				node.Generate(2)
				if err := c.CheckTxIndex(ctx); !errors.Is(err, tc.wantErr) {
					t.Fatalf("CheckTxIndex = %v, want %v", err, tc.wantErr)
				}
			}, tc.args...)
		})
	}
}
