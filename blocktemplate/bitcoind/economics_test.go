package bitcoind

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/economics"
	"github.com/lode-pool/lode/internal/testenv"
)

// paidFees is what a block's transactions paid, computed from the
// transactions themselves (inputs from the node's transaction index minus
// outputs), independently of the coinbase and of getblockstats.
func paidFees(t *testing.T, ctx context.Context, c *Client, blk *wire.MsgBlock) btcutil.Amount {
	t.Helper()
	var fees int64
	for _, tx := range blk.Transactions[1:] {
		for _, in := range tx.TxIn {
			prev, err := c.GetRawTransaction(ctx, in.PreviousOutPoint.Hash)
			if err != nil {
				t.Fatalf("getrawtransaction %s: %v", in.PreviousOutPoint.Hash, err)
			}
			fees += prev.TxOut[in.PreviousOutPoint.Index].Value
		}
		for _, out := range tx.TxOut {
			fees -= out.Value
		}
	}
	return btcutil.Amount(fees)
}

// nodeTemplates reads the node's current template for the engine.
type nodeTemplates struct {
	t   *testing.T
	c   *Client
	ctx context.Context
}

func (n nodeTemplates) CurrentTemplate() (economics.TemplateInfo, bool) {
	raw, err := n.c.GetBlockTemplate(n.ctx, "")
	if err != nil {
		n.t.Errorf("getblocktemplate: %v", err)
		return economics.TemplateInfo{}, false
	}
	var r struct {
		Height        int64  `json:"height"`
		Bits          string `json:"bits"`
		CoinbaseValue int64  `json:"coinbasevalue"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		n.t.Errorf("template: %v", err)
		return economics.TemplateInfo{}, false
	}
	bits, err := strconv.ParseUint(r.Bits, 16, 32)
	if err != nil {
		n.t.Errorf("template bits %q: %v", r.Bits, err)
		return economics.TemplateInfo{}, false
	}
	return economics.TemplateInfo{Height: r.Height, Bits: uint32(bits), CoinbaseValue: r.CoinbaseValue}, true
}

// TestTrailingFeesMatchTheChain builds a regtest chain whose blocks carry
// transactions (plain and witness spends, several per block, and empty
// blocks), across subsidy halvings (regtest halves every 150 blocks), and
// checks that the trailing fee window equals what the node's blocks paid:
// from getblockstats on Bitcoin Core, from the coinbase on btcd.
func TestTrailingFeesMatchTheChain(t *testing.T) {
	testenv.ForEachNode(t, func(t *testing.T, node testenv.Node) {
		ctx := testCtx(t)
		c := newClient(t, node)
		params := node.Chain()
		script, err := txscript.PayToAddrScript(node.MiningAddress())
		if err != nil {
			t.Fatal(err)
		}
		node.ActivateSegwit()
		// Blocks with 0, 1, 2, 3 plain spends, and witness spends.
		for round := range 4 {
			for range round {
				node.SendTx(wire.NewTxOut(1_000_000, script))
			}
			node.Generate(1)
		}
		node.SendWitnessTx() // funding + witness spend: two transactions
		node.Generate(1)
		node.SendTx(wire.NewTxOut(5_000_000, script), wire.NewTxOut(7_000_000, script))
		node.SendWitnessTx()
		// One transaction left in the mempool: the template's fees.
		tip := node.Height()

		reader := NewChainReader(c, params)
		const window = 12
		tracker := economics.NewFeeTracker(reader, window)
		if err := tracker.Update(ctx); err != nil {
			t.Fatal(err)
		}
		blocks := tracker.Blocks()
		if len(blocks) != window || blocks[window-1].Height != tip {
			t.Fatalf("window %d blocks up to %d, want %d up to %d", len(blocks), blocks[len(blocks)-1].Height, window, tip)
		}
		wantFrom := "coinbase"
		if node.Kind() == testenv.KindCore {
			wantFrom = "getblockstats"
		}
		var total btcutil.Amount
		nonzero := 0
		for _, b := range blocks {
			blk, err := c.GetBlock(ctx, b.Hash)
			if err != nil {
				t.Fatal(err)
			}
			want := paidFees(t, ctx, c, blk)
			if b.Fees != want || b.FeesFrom != wantFrom {
				t.Errorf("block %d: fees %d from %s, the transactions paid %d", b.Height, b.Fees, b.FeesFrom, want)
			}
			if b.Time != blk.Header.Timestamp || b.Bits != blk.Header.Bits {
				t.Errorf("block %d: header %v %08x, want %v %08x", b.Height, b.Time, b.Bits, blk.Header.Timestamp, blk.Header.Bits)
			}
			total += want
			if want > 0 {
				nonzero++
			}
		}
		if nonzero < 4 {
			t.Fatalf("only %d blocks of the window paid fees: the test chain is too thin", nonzero)
		}
		sum := economics.SummariseFees(blocks)
		if sum.Total != total || sum.Mean != float64(total)/window || sum.Source != wantFrom {
			t.Fatalf("summary %+v, want total %d", sum, total)
		}
		t.Logf("%s: heights %d..%d, fees %d sat in %d blocks, mean %.0f, median %.0f", node.Kind(), sum.FromHeight, sum.ToHeight, total, nonzero, sum.Mean, sum.Median)

		// A new block is fetched alone.
		fetched := tracker.Fetched()
		node.Generate(1)
		if err := tracker.Update(ctx); err != nil || tracker.Fetched() != fetched+1 {
			t.Fatalf("after one block: fetched %d (was %d), %v", tracker.Fetched(), fetched, err)
		}

		// The engine over the real node: template fees from the mempool's
		// transaction, trailing fees as above.
		node.SendTx(wire.NewTxOut(1_000_000, script))
		e, err := economics.New(economics.Config{FeeWindowBlocks: window}, economics.Deps{
			Params: params, Templates: nodeTemplates{t, c, ctx}, Chain: reader, Logger: zaptest.NewLogger(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		s := e.Snapshot()
		if s.Network.TemplateFeesSat != 10_000 {
			t.Fatalf("template fees %d, want the 10000 sat of the mempool transaction", s.Network.TemplateFeesSat)
		}
		if s.Network.SubsidySat != int64(economics.Subsidy(node.Height()+1, params)) || s.Network.Trailing == nil || s.Network.Trailing.ToHeight != node.Height() {
			t.Fatalf("network %+v", s.Network)
		}
		if s.Network.Retarget.Available {
			t.Fatalf("regtest has no retarget: %+v", s.Network.Retarget)
		}
		if s.Network.ObservedHashrate == nil {
			t.Fatal("no observed hashrate over the window")
		}
	})
}
