package bitcoind

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/wire"

	"github.com/lode-pool/lode/economics"
)

// ChainReader is economics.Chain over a Client: block fees from Bitcoin
// Core's getblockstats (totalfee), or, on a node without it (btcd), from
// the block's coinbase outputs minus the subsidy of its height.
type ChainReader struct {
	c      *Client
	params *chaincfg.Params
	// noStats is set once the node refused getblockstats as unknown, so
	// later blocks go straight to the coinbase.
	noStats atomic.Bool
}

var _ economics.Chain = (*ChainReader)(nil)

// NewChainReader returns the economics view of c on the network of params
// (for the subsidy schedule).
func NewChainReader(c *Client, params *chaincfg.Params) *ChainReader {
	return &ChainReader{c: c, params: params}
}

// TipHeight returns the height of the node's best block.
func (r *ChainReader) TipHeight(ctx context.Context) (int64, error) {
	return r.c.GetBlockCount(ctx)
}

// BlockHash returns the hash of the main-chain block at height.
func (r *ChainReader) BlockHash(ctx context.Context, height int64) (chainhash.Hash, error) {
	return r.c.GetBlockHash(ctx, height)
}

// blockStats is the part of getblockstats read here (rpcclient's result
// type has no totalfee).
type blockStats struct {
	TotalFee *int64 `json:"totalfee"`
	Height   int64  `json:"height"`
}

// BlockSummary describes the main-chain block at height.
func (r *ChainReader) BlockSummary(ctx context.Context, height int64) (economics.BlockSummary, error) {
	hash, err := r.c.GetBlockHash(ctx, height)
	if err != nil {
		return economics.BlockSummary{}, err
	}
	if !r.noStats.Load() {
		s, err := r.summaryFromStats(ctx, hash, height)
		if err == nil {
			return s, nil
		}
		if !isUnknownMethod(err) {
			return economics.BlockSummary{}, err
		}
		r.noStats.Store(true)
		r.c.logger.Info("node has no getblockstats: block fees from coinbases")
	}
	return r.summaryFromCoinbase(ctx, hash, height)
}

func (r *ChainReader) summaryFromStats(ctx context.Context, hash chainhash.Hash, height int64) (economics.BlockSummary, error) {
	params, _ := json.Marshal([]any{hash.String(), []string{"totalfee", "height"}})
	var raw []json.RawMessage
	_ = json.Unmarshal(params, &raw)
	res, err := callLane(ctx, r.c, laneMain, r.c.cfg.Timeout, "getblockstats", func(rc *rpcclient.Client) (json.RawMessage, error) {
		return rc.RawRequest("getblockstats", raw)
	})
	if err != nil {
		return economics.BlockSummary{}, err
	}
	var st blockStats
	if err := json.Unmarshal(res, &st); err != nil || st.TotalFee == nil {
		return economics.BlockSummary{}, fmt.Errorf("getblockstats %s: no totalfee in %s", hash, res)
	}
	if st.Height != height {
		return economics.BlockSummary{}, fmt.Errorf("getblockstats %s: height %d, want %d (reorg?)", hash, st.Height, height)
	}
	hdr, err := callLane(ctx, r.c, laneMain, r.c.cfg.Timeout, "getblockheader", func(rc *rpcclient.Client) (*wire.BlockHeader, error) {
		return rc.GetBlockHeader(&hash)
	})
	if err != nil {
		return economics.BlockSummary{}, mapNotFound(err)
	}
	return economics.BlockSummary{Height: height, Hash: hash, Time: hdr.Timestamp, Bits: hdr.Bits, Fees: btcutil.Amount(*st.TotalFee), FeesFrom: "getblockstats"}, nil
}

func (r *ChainReader) summaryFromCoinbase(ctx context.Context, hash chainhash.Hash, height int64) (economics.BlockSummary, error) {
	blk, err := r.c.GetBlock(ctx, hash)
	if err != nil {
		return economics.BlockSummary{}, err
	}
	if len(blk.Transactions) == 0 {
		return economics.BlockSummary{}, fmt.Errorf("block %s has no coinbase", hash)
	}
	var out int64
	for _, o := range blk.Transactions[0].TxOut {
		out += o.Value
	}
	fees := btcutil.Amount(out) - economics.Subsidy(height, r.params)
	return economics.BlockSummary{Height: height, Hash: hash, Time: blk.Header.Timestamp, Bits: blk.Header.Bits, Fees: fees, FeesFrom: "coinbase"}, nil
}

// isUnknownMethod recognises a node that does not implement an RPC (btcd
// answers -32601 "Method not found" or -1 unimplemented).
func isUnknownMethod(err error) bool {
	var re *btcjson.RPCError
	if errors.As(err, &re) {
		return re.Code == btcjson.ErrRPCMethodNotFound.Code || re.Code == btcjson.ErrRPCUnimplemented
	}
	return err != nil && strings.Contains(strings.ToLower(err.Error()), "method not found")
}
