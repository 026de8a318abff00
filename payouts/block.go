package payouts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"go.uber.org/zap"

	"github.com/lode-pool/lode/blocktemplate"
)

// ErrBlockNotFound is returned (wrapped) by a Ledger that has no record of a
// block.
var ErrBlockNotFound = errors.New("payouts: block not found")

// BlockStatus is where a found block is in its lifecycle.
type BlockStatus string

// Block statuses. Credited and orphaned are final.
const (
	StatusPending  BlockStatus = "pending"  // recorded, not yet checked against the chain
	StatusImmature BlockStatus = "immature" // in the main chain, fewer than Maturity confirmations
	StatusCredited BlockStatus = "credited" // matured; balances credited (exactly once)
	StatusOrphaned BlockStatus = "orphaned" // left the main chain before maturing; no credit
)

// Final reports whether no further transition is possible.
func (s BlockStatus) Final() bool { return s == StatusCredited || s == StatusOrphaned }

// FoundBlock is what the pool knows when the node accepted one of its blocks.
type FoundBlock struct {
	Hash              chainhash.Hash
	Height            int64
	Finder            string        // the worker that found it ("address.worker")
	CoinbaseValue     int64         // satoshis the template offered (subsidy + fees)
	CoinbaseOutpoint  wire.OutPoint // the coinbase output paying the pool
	NetworkDifficulty float64       // sets the PPLNS window size N
	Time              time.Time
}

// Block is a found block's record.
type Block struct {
	FoundBlock
	Status BlockStatus

	// The PPLNS snapshot taken when the block was found.
	WindowLimit  *big.Int // N in difficulty units; 0 when the window was not limited
	WindowUnits  *big.Int // Σ difficulty units counted (≤ WindowLimit when limited)
	WindowShares int64    // window entries counted (the oldest possibly in part)
	Contributors int64    // distinct payout addresses in the snapshot

	Confirmations int64 // as of the last unlocker step
	Reward        int64 // credited: the chain coinbase value paid to the pool
	Fee           int64 // credited: the pool fee out of Reward
	UpdatedAt     time.Time
}

// UTXO is a matured coinbase output the pool may spend.
type UTXO struct {
	OutPoint wire.OutPoint
	Value    int64
}

// BlockCredit is everything that changes when a block matures.
type BlockCredit struct {
	Hash          chainhash.Hash
	Allocation    Allocation
	UTXOs         []UTXO
	Confirmations int64
	Time          time.Time
}

// Ledger is the accounting store the payouts package needs
// (internal/redisstore implements it). Each method is one atomic step.
type Ledger interface {
	// SnapshotBlock records b with the PPLNS window as it is now, summed per
	// payout address up to limit difficulty units (nil or 0: the whole
	// window), and starts a new round. It is idempotent on b.Hash: a second
	// call changes nothing and returns created == false.
	SnapshotBlock(ctx context.Context, b FoundBlock, limit *big.Int) (created bool, err error)
	// Block returns a block's record.
	Block(ctx context.Context, hash chainhash.Hash) (Block, error)
	// UnconfirmedBlocks returns the pending and immature blocks, lowest
	// height first.
	UnconfirmedBlocks(ctx context.Context) ([]Block, error)
	// Contributions returns a block's snapshot, sorted by address.
	Contributions(ctx context.Context, hash chainhash.Hash) ([]Contribution, error)
	// MarkImmature moves a pending or immature block to immature with the
	// given confirmations and returns the status it had before; other
	// statuses are left alone.
	MarkImmature(ctx context.Context, hash chainhash.Hash, confirmations int64, now time.Time) (BlockStatus, error)
	// CreditBlock credits the allocation to the balances and fee account,
	// records the UTXOs and marks the block credited, all at once, only if
	// the block is pending or immature. It returns false (and changes
	// nothing) otherwise.
	CreditBlock(ctx context.Context, c BlockCredit) (bool, error)
	// OrphanBlock marks a pending or immature block orphaned; it returns
	// false for any other status (a credited block is never un-credited).
	OrphanBlock(ctx context.Context, hash chainhash.Hash, now time.Time) (bool, error)
}

// DefaultWindowFactor is X in N = X × network difficulty.
const DefaultWindowFactor = 2.0

// RecorderConfig configures a Recorder.
type RecorderConfig struct {
	Ledger Ledger
	// WindowFactor is X in the PPLNS window size N = X × network
	// difficulty (default 2).
	WindowFactor float64
	// MinWindow is a floor for N in difficulty (0: none), the same floor
	// the share ledger trims its window to, so the snapshot counts the
	// window the ledger keeps.
	MinWindow float64
	Logger    *zap.Logger // nil: no logging
}

// Validate checks the configuration and fills in defaults.
func (c *RecorderConfig) Validate() error {
	if c.Ledger == nil {
		return errors.New("payouts: recorder needs a Ledger")
	}
	if c.WindowFactor == 0 {
		c.WindowFactor = DefaultWindowFactor
	}
	if c.WindowFactor < 0 {
		return fmt.Errorf("payouts: window factor %v is negative", c.WindowFactor)
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return nil
}

// Recorder snapshots the PPLNS window when the pool finds a block.
type Recorder struct {
	cfg RecorderConfig
}

// NewRecorder returns a Recorder.
func NewRecorder(cfg RecorderConfig) (*Recorder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Recorder{cfg: cfg}, nil
}

// BlockFound records a block the node accepted, with the PPLNS window of N =
// max(WindowFactor × b.NetworkDifficulty, MinWindow) (the whole window when
// that is 0). Calling it again for the same block returns the first record.
func (r *Recorder) BlockFound(ctx context.Context, b FoundBlock) (Block, error) {
	limit := WindowUnits(r.cfg.WindowFactor, b.NetworkDifficulty)
	if r.cfg.MinWindow > 0 {
		if floor := DiffToUnits(r.cfg.MinWindow); floor.Cmp(limit) > 0 {
			limit = floor
		}
	}
	created, err := r.cfg.Ledger.SnapshotBlock(ctx, b, limit)
	if err != nil {
		return Block{}, fmt.Errorf("snapshot block %s: %w", b.Hash, err)
	}
	blk, err := r.cfg.Ledger.Block(ctx, b.Hash)
	if err != nil {
		return Block{}, fmt.Errorf("read block %s: %w", b.Hash, err)
	}
	r.cfg.Logger.Info("block recorded", zap.Stringer("hash", b.Hash), zap.Int64("height", b.Height),
		zap.String("finder", b.Finder), zap.Bool("created", created),
		zap.Int64("contributors", blk.Contributors), zap.Stringer("window_units", blk.WindowUnits))
	return blk, nil
}

// NewFoundBlock describes a block the node accepted, from the block itself:
// the pool's coinbase value and first payout outpoint are read from the
// coinbase outputs paying payoutScript, the network difficulty from the
// header's bits (it sets the PPLNS window size), the time from the header.
// finder is the worker that submitted it.
func NewFoundBlock(block *wire.MsgBlock, height int64, finder string, payoutScript []byte) (FoundBlock, error) {
	if len(block.Transactions) == 0 {
		return FoundBlock{}, errors.New("payouts: found block has no coinbase")
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
	}
	if !found {
		return FoundBlock{}, fmt.Errorf("payouts: coinbase of block %s does not pay the pool's script", fb.Hash)
	}
	return fb, nil
}
