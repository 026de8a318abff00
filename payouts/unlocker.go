package payouts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"go.uber.org/zap"

	"github.com/lode-pool/lode/blocks"
	"github.com/lode-pool/lode/payouts/payment"
)

// Chain is the node access the unlocker needs (blocktemplate/bitcoind.Client
// provides it).
type Chain interface {
	// GetBlockCount returns the height of the best chain's tip.
	GetBlockCount(ctx context.Context) (int64, error)
	// GetBlockHash returns the hash of the main-chain block at height.
	GetBlockHash(ctx context.Context, height int64) (chainhash.Hash, error)
	// GetBlock returns a block by hash.
	GetBlock(ctx context.Context, hash chainhash.Hash) (*wire.MsgBlock, error)
}

// Unlocker defaults.
const (
	DefaultMaturity         = 100 // confirmations, the consensus coinbase maturity
	DefaultUnlockerInterval = 30 * time.Second
	DefaultOrphanDepth      = 3 // blocks of the competing chain, from the block's height
)

// UnlockerConfig configures an Unlocker.
//
// It is also lode.yaml's unlocker: section (config.go): the keys are on the
// fields, those tagged "-" are wired by the daemon.
type UnlockerConfig struct {
	Ledger Ledger `yaml:"-"`
	Chain  Chain  `yaml:"-"`
	// PayoutScript is the pool's coinbase output script; the reward of a
	// block is the sum of its coinbase outputs paying this script (subsidy
	// plus fees as the chain has them). Required.
	PayoutScript []byte `yaml:"-"`
	// FeeBasisPoints is the pool fee in 1/100 percent (100 = 1%), applied
	// when a block is credited (a changed fee applies to blocks not yet
	// credited).
	FeeBasisPoints int64 `yaml:"-"`
	// Maturity is the number of confirmations (the block itself counts as
	// one) after which a block is credited (default 100). Below 100 is for
	// tests: balances are credited early and the recorded pool UTXOs are not
	// yet spendable (the payout processor checks that before spending).
	Maturity int64 `yaml:"maturity"`
	// OrphanDepth is how deep the main chain must be past a block's height,
	// counting the competing block at that height, before a block whose
	// height holds another hash is orphaned (default 3). Orphaned is final;
	// the wait covers a one- or two-block fork that swings back.
	OrphanDepth int64 `yaml:"orphan_depth"`
	// Interval is the time between steps in Run (default 30s).
	Interval time.Duration `yaml:"interval"`
	Logger   *zap.Logger   `yaml:"-"` // nil: no logging
	// Now returns the time recorded in status changes (default time.Now).
	Now func() time.Time `yaml:"-"`
}

