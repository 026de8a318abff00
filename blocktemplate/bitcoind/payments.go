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

// Payout RPCs: the payout processor's payment.Node (sendrawtransaction,
// getrawtransaction, gettxout, estimatesmartfee or estimatefee). They work
// with Bitcoin Core and btcd and need no node wallet; looking up a confirmed
// payout needs the transaction index (Core -txindex, btcd --txindex).

var _ payment.Node = (*Client)(nil)

func rpcCode(err error) (btcjson.RPCErrorCode, bool) {
	var re *btcjson.RPCError
	if errors.As(err, &re) {
		return re.Code, true
	}
	return 0, false
}

// GetTxOut returns the unspent output, or nil when it is spent or unknown.
// With mempool true Core also reports outputs spent in its mempool as
// spent; btcd does not.
func (c *Client) GetTxOut(ctx context.Context, op wire.OutPoint, mempool bool) (*payment.TxOut, error) {
	res, err := callLane(ctx, c, laneMain, c.cfg.Timeout, "gettxout "+op.String(), func(rc *rpcclient.Client) (*btcjson.GetTxOutResult, error) {
		return rc.GetTxOut(&op.Hash, op.Index, mempool)
	})
	if err != nil {
		return nil, err
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
// already has the transaction (btcd: -26 "already have transaction in
// mempool", -27 "transaction already exists";
// Core: -27 "already in block chain" / "outputs already in utxo set",
// "txn-already-in-mempool", "txn-already-known").
func alreadyKnown(err error) bool {
	if code, ok := rpcCode(err); ok && code == btcjson.ErrRPCTxAlreadyInChain {
		return true
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "txn-already-in-mempool") || strings.Contains(msg, "txn-already-known") ||
		strings.Contains(msg, "already in block chain") || strings.Contains(msg, "already exists") ||
		strings.Contains(msg, "already have transaction")
}

// SendRawTransaction broadcasts tx; a transaction the node already has is
// not an error.
func (c *Client) SendRawTransaction(ctx context.Context, tx *wire.MsgTx) error {
	_, err := callLane(ctx, c, laneMain, c.cfg.Timeout, "sendrawtransaction "+tx.TxHash().String(), func(rc *rpcclient.Client) (*chainhash.Hash, error) { return rc.SendRawTransaction(tx, false) })
	if err != nil && !alreadyKnown(err) {
		return err
	}
	return nil
}

// TxStatus looks txid up with getrawtransaction (mempool, then the chain
// through the transaction index).
func (c *Client) TxStatus(ctx context.Context, txid chainhash.Hash) (payment.TxStatus, error) {
	res, err := callLane(ctx, c, laneMain, c.cfg.Timeout, "getrawtransaction "+txid.String(), func(rc *rpcclient.Client) (*btcjson.TxRawResult, error) { return rc.GetRawTransactionVerbose(&txid) })
	if err != nil {
		if code, ok := rpcCode(err); ok && code == btcjson.ErrRPCNoTxInfo {
			return payment.TxStatus{}, nil
		}
		return payment.TxStatus{}, err
	}
	return payment.TxStatus{Found: true, Confirmations: int64(res.Confirmations), BlockHash: res.BlockHash}, nil
}

// ErrNoTxIndex means the node cannot look confirmed transactions up by
// txid: the payout processor's exactly-once resolution needs that, since
// without it a confirmed payout looks unknown.
var ErrNoTxIndex = errors.New("bitcoind: the node has no (synced) transaction index: run it with txindex=1 (Bitcoin Core) or --txindex (btcd)")

// CheckTxIndex checks that the tip's coinbase can be looked up by txid,
// which needs a transaction index that has caught up with the chain. Before
// the first block there is nothing to look up and it reports nil.
func (c *Client) CheckTxIndex(ctx context.Context) error {
	height, err := c.GetBlockCount(ctx)
	if err != nil || height < 1 {
		return err
	}
	hash, err := c.GetBlockHash(ctx, height)
	if err != nil {
		return err
	}
	block, err := c.GetBlock(ctx, hash)
	if err != nil {
		return err
	}
	if len(block.Transactions) == 0 {
		return fmt.Errorf("check transaction index: block %s has no transactions", hash)
	}
	st, err := c.TxStatus(ctx, block.Transactions[0].TxHash())
	if err != nil {
		return fmt.Errorf("check transaction index: %w", err)
	}
	if !st.Found {
		return ErrNoTxIndex
	}
	return nil
}

// GetRawTransaction returns the transaction txid.
func (c *Client) GetRawTransaction(ctx context.Context, txid chainhash.Hash) (*wire.MsgTx, error) {
	tx, err := callLane(ctx, c, laneMain, c.cfg.Timeout, "getrawtransaction "+txid.String(), func(rc *rpcclient.Client) (*btcutil.Tx, error) { return rc.GetRawTransaction(&txid) })
	if err != nil {
		return nil, err
	}
	return tx.MsgTx(), nil
}

// EstimateFeeRate asks estimatesmartfee (Bitcoin Core) and falls back to
// estimatefee (btcd, which lacks estimatesmartfee). The answer is converted
// from BTC/kvB to sat/kvB.
func (c *Client) EstimateFeeRate(ctx context.Context, target int) (int64, error) {
	smart, err := callLane(ctx, c, laneMain, c.cfg.Timeout, "estimatesmartfee", func(rc *rpcclient.Client) (*btcjson.EstimateSmartFeeResult, error) {
		return rc.EstimateSmartFee(int64(target), nil)
	})
	if err == nil {
		if smart.FeeRate != nil && *smart.FeeRate > 0 {
			return btcPerKvB(*smart.FeeRate)
		}
		return 0, fmt.Errorf("estimatesmartfee %d: no estimate: %s", target, strings.Join(smart.Errors, "; "))
	}
	if _, isRPC := rpcCode(err); !isRPC {
		return 0, err // transport: node down
	}
	rate, ferr := callLane(ctx, c, laneMain, c.cfg.Timeout, "estimatefee", func(rc *rpcclient.Client) (float64, error) { return rc.EstimateFee(int64(target)) })
	if ferr != nil {
		return 0, fmt.Errorf("%w (after %v)", ferr, err)
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
