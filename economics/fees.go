package economics

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// DefaultFeeWindowBlocks is the default trailing fee window (one day).
const DefaultFeeWindowBlocks = 144

// BlockSummary is one main-chain block as the fee and network figures need
// it. Fees is what the block's coinbase claimed beyond the subsidy
// (coinbase outputs − subsidy); FeesFrom says how the node gave it:
// "getblockstats" (Bitcoin Core's totalfee) or "coinbase" (btcd, which has
// no getblockstats: the sum of the coinbase outputs minus the subsidy).
type BlockSummary struct {
	Height   int64
	Hash     chainhash.Hash
	Time     time.Time
	Bits     uint32
	Fees     btcutil.Amount
	FeesFrom string
}

// Chain is the node, as economics reads it. blocktemplate/bitcoind's Client
// implements it (economics.go there). Calls must honour ctx; they may be
// slow, and are made only from the refresh loop.
type Chain interface {
	// TipHeight is the height of the node's best block.
	TipHeight(ctx context.Context) (int64, error)
	// BlockHash is the hash of the main-chain block at height.
	BlockHash(ctx context.Context, height int64) (chainhash.Hash, error)
	// BlockSummary describes the main-chain block at height.
	BlockSummary(ctx context.Context, height int64) (BlockSummary, error)
}

// FeeTracker keeps the last Window blocks' summaries, fetched once each
// and refreshed per new block: Update walks down from the tip until it
// meets a block it already holds under the same hash, so a reorg refetches
// exactly the blocks that changed.
type FeeTracker struct {
	chain  Chain
	window int

	mu      sync.Mutex
	blocks  map[int64]BlockSummary // by height, at most window+1 entries
	tip     int64
	fetched int // BlockSummary calls made (for tests and metrics)
}

// NewFeeTracker returns a tracker over the last window blocks
// (DefaultFeeWindowBlocks when window ≤ 0).
func NewFeeTracker(chain Chain, window int) *FeeTracker {
	if window <= 0 {
		window = DefaultFeeWindowBlocks
	}
	return &FeeTracker{chain: chain, window: window, blocks: make(map[int64]BlockSummary), tip: -1}
}

// Update brings the cache to the node's tip. On error the cache keeps what
// it had (figures from it stay valid for the blocks they cover).
func (f *FeeTracker) Update(ctx context.Context) error {
	tip, err := f.chain.TipHeight(ctx)
	if err != nil {
		return fmt.Errorf("fee window: tip: %w", err)
	}
	low := max(tip-int64(f.window)+1, 0)
	// Find the highest height whose cached block is still on the main chain.
	f.mu.Lock()
	cached := make(map[int64]chainhash.Hash, len(f.blocks))
	for h, b := range f.blocks {
		cached[h] = b.Hash
	}
	f.mu.Unlock()
	fresh := make(map[int64]BlockSummary)
	var fetchErr error
	failedAt := int64(-1)
	matched := false // a cached block was found still on the main chain
	for h := tip; h >= low; h-- {
		have, ok := cached[h]
		if ok && matched {
			continue // below a confirmed block: the same chain
		}
		if ok {
			hash, err := f.chain.BlockHash(ctx, h)
			if err != nil {
				fetchErr, failedAt = fmt.Errorf("fee window: block hash %d: %w", h, err), h
				break
			}
			if hash == have {
				matched = true
				continue
			}
		}
		b, err := f.chain.BlockSummary(ctx, h)
		if err != nil {
			fetchErr, failedAt = fmt.Errorf("fee window: block %d: %w", h, err), h
			break
		}
		fresh[h] = b
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fetched += len(fresh)
	for h, b := range fresh {
		f.blocks[h] = b
	}
	// After a partial walk the cached blocks below the failure were never
	// checked against the new blocks above them (a reorg may have replaced
	// them): drop them so the next Update fetches them again, instead of
	// stopping at the new tip and trusting them.
	stale := fetchErr != nil && len(fresh) > 0
	for h := range f.blocks {
		if h < low || h > tip || (stale && h <= failedAt) {
			delete(f.blocks, h)
		}
	}
	if fetchErr != nil {
		// Keep what was fetched (each block is right for its hash); the
		// next Update fills the gaps and rechecks from the tip.
		return fetchErr
	}
	f.tip = tip
	return nil
}

// Fetched is the number of blocks fetched from the node so far.
func (f *FeeTracker) Fetched() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fetched
}

// Blocks returns the cached blocks, oldest first.
func (f *FeeTracker) Blocks() []BlockSummary {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]BlockSummary, 0, len(f.blocks))
	for _, b := range f.blocks {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b BlockSummary) int { return int(a.Height - b.Height) })
	return out
}

// TrailingFees summarises the fees of a block window.
type TrailingFees struct {
	Blocks     int            `json:"blocks"`
	FromHeight int64          `json:"from_height"`
	ToHeight   int64          `json:"to_height"`
	Total      btcutil.Amount `json:"total_sat"`
	Mean       float64        `json:"mean_sat"`
	Median     float64        `json:"median_sat"`
	Source     string         `json:"source"` // getblockstats or coinbase
}

// SummariseFees returns the mean and median fees per block of blocks.
func SummariseFees(blocks []BlockSummary) TrailingFees {
	t := TrailingFees{Blocks: len(blocks)}
	if len(blocks) == 0 {
		return t
	}
	fees := make([]int64, len(blocks))
	t.FromHeight, t.ToHeight = blocks[0].Height, blocks[0].Height
	for i, b := range blocks {
		fees[i] = int64(b.Fees)
		t.Total += b.Fees
		t.FromHeight = min(t.FromHeight, b.Height)
		t.ToHeight = max(t.ToHeight, b.Height)
		if i == 0 {
			t.Source = b.FeesFrom
		} else if t.Source != b.FeesFrom {
			t.Source = "mixed"
		}
	}
	t.Mean = float64(t.Total) / float64(len(blocks))
	slices.Sort(fees)
	mid := len(fees) / 2
	if len(fees)%2 == 1 {
		t.Median = float64(fees[mid])
	} else {
		t.Median = (float64(fees[mid-1]) + float64(fees[mid])) / 2
	}
	return t
}
