package economics

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/lode-pool/lode/blocktemplate"
)

// Units and constants of the formulas in docs/economics.md.
const (
	// HashesPerDifficulty is the expected number of hashes for one unit of
	// difficulty: a difficulty-d target takes d·2³² hashes on average.
	HashesPerDifficulty = 4294967296.0 // 2³²
	// SecondsPerDay is the period revenue and cost are expressed for.
	SecondsPerDay = 86400.0
	// TeraHash is one TH/s in H/s.
	TeraHash = 1e12
	// TargetBlockSpacing is the 600 s the difficulty aims at.
	TargetBlockSpacing = 600.0
	// RetargetInterval is the length of a difficulty epoch, in blocks.
	RetargetInterval = 2016
	// MinRetargetBlocks is the number of blocks into an epoch below which no
	// retarget forecast is given (its band would be wider than ±62 %).
	MinRetargetBlocks = 10
	// z95 is the two-sided 95 % normal quantile.
	z95 = 1.959963984540054
)

// WorkPerShare returns the expected number of hashes behind one share of
// difficulty d: d·2³².
func WorkPerShare(d float64) float64 { return d * HashesPerDifficulty }

// DifficultyFromBits returns the network difficulty D = diff1 / target of a
// compact nbits value. A negative or zero target is an error.
func DifficultyFromBits(bits uint32) (float64, error) {
	t := blocktemplate.CompactToTarget(bits)
	if t.Sign() <= 0 {
		return 0, fmt.Errorf("nbits %08x: target is not positive", bits)
	}
	return blocktemplate.TargetToDifficulty(t), nil
}

// Subsidy returns the block subsidy at height on the network of params:
// 50 BTC >> ⌊height / halving interval⌋ (210,000 on mainnet, 150 on
// regtest), 0 once shifted out.
func Subsidy(height int64, params *chaincfg.Params) btcutil.Amount {
	interval := int64(params.SubsidyReductionInterval)
	if height < 0 || interval <= 0 {
		return 0
	}
	halvings := height / interval
	if halvings >= 64 {
		return 0
	}
	return btcutil.Amount((50 * btcutil.SatoshiPerBitcoin) >> uint(halvings))
}

// ExpectedBlocksPerTHDay is E = 10¹² · 86400 / (D · 2³²): the blocks one
// TH/s finds per day on average at network difficulty D.
func ExpectedBlocksPerTHDay(d float64) float64 {
	if !(d > 0) {
		return 0
	}
	return TeraHash * SecondsPerDay / (d * HashesPerDifficulty)
}

// Hashprice is E × reward: the satoshis one TH/s earns per day at network
// difficulty d when every block pays reward (subsidy + fees). Multiply by
// 1000 for PH/s.
func Hashprice(d float64, reward btcutil.Amount) float64 {
	return ExpectedBlocksPerTHDay(d) * float64(reward)
}

// ImpliedNetworkHashrate is the hashrate (H/s) that finds one block per
// 600 s at difficulty d: D·2³²/600.
func ImpliedNetworkHashrate(d float64) float64 {
	return d * HashesPerDifficulty / TargetBlockSpacing
}

// BlockHeader is what the network figures need from a block.
type BlockHeader struct {
	Height int64
	Time   time.Time
	Bits   uint32
}

// ErrTooFewBlocks is wrapped when a figure needs more blocks than given.
var ErrTooFewBlocks = errors.New("too few blocks")

