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

func TestPaymentRPCs(t *testing.T) {
	node := testenv.StartBtcd(t)
	c := newClient(t, node)
	ctx := testCtx(t)
	// btcd has no estimatesmartfee and no estimate on a fresh regtest chain:
	// the fallback to estimatefee is taken and its refusal reported.
	if rate, err := c.EstimateFeeRate(ctx, 6); err == nil || !strings.Contains(err.Error(), "estimatefee") {
		t.Fatalf("EstimateFeeRate = %d, %v; want an estimatefee error", rate, err)
	}
	script, _ := txscript.PayToAddrScript(node.WitnessAddress)
	tx := node.SendTx(wire.NewTxOut(123_456_789, script))
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
	// Now that a block carried a fee-paying transaction btcd estimates.
	if rate, err := c.EstimateFeeRate(ctx, 6); err != nil || rate < 1000 {
		t.Fatalf("EstimateFeeRate after a mined tx = %d, %v", rate, err)
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
			node := testenv.StartBtcd(t, tc.args...)
			c := newClient(t, node)
			ctx := testCtx(t)
			if err := c.CheckTxIndex(ctx); err != nil {
				t.Fatalf("before the first block: %v, want nil", err)
			}
			node.Generate(2)
			if err := c.CheckTxIndex(ctx); !errors.Is(err, tc.wantErr) {
				t.Fatalf("CheckTxIndex = %v, want %v", err, tc.wantErr)
			}
		})
	}
}
