package blocks

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/payouts/window"
)

// FoundBlock is what the pool knows when a node accepted one of its blocks:
// what its record is taken from (payouts.FoundBlock is this type).
type FoundBlock struct {
	Hash              chainhash.Hash
	Height            int64
	Finder            string        // the worker that found it ("address.worker")
	CoinbaseValue     int64         // satoshis the template offered (subsidy + fees)
	CoinbaseOutpoint  wire.OutPoint // the coinbase output paying the pool
	NetworkDifficulty float64       // sets the PPLNS window size N
	Time              time.Time
	// FindingSeq is the share ledger's sequence ("instance:counter") of the
	// share that found the block; the snapshot's window ends at it. Empty
	// when unknown (the share was not made durable): the snapshot is then
	// taken as late (payouts.BoundaryLate).
	FindingSeq string
	// Commitment is the window commitment the block's coinbase carries
	// (nil: none).
	Commitment *window.Commitment
}

// NewFoundBlock describes a block the node accepted, from the block itself:
// the pool's coinbase value and first payout outpoint are read from the
// coinbase outputs paying payoutScript, the network difficulty from the
// header's bits (it sets the PPLNS window size), the time from the header.
// finder is the worker that submitted it.
func NewFoundBlock(block *wire.MsgBlock, height int64, finder string, payoutScript []byte) (FoundBlock, error) {
	if len(block.Transactions) == 0 {
		return FoundBlock{}, errors.New("blocks: found block has no coinbase")
	}
	fb := FoundBlock{
		Hash:              block.BlockHash(),
		Height:            height,
		Finder:            finder,
		NetworkDifficulty: blocktemplate.TargetToDifficulty(blocktemplate.CompactToTarget(block.Header.Bits)),
		Time:              block.Header.Timestamp,
	}
	cb := block.Transactions[0]
	txid := cb.TxHash()
	found := false
	for i, out := range cb.TxOut {
		if bytes.Equal(out.PkScript, payoutScript) {
			if !found {
				fb.CoinbaseOutpoint = wire.OutPoint{Hash: txid, Index: uint32(i)}
				found = true
			}
			fb.CoinbaseValue += out.Value
		}
		if c, ok := window.ParseCommitScript(out.PkScript); ok && fb.Commitment == nil && out.Value == 0 {
			fb.Commitment = &c
		}
	}
	if !found {
		return FoundBlock{}, fmt.Errorf("blocks: coinbase of block %s does not pay the pool's script", fb.Hash)
	}
	return fb, nil
}