// ObservedNetworkHashrate estimates the network hashrate (H/s) from
// consecutive blocks (oldest first): the work of the n blocks after the
// first, D_i·2³² each, over the time from the first block to the last, times
// (n−1)/n. The correction removes the bias of work/time when the time is
// that of the n-th arrival of a Poisson process (E[n/T] = n/(n−1)·λ). Block
// timestamps are miners' clocks, so the estimate is only as good as the
// span is long; it needs n ≥ 2 and a positive span.
func ObservedNetworkHashrate(blocks []BlockHeader) (float64, error) {
	n := len(blocks) - 1
	if n < 2 {
		return 0, fmt.Errorf("observed hashrate: %d blocks, need 3: %w", len(blocks), ErrTooFewBlocks)
	}
	span := blocks[n].Time.Sub(blocks[0].Time).Seconds()
	if span <= 0 {
		return 0, fmt.Errorf("observed hashrate: blocks %d..%d span %.0f s", blocks[0].Height, blocks[n].Height, span)
	}
	var work float64
	for _, b := range blocks[1:] {
		d, err := DifficultyFromBits(b.Bits)
		if err != nil {
			return 0, fmt.Errorf("observed hashrate: block %d: %w", b.Height, err)
		}
		work += WorkPerShare(d)
	}
	return work / span * float64(n-1) / float64(n), nil
}

// Retarget is the forecast of the next difficulty adjustment.
type Retarget struct {
	// Available is false before MinRetargetBlocks blocks of the epoch, or on
	// a network without retargeting (regtest); Reason says why.
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
	// EpochStart is the height of the epoch's first block; NextHeight the
	// height that gets the new difficulty.
	EpochStart int64 `json:"epoch_start"`
	NextHeight int64 `json:"next_height"`
	// Blocks (k) found after the epoch's first block, in Elapsed (s)
	// seconds from its timestamp until now.
	Blocks  int64   `json:"blocks"`
	Elapsed float64 `json:"elapsed_seconds"`
	// Difficulty now, and the forecast: D·600·k/s clamped to [¼, 4]·D,
	// with the 95 % band D_next·(1 ± 1.96/√k) (clamped the same way).
	Difficulty     float64 `json:"difficulty"`
	NextDifficulty float64 `json:"next_difficulty,omitempty"`
	Low            float64 `json:"next_difficulty_low,omitempty"`
	High           float64 `json:"next_difficulty_high,omitempty"`
	ChangePercent  float64 `json:"change_percent,omitempty"`
	// ETA is when block NextHeight is expected at the epoch's pace so far.
	ETA time.Time `json:"eta,omitzero"`
}

// ForecastRetarget forecasts the next retarget from the current difficulty
// d, the height of the block being mined (the template's), the timestamp
// of the epoch's first block and now. k counts the blocks found after the
// epoch's first block.
func ForecastRetarget(d float64, height int64, epochFirstBlock time.Time, now time.Time, params *chaincfg.Params) Retarget {
	start := height - height%RetargetInterval
	r := Retarget{EpochStart: start, NextHeight: start + RetargetInterval, Blocks: max(height-1-start, 0), Difficulty: d}
	if params != nil && params.PoWNoRetargeting {
		r.Reason = "this network does not retarget"
		return r
	}
	r.Elapsed = now.Sub(epochFirstBlock).Seconds()
	if height-1-start < MinRetargetBlocks {
		r.Reason = fmt.Sprintf("%d blocks into the epoch, forecast from %d", r.Blocks, MinRetargetBlocks)
		return r
	}
	if !(r.Elapsed > 0) || !(d > 0) {
		r.Reason = "epoch start time is not in the past"
		return r
	}
	k := float64(r.Blocks)
	clamp := func(x float64) float64 { return math.Min(math.Max(x, d/4), d*4) }
	raw := d * TargetBlockSpacing * k / r.Elapsed
	half := z95 / math.Sqrt(k)
	r.Available = true
	r.NextDifficulty = clamp(raw)
	r.Low = clamp(raw * (1 - half))
	r.High = clamp(raw * (1 + half))
	r.ChangePercent = (r.NextDifficulty/d - 1) * 100
	perBlock := r.Elapsed / k
	left := float64(r.NextHeight - height) // blocks still to find before the retarget block

	r.ETA = now.Add(time.Duration(left * perBlock * float64(time.Second)))
	return r
}
