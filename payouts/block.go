package payouts

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"go.uber.org/zap"

	"github.com/lode-pool/lode/blocks"
	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/payouts/payment"
	"github.com/lode-pool/lode/payouts/window"
	"github.com/lode-pool/lode/shares/ledger"
)

// ErrBlockNotFound is returned (wrapped) by a Ledger that has no record of a
// block.
var ErrBlockNotFound = errors.New("payouts: block not found")

// ErrFindingShareNotApplied is returned (wrapped) by SnapshotBlock and
// BlockFound while the share that found the block is not in the store yet
// (its batch is in flight, or in the recording process's spool during a
// Redis outage). The snapshot is retried later; it never uses a window that
// does not contain the finding share.
var ErrFindingShareNotApplied = errors.New("payouts: the finding share is not applied yet")

// ErrArchivePruned is returned (wrapped) when a block's window archive was
// deleted by the retention (its root, total and bounds remain).
var ErrArchivePruned = errors.New("payouts: window archive pruned")

// ErrZeroWindow: the PPLNS window size N is 0 difficulty units. A window of
// 0 is never read as "the whole history".
var ErrZeroWindow = errors.New("payouts: PPLNS window of 0 units")

// Window boundaries recorded with a snapshot (Block.WindowBoundary).
const (
	// BoundaryExact: the window ends at the batch of the finding share.
	BoundaryExact = "exact"
	// BoundaryLate: the finding share's sequence was unknown, or the share
	// had left the window before the snapshot ran; the window is the last N
	// units as they were when the snapshot ran.
	BoundaryLate = "late"
)

// BlockStatus is where a found block is in its lifecycle: the state
// machine of package blocks (blocks.State), which owns the legal
// transitions; a record is in one of the four states below.
type BlockStatus = blocks.State

// Block statuses a record goes through. Credited and orphaned are final.
const (
	StatusPending  = blocks.StatePending  // recorded, not yet checked against the chain
	StatusImmature = blocks.StateImmature // in the main chain, fewer than Maturity confirmations
	StatusCredited = blocks.StateCredited // matured; balances credited (exactly once)
	StatusOrphaned = blocks.StateOrphaned // left the main chain before maturing; no credit
)

// FoundBlock is what the pool knows when the node accepted one of its blocks
// (blocks.FoundBlock).
type FoundBlock = blocks.FoundBlock

// Block is a found block's record.
type Block struct {
	FoundBlock
	Status BlockStatus

	// The PPLNS snapshot taken when the block was found.
	WindowLimit  *big.Int // N in difficulty units; 0 when the window was not limited
	WindowUnits  *big.Int // Σ difficulty units counted (≤ WindowLimit when limited)
	WindowShares int64    // window entries counted (the oldest possibly in part)
	Contributors int64    // distinct payout addresses in the snapshot
	// The window's bounds and summary (docs/verify.md): sequences of the
	// oldest and newest entry counted, the finding share, whether the window
	// ends at it, the number of leaves, the Merkle-sum root (nil until
	// computed; its sum is WindowUnits), whether the archive was pruned, and
	// the block whose coinbase commits the root ("" until one does).
	WindowFirstSeq string
	WindowLastSeq  string
	WindowBoundary string
	WindowLeaves   int64
	// WindowTruncated: fewer than N units were left before the finding
	// share when the snapshot ran (the share ledger had trimmed them).
	WindowTruncated bool
	WindowRoot      *window.Hash
	ArchivePruned   bool
	CommittedIn     string

	Confirmations int64 // as of the last unlocker step
	Reward        int64 // credited: the chain coinbase value paid to the pool
	Fee           int64 // credited: the pool fee out of Reward
	UpdatedAt     time.Time
}

