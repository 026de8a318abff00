package bitcoind

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/wire"

	"github.com/lode-pool/lode/payouts/payment"
)

// PaymentNode gives the payout processor the node RPCs it needs
// (sendrawtransaction, getrawtransaction, gettxout, estimatesmartfee or
// estimatefee) on top of an rpcclient.Client. It works with Bitcoin Core and
// btcd and needs no node wallet; getrawtransaction of confirmed payouts needs
// -txindex (btcd --txindex).
type PaymentNode struct {
	rpc *rpcclient.Client
}

var _ payment.Node = (*PaymentNode)(nil)

// NewPaymentNode wraps c. The client is not closed by PaymentNode.
func NewPaymentNode(c *rpcclient.Client) *PaymentNode { return &PaymentNode{rpc: c} }

// call runs a blocking rpcclient call and gives up when ctx is done (the
// call itself finishes in the background; rpcclient has no context).
func call[T any](ctx context.Context, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

func rpcCode(err error) (btcjson.RPCErrorCode, bool) {
	var re *btcjson.RPCError
	if errors.As(err, &re) {
		return re.Code, true
	}
	return 0, false
}

// GetTxOut returns the unspent output, or nil when it is spent (mempool
// included) or unknown.
func (n *PaymentNode) GetTxOut(ctx context.Context, op wire.OutPoint) (*payment.TxOut, error) {
	res, err := call(ctx, func() (*btcjson.GetTxOutResult, error) { return n.rpc.GetTxOut(&op.Hash, op.Index, true) })
	if err != nil {
		return nil, fmt.Errorf("gettxout %s: %w", op, err)
	}
	if res == nil {
		return nil, nil
	}
	amt, err := btcutil.NewAmount(res.Value)
	if err != nil {
		return nil, fmt.Errorf("gettxout %s: value %v: %w", op, res.Value, err)
	}
	script, err := hex.DecodeString(res.ScriptPubKey.Hex)
	if err != nil {
		return nil, fmt.Errorf("gettxout %s: script: %w", op, err)
	}
	return &payment.TxOut{Value: int64(amt), PkScript: script, Confirmations: res.Confirmations, Coinbase: res.Coinbase}, nil
}

// alreadyKnown reports a sendrawtransaction refusal that means the node
// already has the transaction (btcd: -27 "transaction already exists";
// Core: -27 "already in block chain" / "outputs already in utxo set",
// "txn-already-in-mempool", "txn-already-known").
func alreadyKnown(err error) bool {
	if code, ok := rpcCode(err); ok && code == btcjson.ErrRPCTxAlreadyInChain {
		return true
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "txn-already-in-mempool") || strings.Contains(msg, "txn-already-known") ||
		strings.Contains(msg, "already in block chain") || strings.Contains(msg, "already exists")
}

// SendRawTransaction broadcasts tx; a transaction the node already has is
// not an error.
func (n *PaymentNode) SendRawTransaction(ctx context.Context, tx *wire.MsgTx) error {
	_, err := call(ctx, func() (*chainhash.Hash, error) { return n.rpc.SendRawTransaction(tx, false) })
	if err != nil && !alreadyKnown(err) {
		return fmt.Errorf("sendrawtransaction %s: %w", tx.TxHash(), err)
	}
	return nil
}

// TxStatus looks txid up with getrawtransaction (mempool, then the chain
// through the transaction index).
func (n *PaymentNode) TxStatus(ctx context.Context, txid chainhash.Hash) (payment.TxStatus, error) {
	res, err := call(ctx, func() (*btcjson.TxRawResult, error) { return n.rpc.GetRawTransactionVerbose(&txid) })
	if err != nil {
		if code, ok := rpcCode(err); ok && code == btcjson.ErrRPCNoTxInfo {
			return payment.TxStatus{}, nil
		}
		return payment.TxStatus{}, fmt.Errorf("getrawtransaction %s: %w", txid, err)
	}
	return payment.TxStatus{Found: true, Confirmations: int64(res.Confirmations), BlockHash: res.BlockHash}, nil
}

// GetRawTransaction returns the transaction txid.
func (n *PaymentNode) GetRawTransaction(ctx context.Context, txid chainhash.Hash) (*wire.MsgTx, error) {
	tx, err := call(ctx, func() (*btcutil.Tx, error) { return n.rpc.GetRawTransaction(&txid) })
	if err != nil {
		return nil, fmt.Errorf("getrawtransaction %s: %w", txid, err)
	}
	return tx.MsgTx(), nil
}

// EstimateFeeRate asks estimatesmartfee (Bitcoin Core) and falls back to
// estimatefee (btcd, which lacks estimatesmartfee). The answer is converted
// from BTC/kvB to sat/kvB.
func (n *PaymentNode) EstimateFeeRate(ctx context.Context, target int) (int64, error) {
	smart, err := call(ctx, func() (*btcjson.EstimateSmartFeeResult, error) {
		return n.rpc.EstimateSmartFee(int64(target), nil)
	})
	if err == nil {
		if smart.FeeRate != nil && *smart.FeeRate > 0 {
			return btcPerKvB(*smart.FeeRate)
		}
		return 0, fmt.Errorf("estimatesmartfee %d: no estimate: %s", target, strings.Join(smart.Errors, "; "))
	}
	if _, isRPC := rpcCode(err); !isRPC {
		return 0, fmt.Errorf("estimatesmartfee %d: %w", target, err) // transport: node down
	}
	rate, ferr := call(ctx, func() (float64, error) { return n.rpc.EstimateFee(int64(target)) })
	if ferr != nil {
		return 0, fmt.Errorf("estimatefee %d (after estimatesmartfee: %v): %w", target, err, ferr)
	}
	if rate <= 0 {
		return 0, fmt.Errorf("estimatefee %d: no estimate (%v)", target, rate)
	}
	return btcPerKvB(rate)
}

func btcPerKvB(rate float64) (int64, error) {
	if math.IsNaN(rate) || math.IsInf(rate, 0) || rate <= 0 || rate > 1 {
		return 0, fmt.Errorf("fee estimate %v BTC/kvB out of range", rate)
	}
	amt, err := btcutil.NewAmount(rate)
	if err != nil {
		return 0, err
	}
	return int64(amt), nil
}