// Validate checks the configuration and fills in defaults.
func (c *UnlockerConfig) Validate() error {
	switch {
	case c.Ledger == nil:
		return errors.New("payouts: unlocker needs a Ledger")
	case c.Chain == nil:
		return errors.New("payouts: unlocker needs a Chain")
	case len(c.PayoutScript) == 0:
		return errors.New("payouts: unlocker needs the pool's payout script")
	case c.FeeBasisPoints < 0 || c.FeeBasisPoints > MaxFeeBasisPoints:
		return fmt.Errorf("payouts: fee %d basis points outside 0–%d", c.FeeBasisPoints, MaxFeeBasisPoints)
	case c.Maturity < 0:
		return fmt.Errorf("payouts: maturity %d is negative", c.Maturity)
	case c.OrphanDepth < 0:
		return fmt.Errorf("payouts: orphan depth %d is negative", c.OrphanDepth)
	case c.Interval < 0:
		return fmt.Errorf("payouts: unlocker interval %v is negative", c.Interval)
	}
	if c.Maturity == 0 {
		c.Maturity = DefaultMaturity
	}
	if c.OrphanDepth == 0 {
		c.OrphanDepth = DefaultOrphanDepth
	}
	if c.Interval == 0 {
		c.Interval = DefaultUnlockerInterval
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Unlocker follows found blocks through the chain: pending → immature →
// credited, or orphaned, the moves of the found-block state machine
// (blocks.State). Each move is checked (blocks.Transition) and made by one
// atomic Ledger call that checks it again against the record's state, so
// Step can be interrupted anywhere and repeated, and several unlockers may
// run at once; each block is still credited, or orphaned, once.
type Unlocker struct {
	cfg UnlockerConfig
}

// NewUnlocker returns an Unlocker.
func NewUnlocker(cfg UnlockerConfig) (*Unlocker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Unlocker{cfg: cfg}, nil
}

// StepResult counts what one Step changed.
type StepResult struct {
	Checked  int // unconfirmed blocks looked at
	Immature int // blocks seen in the main chain, not yet mature
	Credited int // blocks credited by this step
	Orphaned int // blocks orphaned by this step
	Forked   int // blocks off the main chain, not yet OrphanDepth deep
}

// Run calls Step every Interval until ctx ends. Step errors are logged and
// retried at the next tick; Run returns nil when ctx is cancelled.
func (u *Unlocker) Run(ctx context.Context) error {
	t := time.NewTicker(u.cfg.Interval)
	defer t.Stop()
	for {
		if res, err := u.Step(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			u.cfg.Logger.Warn("unlocker step failed", zap.Error(err))
		} else if res.Credited+res.Orphaned > 0 {
			u.cfg.Logger.Info("unlocker step", zap.Int("checked", res.Checked),
				zap.Int("credited", res.Credited), zap.Int("orphaned", res.Orphaned))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Step checks every pending and immature block once against the chain. An
// error on one block does not stop the others; the first error is returned.
func (u *Unlocker) Step(ctx context.Context) (StepResult, error) {
	var res StepResult
	blocks, err := u.cfg.Ledger.UnconfirmedBlocks(ctx)
	if err != nil {
		return res, fmt.Errorf("list unconfirmed blocks: %w", err)
	}
	if len(blocks) == 0 {
		return res, nil
	}
	tip, err := u.cfg.Chain.GetBlockCount(ctx)
	if err != nil {
		return res, fmt.Errorf("get block count: %w", err)
	}
	var first error
	for _, b := range blocks {
		res.Checked++
		if err := u.checkBlock(ctx, b, tip, &res); err != nil {
			u.cfg.Logger.Warn("unlocker: block check failed", zap.Stringer("hash", b.Hash),
				zap.Int64("height", b.Height), zap.Error(err))
			if first == nil {
				first = err
			}
		}
	}
	return res, first
}

func (u *Unlocker) checkBlock(ctx context.Context, b Block, tip int64, res *StepResult) error {
	log := u.cfg.Logger.With(zap.Stringer("hash", b.Hash), zap.Int64("height", b.Height))
	if b.Status.Final() {
		// Listed as unconfirmed, then read after another unlocker had
		// credited or orphaned it (the list and the records are two
		// reads): it is done, and done once.
		log.Info("block settled by another unlocker meanwhile; left as it is", zap.Stringer("status", b.Status))
		return nil
	}
	if b.Height > tip {
		// The node is behind or the chain got shorter; the block may come
		// back. Nothing to decide yet.
		return nil
	}
	atHeight, err := u.cfg.Chain.GetBlockHash(ctx, b.Height)
	if err != nil {
		return fmt.Errorf("get block hash at %d: %w", b.Height, err)
	}
	if atHeight != b.Hash {
		if depth := tip - b.Height + 1; depth < u.cfg.OrphanDepth {
			res.Forked++
			log.Info("block off the main chain; waiting before orphaning it",
				zap.Stringer("main_chain_hash", &atHeight), zap.Int64("depth", depth))
			return nil
		}
		if err := blocks.Transition(b.Hash, b.Status, StatusOrphaned); err != nil {
			return err
		}
		changed, err := u.cfg.Ledger.OrphanBlock(ctx, b.Hash, u.cfg.Now())
		if err != nil {
			return u.refused(log, b, fmt.Errorf("orphan block: %w", err))
		}
		if changed {
			res.Orphaned++
			log.Warn("block orphaned", zap.Stringer("main_chain_hash", &atHeight))
		}
		return nil
	}
	confirmations := tip - b.Height + 1
	if confirmations < u.cfg.Maturity {
		if err := blocks.Transition(b.Hash, b.Status, StatusImmature); err != nil {
			return err
		}
		if _, err := u.cfg.Ledger.MarkImmature(ctx, b.Hash, confirmations, u.cfg.Now()); err != nil {
			return u.refused(log, b, fmt.Errorf("mark immature: %w", err))
		}
		res.Immature++
		return nil
	}
	if err := blocks.Transition(b.Hash, b.Status, StatusCredited); err != nil {
		return err
	}
	credit, err := u.prepareCredit(ctx, b, confirmations)
	if err != nil {
		return err
	}
	credited, err := u.cfg.Ledger.CreditBlock(ctx, credit)
	if err != nil {
		return u.refused(log, b, fmt.Errorf("credit block: %w", err))
	}
	if credited {
		res.Credited++
		log.Info("block credited", zap.Int64("reward", credit.Allocation.Reward),
			zap.Int64("fee", credit.Allocation.Fee), zap.Int("miners", len(credit.Allocation.Credits)))
	}
	return nil
}

// refused sorts out a move the store refused (a *blocks.TransitionError):
// when the block's state is no longer the one this step read, another
// unlocker moved it meanwhile (the store checked the move atomically, so
// nothing was done twice) and the step goes on; any other error stays an
// error.
func (u *Unlocker) refused(log *zap.Logger, b Block, err error) error {
	var te *blocks.TransitionError
	if errors.As(err, &te) && te.From != b.Status {
		log.Info("block moved by another unlocker meanwhile; left as it is",
			zap.Stringer("read_as", b.Status), zap.Stringer("now", te.From), zap.Stringer("refused", te.To))
		return nil
	}
	return err
}

// prepareCredit reads the block's coinbase from the chain and splits what it
// paid the pool by the block's snapshot.
func (u *Unlocker) prepareCredit(ctx context.Context, b Block, confirmations int64) (BlockCredit, error) {
	msg, err := u.cfg.Chain.GetBlock(ctx, b.Hash)
	if err != nil {
		return BlockCredit{}, fmt.Errorf("get block: %w", err)
	}
	if h := msg.BlockHash(); h != b.Hash {
		return BlockCredit{}, fmt.Errorf("node returned block %s for %s", h, b.Hash)
	}
	if len(msg.Transactions) == 0 {
		return BlockCredit{}, errors.New("block has no coinbase")
	}
	coinbase := msg.Transactions[0]
	txid := coinbase.TxHash()
	var reward int64
	var utxos []payment.UTXO
	for i, out := range coinbase.TxOut {
		if out.Value > 0 && bytes.Equal(out.PkScript, u.cfg.PayoutScript) {
			reward += out.Value
			utxos = append(utxos, payment.UTXO{OutPoint: wire.OutPoint{Hash: txid, Index: uint32(i)}, Value: out.Value})
		}
	}
	if reward == 0 {
		// A misconfigured payout script would otherwise credit nothing and
		// close the block for good; leave it for the operator instead.
		return BlockCredit{}, errors.New("coinbase pays nothing to the pool's payout script")
	}
	contributions, err := u.cfg.Ledger.Contributions(ctx, b.Hash)
	if err != nil {
		return BlockCredit{}, fmt.Errorf("read snapshot: %w", err)
	}
	alloc, err := Split(reward, u.cfg.FeeBasisPoints, contributions)
	if err != nil {
		return BlockCredit{}, fmt.Errorf("split reward: %w", err)
	}
	return BlockCredit{Hash: b.Hash, Allocation: alloc, UTXOs: utxos, Confirmations: confirmations, Time: u.cfg.Now()}, nil
}