// BlockCredit is everything that changes when a block matures.
type BlockCredit struct {
	Hash          chainhash.Hash
	Allocation    Allocation
	UTXOs         []payment.UTXO // the pool outputs the payout processor may spend
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
	// MarkImmature moves a block to immature with the given confirmations
	// and returns the status it had before. Like CreditBlock and
	// OrphanBlock, it checks the move against the record's state
	// atomically with its writes (blocks.From) and refuses an illegal one
	// with a (wrapped) *blocks.TransitionError, changing nothing.
	MarkImmature(ctx context.Context, hash chainhash.Hash, confirmations int64, now time.Time) (BlockStatus, error)
	// CreditBlock credits the allocation to the balances and fee account,
	// records the UTXOs and marks the block credited, all at once, only if
	// the state machine allows it (pending or immature); it returns true
	// when it did, or false and a *blocks.TransitionError (credited twice,
	// credited after orphaned).
	CreditBlock(ctx context.Context, c BlockCredit) (bool, error)
	// OrphanBlock marks a block orphaned if the state machine allows it
	// (pending or immature); otherwise it returns false and a
	// *blocks.TransitionError (a credited block is never un-credited).
	OrphanBlock(ctx context.Context, hash chainhash.Hash, now time.Time) (bool, error)
}

// WindowLedger is the verifiable side of the store: window archives, their
// roots and on-chain commitments (internal/redisstore implements it).
type WindowLedger interface {
	// WindowLeaves calls fn with each leaf of the block's archived window,
	// oldest first (ErrArchivePruned once the retention deleted it).
	WindowLeaves(ctx context.Context, hash chainhash.Hash, fn func(window.Leaf) error) error
	// SetWindowRoot stores the root computed from the archive, once (a
	// second call with the same root returns false; another root or a sum
	// other than the recorded window units is an error), and queues it for
	// the on-chain commitment.
	SetWindowRoot(ctx context.Context, hash chainhash.Hash, height int64, root window.Node) (bool, error)
	// MarkCommitted records that block hash's coinbase commits the pending
	// windows c covers (window.ErrMismatch when c matches no pending list).
	MarkCommitted(ctx context.Context, hash chainhash.Hash, c window.Commitment) error
	// PruneWindowArchives deletes the archives of blocks outside the
	// keepBlocks highest and found before now − keepFor.
	PruneWindowArchives(ctx context.Context, keepBlocks int, keepFor time.Duration, now time.Time) (int, error)
}

// WindowIndexer is a WindowLedger that keeps a proof index beside a
// window's archive (internal/redisstore implements it): the tree's nodes
// every 2^k leaves and where each group of leaves starts, so that a proof
// reads only the groups holding an address's leaves.
type WindowIndexer interface {
	// IndexWindow reads the block's window once, stores its proof index
	// and returns the root of its tree (the root WindowLeaves' leaves give).
	IndexWindow(ctx context.Context, hash chainhash.Hash) (window.Node, error)
}

// Defaults of the window archive retention: an archive is deleted once its
// block is outside the DefaultArchiveBlocks most recent blocks and older
// than DefaultArchiveFor (both).
const (
	DefaultArchiveBlocks = 1000
	DefaultArchiveFor    = 90 * 24 * time.Hour
)

// RecorderConfig configures a Recorder.
type RecorderConfig struct {
	Ledger Ledger
	// WindowFactor is X in the PPLNS window size N = X × network
	// difficulty (default ledger.DefaultWindowFactor, the share ledger's,
	// so the window the ledger keeps and the one snapshotted agree).
	WindowFactor float64
	// MinWindow is a floor for N in difficulty (0: none), the same floor
	// the share ledger trims its window to, so the snapshot counts the
	// window the ledger keeps.
	MinWindow float64
	// Windows archives windows and stores their roots (nil: Ledger, if it
	// implements WindowLedger; without one no window is archived).
	Windows WindowLedger
	// ArchiveBlocks and ArchiveFor are the window archive retention: an
	// archive is deleted when its block is outside the ArchiveBlocks most
	// recent blocks and was found more than ArchiveFor ago (defaults
	// DefaultArchiveBlocks, DefaultArchiveFor).
	ArchiveBlocks int
	ArchiveFor    time.Duration
	Logger        *zap.Logger // nil: no logging
	// Now is the clock (nil: time.Now), for the retention.
	Now func() time.Time
}

// Validate checks the configuration and fills in defaults.
func (c *RecorderConfig) Validate() error {
	if c.Ledger == nil {
		return errors.New("payouts: recorder needs a Ledger")
	}
	if c.WindowFactor == 0 {
		c.WindowFactor = ledger.DefaultWindowFactor
	}
	if !(c.WindowFactor > 0) || math.IsInf(c.WindowFactor, 0) {
		return fmt.Errorf("payouts: window factor %v: want a positive number", c.WindowFactor)
	}
	if !(c.MinWindow >= 0) || math.IsInf(c.MinWindow, 0) {
		return fmt.Errorf("payouts: minimum window %v: want 0 or a positive number", c.MinWindow)
	}
	if c.ArchiveBlocks == 0 {
		c.ArchiveBlocks = DefaultArchiveBlocks
	}
	if c.ArchiveFor == 0 {
		c.ArchiveFor = DefaultArchiveFor
	}
	if c.ArchiveBlocks < 0 || c.ArchiveFor < 0 {
		return fmt.Errorf("payouts: window archive retention %d blocks, %v: want positive values", c.ArchiveBlocks, c.ArchiveFor)
	}
	if c.Windows == nil {
		c.Windows, _ = c.Ledger.(WindowLedger)
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// ValidateWindow checks that the PPLNS window N = max(factor × network
// difficulty, minWindow) is at least one difficulty unit at the lowest
// difficulty net allows (its proof-of-work limit): on regtest 2 × 4.66e-10
// rounds to 0 units, so pool.pplns_min_window must be set there. The daemon
// calls it with its configuration.
func ValidateWindow(factor, minWindow float64, net *chaincfg.Params) error {
	if !(factor > 0) || math.IsInf(factor, 0) || !(minWindow >= 0) || math.IsInf(minWindow, 0) {
		return fmt.Errorf("%w: window factor %v, minimum window %v", ErrZeroWindow, factor, minWindow)
	}
	if net == nil || net.PowLimit == nil {
		return errors.New("payouts: ValidateWindow needs the network")
	}
	lowest := blocktemplate.TargetToDifficulty(net.PowLimit)
	if ledger.WindowUnits(factor, minWindow, lowest).Sign() <= 0 {
		return fmt.Errorf("%w on %s: %v × difficulty %.3g is below one unit (1e-8); set a minimum window (pool.pplns_min_window)",
			ErrZeroWindow, net.Name, factor, lowest)
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
// max(WindowFactor × b.NetworkDifficulty, MinWindow) difficulty units ending
// at the finding share (b.FindingSeq), archives the window, stores its
// Merkle-sum root, records the windows b's coinbase commits, and prunes old
// archives. Every step is idempotent: calling it again for the same block
// (after an error, or a crash) completes what is missing and returns the
// first record. It fails with ErrFindingShareNotApplied while the finding
// share is not in the store yet, and with ErrZeroWindow when N is 0.
func (r *Recorder) BlockFound(ctx context.Context, b FoundBlock) (Block, error) {
	limit := ledger.WindowUnits(r.cfg.WindowFactor, r.cfg.MinWindow, b.NetworkDifficulty)
	if limit.Sign() <= 0 {
		return Block{}, fmt.Errorf("snapshot block %s: %w (network difficulty %v, factor %v, minimum %v)",
			b.Hash, ErrZeroWindow, b.NetworkDifficulty, r.cfg.WindowFactor, r.cfg.MinWindow)
	}
	created, err := r.cfg.Ledger.SnapshotBlock(ctx, b, limit)
	if err != nil {
		return Block{}, fmt.Errorf("snapshot block %s: %w", b.Hash, err)
	}
	blk, err := r.cfg.Ledger.Block(ctx, b.Hash)
	if err != nil {
		return Block{}, fmt.Errorf("read block %s: %w", b.Hash, err)
	}
	if w := r.cfg.Windows; w != nil {
		if err := r.finishWindow(ctx, w, b, &blk); err != nil {
			return Block{}, err
		}
	}
	log := r.cfg.Logger.Info
	if blk.WindowBoundary == BoundaryLate {
		log = r.cfg.Logger.Error // visible: this block's window does not provably end at its share
	}
	log("block recorded", zap.Stringer("hash", b.Hash), zap.Int64("height", b.Height),
		zap.String("finder", b.Finder), zap.Bool("created", created), zap.String("finding_seq", b.FindingSeq),
		zap.String("boundary", blk.WindowBoundary), zap.Int64("contributors", blk.Contributors),
		zap.Stringer("window_units", blk.WindowUnits), zap.Int64("window_leaves", blk.WindowLeaves))
	return blk, nil
}

// Record is BlockFound for the found-block tracker (blocks.Recorder).
func (r *Recorder) Record(ctx context.Context, b FoundBlock) error {
	_, err := r.BlockFound(ctx, b)
	return err
}

var _ blocks.Recorder = (*Recorder)(nil)

// finishWindow computes and stores the root of b's archived window, records
// the commitment b's coinbase carries, and prunes old archives.
func (r *Recorder) finishWindow(ctx context.Context, w WindowLedger, b FoundBlock, blk *Block) error {
	if blk.WindowRoot == nil && !blk.ArchivePruned {
		// Streamed: a mainnet window has some 10^6 leaves. A store that
		// keeps a proof index writes it in the same pass (proofs then read
		// only an address's groups of leaves).
		root, err := windowRoot(ctx, w, b.Hash)
		if err != nil {
			return err
		}
		if _, err := w.SetWindowRoot(ctx, b.Hash, b.Height, root); err != nil {
			return fmt.Errorf("window root of block %s: %w", b.Hash, err)
		}
		blk.WindowRoot = &root.Hash
	}
	if b.Commitment != nil {
		err := w.MarkCommitted(ctx, b.Hash, *b.Commitment)
		switch {
		case errors.Is(err, window.ErrMismatch):
			// Not retryable: the pending windows changed between the job and
			// the block. They stay pending and a later block commits them.
			r.cfg.Logger.Error("block's window commitment matches no pending windows", zap.Stringer("hash", b.Hash), zap.Error(err))
		case err != nil:
			return fmt.Errorf("record commitment of block %s: %w", b.Hash, err)
		}
	}
	if n, err := w.PruneWindowArchives(ctx, r.cfg.ArchiveBlocks, r.cfg.ArchiveFor, r.cfg.Now()); err != nil {
		r.cfg.Logger.Warn("prune window archives", zap.Error(err))
	} else if n > 0 {
		r.cfg.Logger.Info("window archives pruned", zap.Int("blocks", n))
	}
	return nil
}

// windowRoot computes the root of block hash's archived window, through
// w's IndexWindow when it has one.
func windowRoot(ctx context.Context, w WindowLedger, hash chainhash.Hash) (window.Node, error) {
	if ix, ok := w.(WindowIndexer); ok {
		root, err := ix.IndexWindow(ctx, hash)
		if err != nil {
			return window.Node{}, fmt.Errorf("read and index window of block %s: %w", hash, err)
		}
		return root, nil
	}
	var rb window.RootBuilder
	if err := w.WindowLeaves(ctx, hash, rb.Add); err != nil {
		return window.Node{}, fmt.Errorf("read window of block %s: %w", hash, err)
	}
	root, err := rb.Root()
	if err != nil {
		return window.Node{}, fmt.Errorf("window of block %s: %w", hash, err)
	}
	return root, nil
}

// NewFoundBlock is blocks.NewFoundBlock: a found block's description from
// the block itself.
func NewFoundBlock(block *wire.MsgBlock, height int64, finder string, payoutScript []byte) (FoundBlock, error) {
	return blocks.NewFoundBlock(block, height, finder, payoutScript)
}
